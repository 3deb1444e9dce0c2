/**
 * The demo venue: assets and markets a newcomer can trade on at once. Each market's
 * tick × lot is a whole number of quote minor units (see README, "Markets").
 */
import type { Command } from '../core/index.js';

export function demoCommands(): Command[] {
  return [
    { type: 'create_asset', code: 'BTC', precision: 8 },
    { type: 'create_asset', code: 'ETH', precision: 8 },
    { type: 'create_asset', code: 'USDT', precision: 6 },
    { type: 'create_asset', code: 'EUR', precision: 2 },
    // 0.01 USDT × 0.0001 BTC
    { type: 'create_market', market: 'BTC-USDT', base: 'BTC', quote: 'USDT', tick: 10_000, lot: 10_000, minNotional: 1_000_000, makerFeePpm: 1_000, takerFeePpm: 2_000, bandLowBps: 4_000, bandHighBps: 25_000 },
    // 0.01 USDT × 0.0001 ETH
    { type: 'create_market', market: 'ETH-USDT', base: 'ETH', quote: 'USDT', tick: 10_000, lot: 10_000, minNotional: 1_000_000, makerFeePpm: 1_000, takerFeePpm: 2_000, bandLowBps: 4_000, bandHighBps: 25_000 },
    // 0.00001 BTC × 0.001 ETH
    { type: 'create_market', market: 'ETH-BTC', base: 'ETH', quote: 'BTC', tick: 1_000, lot: 100_000, minNotional: 10_000, makerFeePpm: 1_000, takerFeePpm: 2_000 },
    // 1 EUR × 0.01 BTC: with cent-precision euros, finer steps could not fill exactly.
    { type: 'create_market', market: 'BTC-EUR', base: 'BTC', quote: 'EUR', tick: 100, lot: 1_000_000, minNotional: 1_000, makerFeePpm: 1_500, takerFeePpm: 2_500 },
  ];
}
