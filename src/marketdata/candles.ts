/** Candle intervals and bucketing; amounts stay integers. */
export const CANDLE_INTERVALS = {
  '1m': 60_000, '3m': 180_000, '5m': 300_000, '15m': 900_000, '30m': 1_800_000, '1h': 3_600_000, '2h': 7_200_000,
  '4h': 14_400_000, '6h': 21_600_000, '12h': 43_200_000, '1d': 86_400_000, '1w': 604_800_000,
} as const;

export type CandleInterval = keyof typeof CANDLE_INTERVALS;
export const CANDLE_INTERVAL_NAMES = Object.keys(CANDLE_INTERVALS) as CandleInterval[];

// Weeks start on Monday 00:00 UTC; the epoch was a Thursday.
const WEEK_OFFSET_MS = 4 * 86_400_000;

export function bucketStart(ts: number, interval: CandleInterval): number {
  const width = CANDLE_INTERVALS[interval];
  if (interval === '1w') return Math.floor((ts - WEEK_OFFSET_MS) / width) * width + WEEK_OFFSET_MS;
  return Math.floor(ts / width) * width;
}

export interface Candle {
  market: string;
  interval: CandleInterval;
  openTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  quoteVolume: number;
  trades: number;
}
