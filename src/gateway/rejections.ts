/**
 * The engine's refusals in a trader's words. The engine names the rule it applied (TICK_SIZE);
 * the message adds the market's figure the order missed, as a decimal, so that a client can fix
 * its order without a second look at GET /markets.
 */
import type { Engine, Market, PlaceOrder, RejectReason } from '../core/index.js';
import { formatMinor } from '../money/index.js';

/** The wording with the market's figure; undefined when it has nothing to add to the fixed one. */
type Describe = (market: Market, order: Partial<PlaceOrder>) => string | undefined;

const quoteAmount = (market: Market, minor: number): string => `${formatMinor(minor, market.quote.precision, true)} ${market.quote.code}`;
const baseAmount = (market: Market, minor: number): string => `${formatMinor(minor, market.base.precision, true)} ${market.base.code}`;
/** Basis points of the last price as a percentage ("80", "112.5"). */
const percentOf = (bps: number): string => formatMinor(bps, 2, true);
const lastPrice = (market: Market): string => quoteAmount(market, market.lastPriceTicks * market.tick);

const BY_MARKET: Partial<Record<RejectReason, Describe>> = {
  TICK_SIZE: (m) => `prices must be multiples of the tick size ${quoteAmount(m, m.tick)}`,
  LOT_SIZE: (m) => `quantity must be a multiple of the lot size ${baseAmount(m, m.lot)}`,
  QUANTITY_TOO_SMALL: (m) => `quantity is below the market's minimum of ${baseAmount(m, m.minQuantity)}`,
  QUANTITY_TOO_LARGE: (m) => `quantity is above the market's maximum of ${baseAmount(m, m.maxQuantity)}`,
  NOTIONAL_TOO_SMALL: (m) => `the order's value is below the market's minimum of ${quoteAmount(m, m.minNotional)}`,
  NOTIONAL_TOO_LARGE: (m) => `the order's value is above the market's maximum of ${quoteAmount(m, m.maxNotional)}`,
  PRICE_BELOW_BAND: (m) => `price is below the market's band: at least ${percentOf(m.bandLowBps)} % of the last price, ${lastPrice(m)}`,
  PRICE_ABOVE_BAND: (m) => `price is above the market's band: at most ${percentOf(m.bandHighBps)} % of the last price, ${lastPrice(m)}`,
  TOO_MANY_OPEN_ORDERS: (m) => `this account already has the market's maximum of ${m.maxOpenOrders} open orders; cancel one first (market, IOC and FOK orders are not limited)`,
  INSUFFICIENT_BALANCE: (m, order) => order.side === 'buy' || order.side === 'sell'
    ? `not enough available ${order.side === 'buy' ? m.quote.code : m.base.code} for this order`
    : undefined,
};

const FIXED: Partial<Record<RejectReason, string>> = {
  UNKNOWN_MARKET: 'no such market',
  UNKNOWN_ACCOUNT: 'no such account',
  UNKNOWN_ORDER: 'no such open order',
  POST_ONLY_WOULD_TAKE: 'a post-only order would have traded at once; it was not placed',
  FOK_CANNOT_FILL: 'the fill-or-kill order cannot be filled in full at once; nothing was traded',
  DIRECTION_RESTRICTED: 'this account may not trade in this direction (an operator restriction)',
  DUPLICATE_CLIENT_ORDER_ID: 'client_order_id is already used by an open order of this account',
  INVALID_EXPIRE_TIME: 'expire_time must be in the future',
  OUT_OF_RANGE: 'price × quantity is beyond the supported range',
  INSUFFICIENT_BALANCE: 'the available balance does not cover this',
  MARKET_HALTED: 'the market is halted: it takes no orders and no cancels',
  MARKET_CANCEL_ONLY: 'the market is in cancel-only mode: orders can be cancelled, not placed',
};

/**
 * The engine's command fields whose names differ in the native API, as orderCommand (orders.ts)
 * maps them one by one. Kept here, not there: orders.ts reaches this module through errors.ts, and
 * the cycle left wire.ts unloadable on its own (bench:micro imports it first).
 */
const WIRE_FIELDS: Readonly<Record<string, string>> = {
  orderType: 'type', timeInForce: 'time_in_force', expireTime: 'expire_time', postOnly: 'post_only', stopPrice: 'stop_price',
  quoteQuantity: 'quote_quantity', clientOrderId: 'client_order_id', callbackBps: 'callback_rate', orderId: 'order_id',
};
const FIELD_NAMES = new RegExp(`\\b(${Object.keys(WIRE_FIELDS).join('|')})\\b`, 'g');

/** The engine's detail in the API's terms: field names as clients send them; callback rates are percent here. */
function inWireTerms(detail: string): string {
  return detail.replace('callbackBps must be below 10000', 'callback_rate must be below 100').replace(FIELD_NAMES, (name) => WIRE_FIELDS[name]!);
}

/**
 * The message for a command the engine refused with `reason`: the market's figure where the rule
 * has one, else the engine's `detail` in the API's terms, else a fixed wording. `marketId` is the
 * order's market ('' if none).
 */
export function rejectionMessage(engine: Engine, reason: RejectReason, marketId: string, order: Partial<PlaceOrder> = {}, detail = ''): string {
  const market = engine.markets.get(marketId);
  const described = market === undefined ? undefined : BY_MARKET[reason]?.(market, order);
  if (described !== undefined) return described;
  if (detail !== '' && detail !== reason) return inWireTerms(detail);
  return FIXED[reason] ?? reason.toLowerCase().replaceAll('_', ' ');
}
