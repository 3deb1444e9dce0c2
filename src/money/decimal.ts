/**
 * Exact conversion between decimal strings (the wire format) and integer minor units.
 *
 * Nothing here ever goes through an IEEE-754 double: digits are read as text and
 * assembled into a bigint. Whatever cannot be represented exactly is refused.
 */

export type MoneyErrorCode =
  | 'NOT_A_STRING'
  | 'EMPTY'
  | 'MALFORMED'
  | 'NEGATIVE_NOT_ALLOWED'
  | 'ZERO_NOT_ALLOWED'
  | 'TOO_MANY_DECIMALS'
  | 'OUT_OF_RANGE'
  | 'NOT_A_MULTIPLE'
  | 'INVALID_SCALE';

export class MoneyError extends Error {
  readonly code: MoneyErrorCode;
  constructor(code: MoneyErrorCode, message: string) {
    super(message);
    this.name = 'MoneyError';
    this.code = code;
  }
}

/** The largest scale (decimal places) an asset or price may have. */
export const SCALE_MAX = 18;
/** The longest decimal string we read: bounded input, bounded work. */
export const DECIMAL_LENGTH_MAX = 64;
/** Minor-unit amounts must fit a safe integer so the engine can hold them in numbers. */
export const MINOR_MAX = BigInt(Number.MAX_SAFE_INTEGER);

const DECIMAL_PATTERN = /^(-?)(\d+)(?:\.(\d+))?$/;

export interface ParseOptions {
  /** Accept a leading '-' (never a '+'). Default false. */
  allowNegative?: boolean;
  /** Accept zero. Default true. */
  allowZero?: boolean;
  /** Largest absolute value in minor units. Default MINOR_MAX (2^53 - 1). */
  maxMinor?: bigint;
  /** Name used in error messages, e.g. "price". */
  field?: string;
}

function checkScale(scale: number): void {
  if (!Number.isInteger(scale) || scale < 0 || scale > SCALE_MAX) {
    throw new MoneyError('INVALID_SCALE', `scale must be an integer in [0, ${SCALE_MAX}], got ${String(scale)}`);
  }
}

/**
 * Parses a decimal string into minor units at the given scale.
 * "1.5" at scale 8 is 150000000n. Trailing zeros beyond the scale are accepted ("1.50" at
 * scale 1) because the value is still exact; any other extra digit is refused.
 */
export function parseMinor(text: unknown, scale: number, options: ParseOptions = {}): bigint {
  checkScale(scale);
  const field = options.field ?? 'amount';
  if (typeof text !== 'string') throw new MoneyError('NOT_A_STRING', `${field} must be a decimal string`);
  if (text.length === 0) throw new MoneyError('EMPTY', `${field} is empty`);
  if (text.length > DECIMAL_LENGTH_MAX) {
    throw new MoneyError('OUT_OF_RANGE', `${field} is longer than ${DECIMAL_LENGTH_MAX} characters`);
  }
  const match = DECIMAL_PATTERN.exec(text);
  if (match === null) {
    throw new MoneyError('MALFORMED', `${field} must look like 123 or 123.45 (no sign, exponent, spaces or NaN): ${JSON.stringify(text)}`);
  }
  const negative = match[1] === '-';
  const whole = match[2]!;
  let fraction = match[3] ?? '';
  if (fraction.length > scale) {
    const extra = fraction.slice(scale);
    if (!/^0+$/.test(extra)) {
      throw new MoneyError('TOO_MANY_DECIMALS', `${field} has more than ${scale} decimal places: ${text}`);
    }
    fraction = fraction.slice(0, scale);
  }
  const digits = whole + fraction.padEnd(scale, '0');
  const magnitude = BigInt(digits);
  if (negative && !options.allowNegative) {
    throw new MoneyError('NEGATIVE_NOT_ALLOWED', `${field} must not be negative: ${text}`);
  }
  if (magnitude === 0n && options.allowZero === false) {
    throw new MoneyError('ZERO_NOT_ALLOWED', `${field} must be greater than zero`);
  }
  const max = options.maxMinor ?? MINOR_MAX;
  if (magnitude > max) throw new MoneyError('OUT_OF_RANGE', `${field} is beyond the supported range: ${text}`);
  return negative ? -magnitude : magnitude;
}

/** parseMinor for the engine's safe-integer hot path. */
export function parseMinorNumber(text: unknown, scale: number, options: ParseOptions = {}): number {
  return Number(parseMinor(text, scale, options));
}

/**
 * Formats minor units as a decimal string. By default the fraction is padded to the scale
 * ("1.50000000"); with trim, trailing zeros go ("1.5").
 */
export function formatMinor(minor: bigint | number, scale: number, trim = false): string {
  checkScale(scale);
  if (typeof minor === 'number' && !Number.isSafeInteger(minor)) {
    throw new MoneyError('OUT_OF_RANGE', `not a safe integer amount: ${String(minor)}`);
  }
  // Safe integers print exactly as they are; only bigints need the bigint path.
  const negative = minor < 0;
  const magnitude = typeof minor === 'number' ? String(Math.abs(minor)) : (negative ? -minor : minor).toString();
  const digits = magnitude.padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  let fraction = digits.slice(digits.length - scale);
  if (trim) fraction = fraction.replace(/0+$/, '');
  const sign = negative ? '-' : '';
  return fraction.length > 0 ? `${sign}${whole}.${fraction}` : `${sign}${whole}`;
}

/**
 * Parses a decimal that must be a whole multiple of a step (a tick or a lot), returning the
 * value in minor units. The step is itself in minor units.
 */
export function parseStepped(text: unknown, scale: number, stepMinor: bigint, options: ParseOptions = {}): bigint {
  const minor = parseMinor(text, scale, options);
  if (stepMinor <= 0n) throw new MoneyError('INVALID_SCALE', 'step must be positive');
  if (minor % stepMinor !== 0n) {
    throw new MoneyError('NOT_A_MULTIPLE', `${options.field ?? 'amount'} must be a multiple of ${formatMinor(stepMinor, scale, true)}`);
  }
  return minor;
}

/** 10^n as a bigint. */
export function pow10(n: number): bigint {
  checkScale(n);
  return 10n ** BigInt(n);
}
