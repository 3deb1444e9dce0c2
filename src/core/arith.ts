/**
 * Integer arithmetic on safe-integer numbers. Every result is exact or the call throws /
 * reports overflow: a double beyond 2^53 is never trusted as money.
 */

export const SAFE_MAX = Number.MAX_SAFE_INTEGER;

export function isAmount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function isPositiveAmount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

/** a × b when the product is a safe integer, else -1 (callers treat it as out of range). */
export function mulOrOverflow(a: number, b: number): number {
  const product = a * b;
  return Number.isSafeInteger(product) ? product : -1;
}

/** ⌈a × b / d⌉ exactly, for non-negative safe integers. */
export function mulDivCeil(a: number, b: number, d: number): number {
  const product = a * b;
  if (Number.isSafeInteger(product)) return ceilDiv(product, d);
  return Number((BigInt(a) * BigInt(b) + BigInt(d) - 1n) / BigInt(d));
}

/** ⌊a × b / d⌋ exactly, for non-negative safe integers. */
export function mulDivFloor(a: number, b: number, d: number): number {
  const product = a * b;
  if (Number.isSafeInteger(product)) return floorDiv(product, d);
  return Number((BigInt(a) * BigInt(b)) / BigInt(d));
}

/** ⌊a / d⌋ for non-negative safe integers, corrected for the rounding of the float quotient. */
export function floorDiv(a: number, d: number): number {
  let q = Math.floor(a / d);
  let r = a - q * d;
  while (r < 0) { q -= 1; r += d; }
  while (r >= d) { q += 1; r -= d; }
  return q;
}

export function ceilDiv(a: number, d: number): number {
  const q = floorDiv(a, d);
  return q * d === a ? q : q + 1;
}

/** Compares a × b with c × d exactly (all non-negative safe integers): -1, 0 or 1. */
export function compareProducts(a: number, b: number, c: number, d: number): number {
  const left = a * b;
  const right = c * d;
  if (Number.isSafeInteger(left) && Number.isSafeInteger(right)) return left < right ? -1 : left > right ? 1 : 0;
  const l = BigInt(a) * BigInt(b);
  const r = BigInt(c) * BigInt(d);
  return l < r ? -1 : l > r ? 1 : 0;
}
