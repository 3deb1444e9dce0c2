/**
 * Translation between the engine's integers and the native API's decimal strings.
 * A price is quote per whole base unit at the quote asset's precision; a quantity is at the
 * base asset's precision.
 */
import { formatMinor, MoneyError, parseMinor } from '../money/index.js';
import { LOGINS_KEPT } from '../identity/store.js';
import type { Engine, EngineEvent, OrderAcceptedEvent, OrderEndedEvent, OrderFillEvent, OrderState, OrderView } from '../core/index.js';
import type { FillRow, LedgerRow, OrderRow } from '../store/projector.js';
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

/** Request schemas the routes share. */
export const DECIMAL = { type: 'string', pattern: '^[0-9]{1,40}(\\.[0-9]{1,40})?$', maxLength: 64 } as const;
/** A client's own order id: 1 to 64 printable ASCII characters without spaces. */
export const CLIENT_ORDER_ID = { type: 'string', pattern: '^[\\x21-\\x7e]{1,64}$' } as const;
export const ASSET_CODE = { type: 'string', pattern: '^[A-Z0-9]{1,16}$' } as const;
export const EMAIL = { type: 'string', maxLength: 254 } as const;
export const ACCOUNT_ID = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const;

export const STRING = { type: 'string' } as const;
export const NULLABLE_STRING = { type: ['string', 'null'] } as const;
/** An order as every route answers it; compiled into the serialisers of POST /orders and the socket's `placed` reply. */
export const ORDER_OUT = {
  type: 'object',
  properties: {
    id: { type: 'string' }, account: { type: 'integer' }, client_order_id: NULLABLE_STRING, market: { type: 'string' }, side: { type: 'string' },
    type: { type: 'string' }, time_in_force: { type: 'string' }, price: NULLABLE_STRING, quantity: NULLABLE_STRING,
    quote_quantity: NULLABLE_STRING, stop_price: NULLABLE_STRING, callback_rate: NULLABLE_STRING, post_only: { type: 'boolean' },
    stp: { type: 'string' }, expire_time: { type: ['integer', 'null'] }, status: { type: 'string' }, reason: NULLABLE_STRING,
    filled_quantity: { type: 'string' }, remaining_quantity: NULLABLE_STRING, cumulative_quote: { type: 'string' },
    average_price: NULLABLE_STRING, created_at: { type: ['integer', 'null'] }, updated_at: { type: ['integer', 'null'] },
  },
} as const;

export interface OrderWire {
  id: string;
  account: number;
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

/** What an order is, in engine units (the order's view) … */
type OrderFacts = Omit<OrderView, 'status'>;
/** … and how far it has come. */
interface OrderProgress {
  status: string;
  reason: string | null;
  filled: number;
  /** null for orders sized in quote. */
  remaining: number | null;
  cumQuote: number;
  avgPrice: number;
  createdAt: number | null;
  updatedAt: number | null;
}

/** The one place an order becomes its wire form. */
function orderWire(o: OrderFacts, p: OrderProgress, s: MarketScales): OrderWire {
  return {
    id: String(o.orderId), account: o.account, client_order_id: o.clientOrderId, market: o.market, side: o.side, type: o.orderType,
    time_in_force: o.timeInForce, price: decimalOut(o.price, s.quoteScale), quantity: decimalOut(o.quantity, s.baseScale),
    quote_quantity: decimalOut(o.quoteQuantity, s.quoteScale), stop_price: decimalOut(o.stopPrice, s.quoteScale),
    callback_rate: o.callbackBps === null ? null : formatMinor(o.callbackBps, 2), post_only: o.postOnly, stp: o.stp,
    expire_time: o.expireTime, status: p.status, reason: p.reason, filled_quantity: formatMinor(p.filled, s.baseScale),
    remaining_quantity: p.remaining === null ? null : formatMinor(p.remaining, s.baseScale),
    cumulative_quote: formatMinor(p.cumQuote, s.quoteScale), average_price: p.filled === 0 ? null : formatMinor(p.avgPrice, s.quoteScale),
    created_at: p.createdAt, updated_at: p.updatedAt,
  };
}

export function openOrderOut(order: OrderState, s: MarketScales, createdAt: number | null, updatedAt: number | null): OrderWire {
  return orderWire(order, {
    status: order.status, reason: null, filled: order.filledQuantity, remaining: order.quantity === null ? null : order.leavesQuantity,
    cumQuote: order.cumQuote, avgPrice: order.avgPrice, createdAt, updatedAt,
  }, s);
}

export function storedOrderOut(row: OrderRow, s: MarketScales): OrderWire {
  const closed = row.status === 'FILLED' || row.status === 'CANCELLED' || row.status === 'EXPIRED';
  const facts: OrderFacts = {
    orderId: row.id, account: row.account, clientOrderId: row.client_order_id, market: row.market, side: row.side as OrderView['side'],
    orderType: row.type as OrderView['orderType'], timeInForce: row.time_in_force as OrderView['timeInForce'], price: row.price,
    quantity: row.quantity, quoteQuantity: row.quote_quantity, stopPrice: row.stop_price, callbackBps: row.callback_bps,
    postOnly: row.post_only === 1, stp: row.stp as OrderView['stp'], expireTime: row.expire_time,
  };
  return orderWire(facts, {
    status: row.status, reason: row.reason, filled: row.filled_quantity,
    remaining: row.quantity === null ? null : closed ? 0 : row.quantity - row.filled_quantity,
    cumQuote: row.cum_quote, avgPrice: row.avg_price, createdAt: row.created_at, updatedAt: row.updated_at,
  }, s);
}

/** An open order as the API shows it: live state, and its times from the engine's side (OpenOrderTimes). */
export function liveOrderOut(exchange: Exchange, order: OrderState): OrderWire {
  const times = exchange.orderTimes.of(order.orderId);
  return openOrderOut(order, scalesOf(exchange.engine, order.market), times?.createdAt ?? null, times?.updatedAt ?? null);
}

/**
 * An order of `owner` as the API shows it: live state while open; once closed, the read model's
 * row, so the caller must have waited for the read model to catch up (readModelCaughtUp).
 */
export function findOrder(exchange: Exchange, orderId: number, owner: number): OrderWire | undefined {
  const open = exchange.engine.openOrder(orderId);
  if (open !== undefined) return open.account === owner ? liveOrderOut(exchange, open) : undefined;
  const row = exchange.projector.order(orderId);
  return row === undefined || row.account !== owner ? undefined : storedOrderOut(row, scalesOf(exchange.engine, row.market));
}

/** A read-model row as the API shows it: the live order instead while it is still open. */
export function rowOrderOut(exchange: Exchange, row: OrderRow): OrderWire {
  const open = exchange.engine.openOrder(row.id);
  return open !== undefined ? liveOrderOut(exchange, open) : storedOrderOut(row, scalesOf(exchange.engine, row.market));
}

/** An open order as a command about to end it finds it (see BeforeApply), with when it was created. */
export interface OrderBeforeEnd { order: OrderState; createdAt: number | null }

/** An open order with its creation time, read inside the sequencer just before a command applies. */
export function orderBeforeEnd(exchange: Exchange, order: OrderState): OrderBeforeEnd {
  return { order, createdAt: exchange.orderTimes.of(order.orderId)?.createdAt ?? null };
}

/**
 * An order a command cancelled or expired, from the order as the command found it and the
 * command's own event: no read-model query on the cancel path. `ts` is the command's time.
 */
export function endedOrderOut(exchange: Exchange, before: OrderBeforeEnd, ended: OrderEndedEvent, ts: number): OrderWire {
  const { order, createdAt } = before;
  return orderWire(order, {
    status: ended.type === 'order_cancelled' ? 'CANCELLED' : 'EXPIRED', reason: ended.reason, filled: ended.cumQuantity,
    remaining: order.quantity === null ? null : 0, cumQuote: ended.cumQuote, avgPrice: ended.avgPrice, createdAt, updatedAt: ts,
  }, scalesOf(exchange.engine, order.market));
}

/** The event with which a command ended order `orderId`, if it did. */
export function endOf(events: readonly EngineEvent[], orderId: number): OrderEndedEvent | undefined {
  for (const event of events) {
    if ((event.type === 'order_cancelled' || event.type === 'order_expired') && event.orderId === orderId) return event;
  }
  return undefined;
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
  if (open !== undefined) return openOrderOut(open, scales, ts, ts);
  const filled = lastFill?.cumQuantity ?? 0;
  return orderWire(accepted, {
    status: ended === undefined ? 'FILLED' : ended.type === 'order_cancelled' ? 'CANCELLED' : 'EXPIRED',
    reason: ended?.reason ?? null, filled, remaining: accepted.quantity === null ? null : 0,
    cumQuote: lastFill?.cumQuote ?? 0, avgPrice: lastFill?.avgPrice ?? 0, createdAt: ts, updatedAt: ts,
  }, scales);
}

export interface CancelAfterWire { account: number; trigger_time: number | null; current_time: number }

/** What setting the dead man's switch answers, over REST and the socket alike. */
export function cancelAfterOut(account: number, events: readonly EngineEvent[], ts: number): CancelAfterWire {
  const set = events.find((e) => e.type === 'cancel_after_set');
  return { account, trigger_time: set?.type === 'cancel_after_set' ? set.triggerTime : null, current_time: ts };
}

/** A user's login history, newest first (`limit` of the kept ones, 20 by default), as the user and support see it. */
export function loginsOut(exchange: Exchange, userId: number, limit: string | undefined): Record<string, unknown>[] {
  const count = limit === undefined ? 20 : Math.min(Math.max(Number(limit), 1), LOGINS_KEPT);
  return exchange.identity.loginsOf(userId, count).map((l) => ({ time: l.ts, address: l.address, user_agent: l.userAgent, outcome: l.outcome }));
}

/** A balance as the socket's balances channel carries it, in its update and its snapshot. */
export function balanceOut(engine: Engine, b: { asset: string; available: number; reserved: number; locked: number }): Record<string, string> {
  const scale = engine.assets.get(b.asset)!.precision;
  return { asset: b.asset, available: formatMinor(b.available, scale), reserved: formatMinor(b.reserved, scale), locked: formatMinor(b.locked, scale) };
}

/** One of an account's fills (GET /trades, and the operator's view of an account). */
export function fillOut(engine: Engine, f: FillRow): Record<string, unknown> {
  const s = scalesOf(engine, f.market);
  return {
    trade_id: String(f.trade_id), order_id: String(f.order_id), market: f.market, side: f.side,
    price: formatMinor(f.price, s.quoteScale), quantity: formatMinor(f.quantity, s.baseScale),
    quote_quantity: formatMinor(f.quote_quantity, s.quoteScale),
    fee: formatMinor(f.fee, f.fee_asset === s.base ? s.baseScale : s.quoteScale), fee_asset: f.fee_asset,
    liquidity: f.liquidity, time: f.ts,
  };
}

/** One balance change with the balance after it (GET /ledger, and the operator's view of an account). */
export function ledgerEntryOut(engine: Engine, r: LedgerRow): Record<string, unknown> {
  const scale = engine.assets.get(r.asset)!.precision;
  return {
    id: String(r.id), seq: r.seq, time: r.ts, asset: r.asset, kind: r.kind,
    available_change: formatMinor(r.available_change, scale), reserved_change: formatMinor(r.reserved_change, scale),
    locked_change: formatMinor(r.locked_change, scale), available: formatMinor(r.available, scale),
    reserved: formatMinor(r.reserved, scale), locked: formatMinor(r.locked, scale),
  };
}
