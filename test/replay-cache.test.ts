import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayCache } from '../src/identity/replay-cache.js';

test('the replay cache refuses a signature inside its window and forgets it once the window has passed', () => {
  const cache = new ReplayCache(1_000);
  assert.equal(cache.remember('a', 5_000, 1_000), true);
  assert.equal(cache.remember('a', 5_000, 4_999), false, 'a replay inside the window is refused');
  assert.equal(cache.remember('b', 6_000, 5_000), true);
  assert.equal(cache.remember('a', 9_000, 5_001), true, 'after its expiry the same id is new again');
  assert.equal(cache.remember('b', 9_000, 5_002), false, 'b is still inside its window');
});

test('the replay cache keeps at most its bound, forgetting the oldest first, and stays correct across compactions', () => {
  const cache = new ReplayCache(3);
  for (const id of ['a', 'b', 'c']) assert.equal(cache.remember(id, 10_000, 0), true);
  assert.equal(cache.remember('d', 10_000, 0), true);
  assert.equal(cache.remember('a', 10_000, 0), true, 'the oldest was forgotten to stay within the bound');
  assert.equal(cache.remember('d', 10_000, 0), false);
  const large = new ReplayCache(1_000_000);
  for (let i = 0; i < 200_000; i++) assert.equal(large.remember(`s${i}`, i + 100, i), true);
  for (let i = 199_901; i < 200_000; i++) assert.equal(large.remember(`s${i}`, i + 100, 200_000), false, `s${i} is inside its window`);
  assert.equal(large.remember('s199800', 0, 200_000), true, 'long expired');
});
