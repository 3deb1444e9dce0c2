/** Tickers and candles as the API shows them (decimal strings). */
import type { Exchange } from '../exchange.js';
import type { Candle } from '../marketdata/candles.js';
import { formatMinor } from '../money/index.js';

const DAY_MS = 86_400_000;

type MarketState = Exchange['engine']['marketList'][number];

/** A market's rules as decimal strings. */
export function marketOut(m: MarketState): Record<string, unknown> {
  const qs = m.quote.precision;
  const bs = m.base.precision;
  return {
    market: m.id, base: m.base.code, quote: m.quote.code, state: m.state,
    tick_size: formatMinor(m.tick, qs), lot_size: formatMinor(m.lot, bs),
    min_quantity: formatMinor(m.minQuantity, bs), max_quantity: formatMinor(m.maxQuantity, bs),
    min_notional: formatMinor(m.minNotional, qs), max_notional: formatMinor(m.maxNotional, qs),
    maker_fee: formatMinor(m.makerFeePpm, 6, true), taker_fee: formatMinor(m.takerFeePpm, 6, true),
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
