/**
 * Translation between the engine's integers and the native API's decimal strings.
 * A price is quote per whole base unit at the quote asset's precision; a quantity is at the
 * base asset's precision.
 */
import { formatMinor, MoneyError, parseMinor } from '../money/index.js';
import type { Engine, EngineEvent, OrderAcceptedEvent, OrderEndedEvent, OrderFillEvent, OrderState } from '../core/index.js';
import type { OrderRow } from '../store/projector.js';
import type { Exchange } from '../exchange.js';
import { ApiError } from './errors.js';

export interface MarketScales { id: string; base: string; quote: string; baseScale: number; quoteScale: number }

export function scalesOf(engine: Engine, marketId: string): MarketScales {
  const market = engine.markets.get(marketId);
  if (market === undefined) throw new ApiError(404, 'UNKNOWN_MARKET', `unknown market ${marketId}`);
  return { id: market.id, base: market.base.code, quote: market.quote.code, baseScale: market.base.precision, quoteScale: market.quote.precision };
}

/** Parses a wire decimal into minor units; bad input is a 400 naming the field. */
export function decimalIn(text: unknown, scale: number, field: string, allowZero = false): number {
  try {
    return Number(parseMinor(text, scale, { field, allowZero }));
  } catch (error) {
    if (error instanceof MoneyError) throw new ApiError(400, 'INVALID_NUMBER', error.message);
    throw error;
  }
}

export function decimalOut(minor: number | null, scale: number): string | null {
  return minor === null ? null : formatMinor(minor, scale);
}

/** Percent with up to two decimals ("1.25") → basis points (125). */
export function percentToBps(text: unknown, field: string): number {
  return decimalIn(text, 2, field);
}

export interface OrderWire {
  id: string;
  client_order_id: string | null;
  market: string;
  side: string;
  type: string;
  time_in_force: string;
  price: string | null;
  quantity: string | null;
  quote_quantity: string | null;
  stop_price: string | null;
  callback_rate: string | null;
  post_only: boolean;
  stp: string;
  expire_time: number | null;
  status: string;
  reason: string | null;
  filled_quantity: string;
  remaining_quantity: string | null;
  cumulative_quote: string;
  average_price: string | null;
  created_at: number | null;
  updated_at: number | null;
}

export function openOrderOut(order: OrderState, s: MarketScales, row: OrderRow | undefined): OrderWire {
  return {
    id: String(order.orderId), client_order_id: order.clientOrderId, market: order.market, side: order.side,
    type: order.orderType, time_in_force: order.timeInForce, price: decimalOut(order.price, s.quoteScale),
    quantity: decimalOut(order.quantity, s.baseScale), quote_quantity: decimalOut(order.quoteQuantity, s.quoteScale),
    stop_price: decimalOut(order.stopPrice, s.quoteScale), callback_rate: order.callbackBps === null ? null : formatMinor(order.callbackBps, 2),
    post_only: order.postOnly, stp: order.stp, expire_time: order.expireTime, status: order.status, reason: null,
    filled_quantity: formatMinor(order.filledQuantity, s.baseScale),
    remaining_quantity: order.quantity === null ? null : formatMinor(order.leavesQuantity, s.baseScale),
    cumulative_quote: formatMinor(order.cumQuote, s.quoteScale),
    average_price: order.filledQuantity === 0 ? null : formatMinor(order.avgPrice, s.quoteScale),
    created_at: row?.created_at ?? null, updated_at: row?.updated_at ?? null,
  };
}

export function storedOrderOut(row: OrderRow, s: MarketScales): OrderWire {
  const closed = row.status === 'FILLED' || row.status === 'CANCELLED' || row.status === 'EXPIRED';
  return {
    id: String(row.id), client_order_id: row.client_order_id, market: row.market, side: row.side, type: row.type,
    time_in_force: row.time_in_force, price: decimalOut(row.price, s.quoteScale), quantity: decimalOut(row.quantity, s.baseScale),
    quote_quantity: decimalOut(row.quote_quantity, s.quoteScale), stop_price: decimalOut(row.stop_price, s.quoteScale),
    callback_rate: row.callback_bps === null ? null : formatMinor(row.callback_bps, 2), post_only: row.post_only === 1,
    stp: row.stp, expire_time: row.expire_time, status: row.status, reason: row.reason,
    filled_quantity: formatMinor(row.filled_quantity, s.baseScale),
    remaining_quantity: row.quantity === null ? null : formatMinor(closed ? 0 : row.quantity - row.filled_quantity, s.baseScale),
    cumulative_quote: formatMinor(row.cum_quote, s.quoteScale),
    average_price: row.filled_quantity === 0 ? null : formatMinor(row.avg_price, s.quoteScale),
    created_at: row.created_at, updated_at: row.updated_at,
  };
}

/** An order of `owner` as the API shows it: live state while open, the projection once closed. */
export function findOrder(exchange: Exchange, orderId: number, owner: number): OrderWire | undefined {
  const row = exchange.projector.order(orderId);
  if (row === undefined || row.account !== owner) return undefined;
  const scales = scalesOf(exchange.engine, row.market);
  const open = exchange.engine.openOrder(orderId);
  return open !== undefined ? openOrderOut(open, scales, row) : storedOrderOut(row, scales);
}

/**
 * The order a command just placed, from the command's own events and the live book: no read
 * model query on the order-entry path.
 */
export function placedOrderOut(exchange: Exchange, orderId: number, events: readonly EngineEvent[], ts: number): OrderWire | undefined {
  let accepted: OrderAcceptedEvent | undefined;
  let lastFill: OrderFillEvent | undefined;
  let ended: OrderEndedEvent | undefined;
  for (const event of events) {
    if (event.type === 'order_accepted' && event.orderId === orderId) accepted = event;
    else if (event.type === 'order_fill' && event.orderId === orderId) lastFill = event;
    else if ((event.type === 'order_cancelled' || event.type === 'order_expired') && event.orderId === orderId) ended = event;
  }
  if (accepted === undefined) return undefined;
  const scales = scalesOf(exchange.engine, accepted.market);
  const open = exchange.engine.openOrder(orderId);
  if (open !== undefined) return { ...openOrderOut(open, scales, undefined), created_at: ts, updated_at: ts };
  const filled = lastFill?.cumQuantity ?? 0;
  const status = ended === undefined ? 'FILLED' : ended.type === 'order_cancelled' ? 'CANCELLED' : 'EXPIRED';
  return {
    id: String(orderId), client_order_id: accepted.clientOrderId, market: accepted.market, side: accepted.side, type: accepted.orderType,
    time_in_force: accepted.timeInForce, price: decimalOut(accepted.price, scales.quoteScale), quantity: decimalOut(accepted.quantity, scales.baseScale),
    quote_quantity: decimalOut(accepted.quoteQuantity, scales.quoteScale), stop_price: decimalOut(accepted.stopPrice, scales.quoteScale),
    callback_rate: accepted.callbackBps === null ? null : formatMinor(accepted.callbackBps, 2), post_only: accepted.postOnly, stp: accepted.stp,
    expire_time: accepted.expireTime, status, reason: ended?.reason ?? null, filled_quantity: formatMinor(filled, scales.baseScale),
    remaining_quantity: accepted.quantity === null ? null : formatMinor(0, scales.baseScale),
    cumulative_quote: formatMinor(lastFill?.cumQuote ?? 0, scales.quoteScale),
    average_price: filled === 0 ? null : formatMinor(lastFill!.avgPrice, scales.quoteScale), created_at: ts, updated_at: ts,
  };
}
