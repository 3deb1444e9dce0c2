import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayCache } from '../src/identity/replay-cache.js';

test('the replay cache refuses a signature inside its window and forgets it once the window has passed', () => {
  const cache = new ReplayCache(1_000);
  assert.equal(cache.remember('a', 0, 5_000, 1_000), true);
  assert.equal(cache.remember('a', 0, 5_000, 4_999), false, 'a replay inside the window is refused');
  assert.equal(cache.remember('b', 1_000, 6_000, 5_000), true);
  assert.equal(cache.remember('a', 4_000, 9_000, 5_001), true, 'after its expiry the same id is new again');
  assert.equal(cache.remember('b', 1_000, 9_000, 5_002), false, 'b is still inside its window');
  assert.equal(cache.forgottenThrough, Number.NEGATIVE_INFINITY, 'nothing was forgotten inside its window');
});

test('the replay cache keeps at most its bound, and whatever it forgets inside its window raises the time before which requests are refused', () => {
  const cache = new ReplayCache(3);
  for (const [id, signedAt] of [['a', 100], ['b', 101], ['c', 102]] as const) assert.equal(cache.remember(id, signedAt, 10_000, 200), true);
  assert.equal(cache.forgottenThrough, Number.NEGATIVE_INFINITY);
  assert.equal(cache.remember('d', 103, 10_000, 200), true);
  // 'a' left the set to stay within the bound: a replay of it is now caught by the time instead.
  assert.equal(cache.forgottenThrough, 100);
  assert.equal(cache.remember('d', 103, 10_000, 200), false);
  assert.equal(cache.remember('e', 104, 10_000, 200), true);
  assert.equal(cache.forgottenThrough, 101, "'b' went next");
  // Entries that expire leave without raising it.
  const expiring = new ReplayCache(2);
  assert.equal(expiring.remember('x', 0, 50, 0), true);
  assert.equal(expiring.remember('y', 10, 60, 0), true);
  assert.equal(expiring.remember('z', 100, 200, 100), true);
  assert.equal(expiring.forgottenThrough, Number.NEGATIVE_INFINITY);
});

test('the replay cache stays correct across compactions of its arrays', () => {
  const large = new ReplayCache(1_000_000);
  for (let i = 0; i < 200_000; i++) assert.equal(large.remember(`s${i}`, i, i + 100, i), true);
  for (let i = 199_901; i < 200_000; i++) assert.equal(large.remember(`s${i}`, i, i + 100, 200_000), false, `s${i} is inside its window`);
  assert.equal(large.remember('s199800', 199_800, 0, 200_000), true, 'long expired');
  const bounded = new ReplayCache(100_000);
  for (let i = 0; i < 300_000; i++) assert.equal(bounded.remember(`t${i}`, i, 1_000_000, i), true);
  assert.equal(bounded.forgottenThrough, 199_999, 'the 200,000 oldest were forgotten inside their window');
  assert.equal(bounded.remember('t200000', 200_000, 1_000_000, 300_000), false, 'the newest 100,000 are still remembered');
});
