/**
 * Shape checks for commands. A command reaches the engine from the journal; whatever its
 * origin, a malformed one is rejected with INVALID_COMMAND and changes nothing.
 */
import type { MarketState, OrderType, Restriction, Side, StpMode, TimeInForce } from './types.js';

export const SIDES: readonly Side[] = ['buy', 'sell'];
export const ORDER_TYPES: readonly OrderType[] = [
  'limit', 'market', 'stop_limit', 'stop_market', 'take_profit', 'take_profit_limit', 'trailing_stop',
];
export const TIME_IN_FORCES: readonly TimeInForce[] = ['GTC', 'IOC', 'FOK', 'DAY', 'GTD'];
export const STP_MODES: readonly StpMode[] = ['cancel_taker', 'cancel_maker', 'cancel_both', 'decrement'];
export const MARKET_STATES: readonly MarketState[] = ['trading', 'halted', 'cancel_only', 'post_only'];
export const RESTRICTIONS: readonly Restriction[] = ['none', 'buy_only', 'sell_only', 'no_trading'];

export const CLIENT_ORDER_ID_LENGTH_MAX = 64;
export const KEY_LENGTH_MAX = 128;
const CODE_PATTERN = /^[A-Z0-9]{1,16}$/;
const MARKET_PATTERN = /^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$/;
const CLIENT_ID_PATTERN = /^[\x21-\x7e]{1,64}$/;

export class InvalidCommand extends Error {}

export function fail(message: string): never {
  throw new InvalidCommand(message);
}

export function positiveId(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) fail(`${field} must be a positive integer`);
  return value;
}

export function amount(value: unknown, field: string, allowZero = false): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || (!allowZero && value === 0)) {
    fail(`${field} must be ${allowZero ? 'a non-negative' : 'a positive'} safe integer`);
  }
  return value;
}

export function optionalAmount(value: unknown, field: string, fallback: number, allowZero = true): number {
  return value === undefined ? fallback : amount(value, field, allowZero);
}

export function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string, fallback?: T): T {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    fail(`${field} must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

export function assetCode(value: unknown): string {
  if (typeof value !== 'string' || !CODE_PATTERN.test(value)) fail('asset code must be 1-16 of A-Z and 0-9');
  return value;
}

export function marketId(value: unknown): string {
  if (typeof value !== 'string' || !MARKET_PATTERN.test(value)) fail('market must look like BASE-QUOTE');
  return value;
}

export function key(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > KEY_LENGTH_MAX) {
    fail(`${field} must be a string of 1-${KEY_LENGTH_MAX} characters`);
  }
  return value;
}

export function clientOrderId(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || !CLIENT_ID_PATTERN.test(value)) {
    fail(`clientOrderId must be 1-${CLIENT_ORDER_ID_LENGTH_MAX} printable ASCII characters`);
  }
  return value;
}

export function feePpm(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > 1_000_000) {
    fail(`${field} must be an integer between 0 and 1000000 (parts per million)`);
  }
  return value;
}

export function bool(value: unknown, field: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') fail(`${field} must be a boolean`);
  return value;
}
