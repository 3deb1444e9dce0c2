/** Turns a wire order (REST body or socket message) into an engine command. */
import type { Engine, PlaceOrder } from '../core/index.js';
import { ApiError } from './errors.js';
import { ACCOUNT_ID, CLIENT_ORDER_ID, DECIMAL, decimalIn, percentToBps, scalesOf } from './wire.js';

/** The schema of an order on the wire (POST /orders, and each order of a batch). */
export const ORDER_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['market', 'side', 'type'],
  properties: {
    market: { type: 'string', maxLength: 40 },
    side: { type: 'string', enum: ['buy', 'sell'] },
    type: { type: 'string', enum: ['limit', 'market', 'stop_limit', 'stop_market', 'take_profit', 'take_profit_limit', 'trailing_stop'] },
    price: DECIMAL,
    quantity: DECIMAL,
    quote_quantity: DECIMAL,
    stop_price: DECIMAL,
    callback_rate: DECIMAL,
    time_in_force: { type: 'string', enum: ['GTC', 'IOC', 'FOK', 'DAY', 'GTD'] },
    expire_time: { type: 'integer', minimum: 0, maximum: 8_640_000_000_000_000 },
    post_only: { type: 'boolean' },
    stp: { type: 'string', enum: ['cancel_taker', 'cancel_maker', 'cancel_both', 'decrement'] },
    client_order_id: CLIENT_ORDER_ID,
    account: ACCOUNT_ID,
  },
} as const;

export interface OrderBody {
  market: string; side: 'buy' | 'sell'; type: PlaceOrder['orderType']; price?: string; quantity?: string;
  quote_quantity?: string; stop_price?: string; callback_rate?: string; time_in_force?: PlaceOrder['timeInForce'];
  expire_time?: number; post_only?: boolean; stp?: PlaceOrder['stp']; client_order_id?: string;
  /** Which of the user's accounts the order is for (see account-scope.ts); the caller resolves it. */
  account?: number;
}

export function orderCommand(engine: Engine, account: number, body: OrderBody): PlaceOrder {
  if (body === null || typeof body !== 'object') throw new ApiError(400, 'INVALID_REQUEST', 'order must be an object');
  if (typeof body.market !== 'string') throw new ApiError(400, 'INVALID_REQUEST', 'market is required');
  const scales = scalesOf(engine, body.market);
  const cmd: PlaceOrder = { type: 'place_order', account, market: scales.id, side: body.side, orderType: body.type };
  if (body.price !== undefined) cmd.price = decimalIn(body.price, scales.quoteScale, 'price');
  if (body.quantity !== undefined) cmd.quantity = decimalIn(body.quantity, scales.baseScale, 'quantity');
  if (body.quote_quantity !== undefined) cmd.quoteQuantity = decimalIn(body.quote_quantity, scales.quoteScale, 'quote_quantity');
  if (body.stop_price !== undefined) cmd.stopPrice = decimalIn(body.stop_price, scales.quoteScale, 'stop_price');
  if (body.callback_rate !== undefined) cmd.callbackBps = percentToBps(body.callback_rate, 'callback_rate');
  if (body.time_in_force !== undefined) cmd.timeInForce = body.time_in_force;
  if (body.expire_time !== undefined) cmd.expireTime = body.expire_time;
  if (body.post_only !== undefined) cmd.postOnly = body.post_only;
  if (body.stp !== undefined) cmd.stp = body.stp;
  if (body.client_order_id !== undefined) cmd.clientOrderId = body.client_order_id;
  return cmd;
}
