/** Tickers and candles as the API shows them (decimal strings). */
import { MARKET_STATES } from '../core/index.js';
import type { Exchange } from '../exchange.js';
import type { Candle } from '../marketdata/candles.js';
import { formatMinor } from '../money/index.js';
import { NULLABLE_STRING, STRING } from './wire.js';

const DAY_MS = 86_400_000;

type MarketState = Exchange['engine']['marketList'][number];

/** A fee rate in parts per million as the fraction the API shows ("0.001"). */
export function feeRateOut(ppm: number): string {
  return formatMinor(ppm, 6, true);
}

/** A market's rules as decimal strings. */
export function marketOut(m: MarketState): Record<string, unknown> {
  const qs = m.quote.precision;
  const bs = m.base.precision;
  return {
    market: m.id, base: m.base.code, quote: m.quote.code, state: m.state,
    tick_size: formatMinor(m.tick, qs), lot_size: formatMinor(m.lot, bs),
    min_quantity: formatMinor(m.minQuantity, bs), max_quantity: formatMinor(m.maxQuantity, bs),
    min_notional: formatMinor(m.minNotional, qs), max_notional: formatMinor(m.maxNotional, qs),
    maker_fee: feeRateOut(m.makerFeePpm), taker_fee: feeRateOut(m.takerFeePpm),
    fee_tiers: m.tiers.map((t) => ({ min_volume: formatMinor(t.minVolume, qs, true), maker_fee: feeRateOut(t.makerFeePpm), taker_fee: feeRateOut(t.takerFeePpm) })),
    max_open_orders: m.maxOpenOrders === 0 ? null : m.maxOpenOrders,
    band_low: m.bandLowBps === 0 ? null : formatMinor(m.bandLowBps, 4, true),
    band_high: m.bandHighBps === 0 ? null : formatMinor(m.bandHighBps, 4, true),
    collar: m.collarBps === 0 ? null : formatMinor(m.collarBps, 4, true),
    last_price: m.lastPriceTicks === 0 ? null : formatMinor(m.lastPriceTicks * m.tick, qs),
  };
}

export function candleOut(exchange: Exchange, candle: Candle): Record<string, unknown> {
  const market = exchange.engine.markets.get(candle.market)!;
  const q = market.quote.precision;
  const b = market.base.precision;
  return {
    open_time: candle.openTime, open: formatMinor(candle.open, q), high: formatMinor(candle.high, q), low: formatMinor(candle.low, q),
    close: formatMinor(candle.close, q), volume: formatMinor(candle.volume, b), quote_volume: formatMinor(candle.quoteVolume, q), trades: candle.trades,
  };
}

/** 24-hour statistics from 1-minute candles, with the live best bid and ask. */
export function tickerOf(exchange: Exchange, marketId: string): Record<string, unknown> {
  const market = exchange.engine.markets.get(marketId)!;
  const q = market.quote.precision;
  const b = market.base.precision;
  const now = exchange.clock();
  const window = exchange.projector.window(marketId, now - DAY_MS);
  const book = exchange.engine.book(marketId, 1);
  const last = market.lastPriceTicks === 0 ? null : market.lastPriceTicks * market.tick;
  const change = window === undefined || last === null ? null : last - window.open;
  return {
    market: marketId,
    last: last === null ? null : formatMinor(last, q),
    open: window === undefined ? null : formatMinor(window.open, q),
    high: window === undefined ? null : formatMinor(window.high, q),
    low: window === undefined ? null : formatMinor(window.low, q),
    volume: formatMinor(window?.volume ?? 0, b),
    quote_volume: formatMinor(window?.quoteVolume ?? 0, q),
    trades: window?.trades ?? 0,
    change: change === null ? null : formatMinor(change, q),
    // Percent with two decimals, rounded toward zero: integer arithmetic on minor units.
    change_percent: change === null || window === undefined || window.open === 0 ? null : formatMinor(Number((BigInt(change) * 10_000n) / BigInt(window.open)), 2),
    best_bid: book.bids[0] === undefined ? null : formatMinor(book.bids[0].price, q),
    best_bid_quantity: book.bids[0] === undefined ? null : formatMinor(book.bids[0].quantity, b),
    best_ask: book.asks[0] === undefined ? null : formatMinor(book.asks[0].price, q),
    best_ask_quantity: book.asks[0] === undefined ? null : formatMinor(book.asks[0].quantity, b),
    time: now,
  };
}

/*
 * Response schemas of the market-data routes: the docs page shows them, and the routes serialise
 * with them. A field missing here would be dropped from the answer, so they list every field the
 * functions above produce.
 */

const FEE_TIER_OUT = {
  type: 'object',
  properties: {
    min_volume: { ...STRING, description: "from this 30-day volume of the user in the market, in its quote asset" },
    maker_fee: STRING, taker_fee: STRING,
  },
} as const;

export const MARKET_OUT = {
  type: 'object',
  properties: {
    market: STRING, base: STRING, quote: STRING, state: { type: 'string', enum: [...MARKET_STATES] },
    tick_size: STRING, lot_size: STRING, min_quantity: STRING, max_quantity: STRING, min_notional: STRING, max_notional: STRING,
    maker_fee: STRING, taker_fee: STRING,
    fee_tiers: { type: 'array', items: FEE_TIER_OUT, description: 'lower rates by 30-day volume; a trade pays the lowest of the market rate, its tier and the user level' },
    max_open_orders: { type: ['integer', 'null'], description: 'open orders one account may have here (null: no limit)' },
    band_low: { ...NULLABLE_STRING, description: 'limit prices below this fraction of the last price are refused (null: no lower band)' },
    band_high: { ...NULLABLE_STRING, description: 'limit prices above this multiple of the last price are refused (null: no upper band)' },
    collar: { ...NULLABLE_STRING, description: 'a market order trades no further from the last price than this fraction; the rest expires PRICE_COLLAR (null: no collar)' },
    last_price: NULLABLE_STRING,
  },
} as const;

export const TICKER_OUT = {
  type: 'object',
  properties: {
    market: STRING, last: NULLABLE_STRING, open: NULLABLE_STRING, high: NULLABLE_STRING, low: NULLABLE_STRING,
    volume: STRING, quote_volume: STRING, trades: { type: 'integer' }, change: NULLABLE_STRING, change_percent: NULLABLE_STRING,
    best_bid: NULLABLE_STRING, best_bid_quantity: NULLABLE_STRING, best_ask: NULLABLE_STRING, best_ask_quantity: NULLABLE_STRING,
    time: { type: 'integer', description: 'milliseconds since the epoch' },
  },
} as const;

export const CANDLE_OUT = {
  type: 'object',
  properties: {
    open_time: { type: 'integer' }, open: STRING, high: STRING, low: STRING, close: STRING, volume: STRING, quote_volume: STRING,
    trades: { type: 'integer' },
  },
} as const;

/** Fee rates by user level, which apply in every market when lower than the market's. */
export function feeLevelsOut(engine: Exchange['engine']): Record<string, unknown>[] {
  return [...engine.feeLevels.entries()].sort((a, b) => a[0] - b[0])
    .map(([level, f]) => ({ level, maker_fee: feeRateOut(f.makerFeePpm), taker_fee: feeRateOut(f.takerFeePpm) }));
}

export const FEE_LEVEL_OUT = { type: 'object', properties: { level: { type: 'integer' }, maker_fee: STRING, taker_fee: STRING } } as const;

export const FEES_OUT = {
  type: 'object',
  properties: {
    markets: {
      type: 'array',
      items: { type: 'object', properties: { market: STRING, maker_fee: STRING, taker_fee: STRING, fee_tiers: { type: 'array', items: FEE_TIER_OUT } } },
    },
    levels: { type: 'array', items: FEE_LEVEL_OUT, description: 'rates for users of a level (set by the operator), in every market, when lower' },
  },
} as const;

/** What a copy of the depth costs in request weight, over REST or as a subscription's snapshot. */
export const DEPTH_WEIGHT = 2;

/**
 * What a copy of the book order by order costs in request weight, by the most orders a side of
 * it may hold: a copy costs the server in proportion to its size (tiers as Binance weighs depth).
 */
export function orderBookWeight(ordersPerSide: number): number {
  return ordersPerSide <= 100 ? 5 : ordersPerSide <= 500 ? 25 : ordersPerSide <= 1_000 ? 50 : 250;
}
