import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatMinor, MoneyError, parseMinor, parseStepped } from '../src/money/index.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof MoneyError);
    return error.code;
  }
  return 'accepted';
}

test('parses decimal strings into exact minor units', () => {
  assert.equal(parseMinor('1.5', 8), 150_000_000n);
  assert.equal(parseMinor('0.00000001', 8), 1n);
  assert.equal(parseMinor('21000000', 8), 2_100_000_000_000_000n);
  assert.equal(parseMinor('007.10', 2), 710n);
  assert.equal(parseMinor('1.50000000', 1), 15n, 'trailing zeros beyond the scale are exact, so accepted');
  assert.equal(parseMinor('-2.5', 1, { allowNegative: true }), -25n);
  assert.equal(parseMinor('0', 8), 0n);
});

test('rejects what cannot be represented exactly, each with its own code', () => {
  assert.equal(code(() => parseMinor('1.123', 2)), 'TOO_MANY_DECIMALS');
  assert.equal(code(() => parseMinor('1e5', 8)), 'MALFORMED');
  assert.equal(code(() => parseMinor('1E-3', 8)), 'MALFORMED');
  assert.equal(code(() => parseMinor('NaN', 8)), 'MALFORMED');
  assert.equal(code(() => parseMinor('Infinity', 8)), 'MALFORMED');
  assert.equal(code(() => parseMinor('+1', 8)), 'MALFORMED');
  assert.equal(code(() => parseMinor('-1', 8)), 'NEGATIVE_NOT_ALLOWED');
  assert.equal(code(() => parseMinor('-0', 8)), 'NEGATIVE_NOT_ALLOWED');
  assert.equal(code(() => parseMinor('', 8)), 'EMPTY');
  assert.equal(code(() => parseMinor(' 1', 8)), 'MALFORMED');
  assert.equal(code(() => parseMinor('1 ', 8)), 'MALFORMED');
  assert.equal(code(() => parseMinor('1,5', 8)), 'MALFORMED');
  assert.equal(code(() => parseMinor('.5', 8)), 'MALFORMED');
  assert.equal(code(() => parseMinor('5.', 8)), 'MALFORMED');
  assert.equal(code(() => parseMinor('0x10', 8)), 'MALFORMED');
  assert.equal(code(() => parseMinor('１２３', 0)), 'MALFORMED', 'full-width digits are not digits');
  assert.equal(code(() => parseMinor(1.5, 8)), 'NOT_A_STRING');
  assert.equal(code(() => parseMinor(null, 8)), 'NOT_A_STRING');
  assert.equal(code(() => parseMinor('90071992.54740992', 8)), 'OUT_OF_RANGE', '2^53 minor units is beyond the range');
  assert.equal(code(() => parseMinor('90071992.54740991', 8)), 'accepted', '2^53 - 1 is the largest');
  assert.equal(code(() => parseMinor('1'.repeat(65), 0)), 'OUT_OF_RANGE');
  assert.equal(code(() => parseMinor('0', 8, { allowZero: false })), 'ZERO_NOT_ALLOWED');
  assert.equal(code(() => parseMinor('1', 19)), 'INVALID_SCALE');
});

test('a stepped value must be a whole multiple of its step', () => {
  assert.equal(parseStepped('100.25', 2, 25n), 10_025n);
  assert.equal(code(() => parseStepped('100.26', 2, 25n)), 'NOT_A_MULTIPLE');
});

test('formats minor units with padding or trimmed', () => {
  assert.equal(formatMinor(150_000_000n, 8), '1.50000000');
  assert.equal(formatMinor(150_000_000, 8, true), '1.5');
  assert.equal(formatMinor(1n, 8), '0.00000001');
  assert.equal(formatMinor(-25n, 1), '-2.5');
  assert.equal(formatMinor(7n, 0), '7');
  assert.equal(formatMinor(100n, 2, true), '1');
  assert.throws(() => formatMinor(0.5, 2), MoneyError);
});

test('decimal → minor → decimal round-trips exactly for every amount and scale', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: BigInt(Number.MAX_SAFE_INTEGER) }), fc.integer({ min: 0, max: 18 }), fc.boolean(), (minor, scale, trim) => {
      const text = formatMinor(minor, scale, trim);
      assert.equal(parseMinor(text, scale), minor);
      if (!trim) assert.equal(formatMinor(parseMinor(text, scale), scale), text);
    }),
    { numRuns: 2000 },
  );
});
