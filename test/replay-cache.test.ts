import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { ReplayCache } from '../src/identity/replay-cache.js';

/** A signature-like id: 64 hex digits, unpredictable, different for each name. */
const sig = (name: string | number): string => createHash('sha256').update(String(name)).digest('hex');

test('the replay cache refuses a signature inside its window and forgets it once the window has passed', () => {
  const cache = new ReplayCache(1_000);
  assert.equal(cache.remember(sig('a'), 0, 5_000, 1_000), true);
  assert.equal(cache.remember(sig('a'), 0, 5_000, 4_999), false, 'a replay inside the window is refused');
  assert.equal(cache.remember(sig('b'), 1_000, 6_000, 5_000), true);
  assert.equal(cache.remember(sig('a'), 4_000, 9_000, 5_001), true, 'after its expiry the same id is new again');
  assert.equal(cache.remember(sig('b'), 1_000, 9_000, 5_002), false, 'b is still inside its window');
  assert.equal(cache.forgottenThrough, Number.NEGATIVE_INFINITY, 'nothing was forgotten inside its window');
});

test('the replay cache keeps at most its bound, and whatever it forgets inside its window raises the time before which requests are refused', () => {
  const cache = new ReplayCache(3);
  for (const [id, signedAt] of [['a', 100], ['b', 101], ['c', 102]] as const) assert.equal(cache.remember(sig(id), signedAt, 10_000, 200), true);
  assert.equal(cache.forgottenThrough, Number.NEGATIVE_INFINITY);
  assert.equal(cache.remember(sig('d'), 103, 10_000, 200), true);
  // 'a' left the set to stay within the bound: a replay of it is now caught by the time instead.
  assert.equal(cache.forgottenThrough, 100);
  assert.equal(cache.remember(sig('d'), 103, 10_000, 200), false);
  assert.equal(cache.remember(sig('e'), 104, 10_000, 200), true);
  assert.equal(cache.forgottenThrough, 101, "'b' went next");
  assert.equal(cache.size, 3);
  // Entries that expire leave without raising it.
  const expiring = new ReplayCache(2);
  assert.equal(expiring.remember(sig('x'), 0, 50, 0), true);
  assert.equal(expiring.remember(sig('y'), 10, 60, 0), true);
  assert.equal(expiring.remember(sig('z'), 100, 200, 100), true);
  assert.equal(expiring.forgottenThrough, Number.NEGATIVE_INFINITY);
});

test('the replay cache identifies a signature by its first 128 bits, in either case of hex, and refuses an id that is not hex', () => {
  const cache = new ReplayCache(10);
  const id = sig('case');
  assert.equal(cache.remember(id.toUpperCase(), 1, 100, 1), true);
  assert.equal(cache.remember(id, 1, 100, 2), false, 'the same signature in lower case is a replay');
  assert.equal(cache.remember(`${id.slice(0, 32)}${'0'.repeat(96)}`, 1, 100, 3), false, 'an Ed25519-length id with the same first half');
  assert.equal(cache.remember(`${id.slice(0, 31)}${id[31] === '0' ? '1' : '0'}${id.slice(32)}`, 1, 100, 4), true, 'one digit changed in the first 32 is another id');
  assert.throws(() => cache.remember('abc', 1, 100, 5), RangeError);
  assert.throws(() => cache.remember(`${'g'}${id.slice(1)}`, 1, 100, 5), RangeError);
  assert.equal(cache.size, 2, 'refused ids were not stored');
});

test('the replay cache stays correct while its ring grows and wraps', () => {
  const large = new ReplayCache(1_000_000);
  for (let i = 0; i < 200_000; i++) assert.equal(large.remember(sig(`s${i}`), i, i + 100, i), true);
  for (let i = 199_901; i < 200_000; i++) assert.equal(large.remember(sig(`s${i}`), i, i + 100, 200_000), false, `s${i} is inside its window`);
  assert.equal(large.remember(sig('s199800'), 199_800, 0, 200_000), true, 'long expired');
  const bounded = new ReplayCache(100_000);
  for (let i = 0; i < 300_000; i++) assert.equal(bounded.remember(sig(`t${i}`), i, 1_000_000, i), true);
  assert.equal(bounded.forgottenThrough, 199_999, 'the 200,000 oldest were forgotten inside their window');
  assert.equal(bounded.remember(sig('t200000'), 200_000, 1_000_000, 300_000), false, 'the newest 100,000 are still remembered');
  assert.equal(bounded.remember(sig('t199999'), 199_999, 1_000_000, 300_000), true, 'a forgotten one is new to the set (the caller refuses it by forgottenThrough)');
});

/**
 * The cache's contract written the plain way: a set of ids beside a queue in arrival order. The
 * typed-array cache must answer every call as this does, and report the same forgottenThrough.
 */
class PlainReplayCache {
  private readonly seen = new Set<string>();
  private readonly queue: { id: string; signedAt: number; expiresAt: number }[] = [];
  forgottenThrough = Number.NEGATIVE_INFINITY;

  constructor(private readonly max: number) {}

  remember(id: string, signedAt: number, expiresAt: number, now: number): boolean {
    const key = id.slice(0, 32).toLowerCase();
    while (this.queue.length > 0 && this.queue[0]!.expiresAt < now) this.seen.delete(this.queue.shift()!.id);
    if (this.seen.has(key)) return false;
    if (this.seen.size >= this.max) {
      const oldest = this.queue.shift()!;
      this.seen.delete(oldest.id);
      this.forgottenThrough = Math.max(this.forgottenThrough, oldest.signedAt);
    }
    this.seen.add(key);
    this.queue.push({ id: key, signedAt, expiresAt });
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}

// Ids sharing six first words (which pick the hash table's home bucket): at the table's start and at
// its end, whose probe runs wrap around to the start. So collisions, removals from the middle of
// runs and wrapped runs all happen.
const FIRST_WORDS = ['00000000', '00000001', '00000002', '7ffffffe', 'fffffffe', 'ffffffff'];
const collidingIds = (count: number): string[] => Array.from({ length: count }, (_, i) => `${FIRST_WORDS[i % FIRST_WORDS.length]}${sig(i).slice(8)}`);

/** Feeds both caches the same calls and fails at the first answer, forgottenThrough or size that differs. */
function sameAnswers(ids: string[], max: number, calls: { id: number; age: number; life: number; step: number; upper: boolean }[]): void {
  const cache = new ReplayCache(max);
  const plain = new PlainReplayCache(max);
  let now = 1_000;
  for (const { id, age, life, step, upper } of calls) {
    now += step;
    const text = upper ? ids[id]!.toUpperCase() : ids[id]!;
    const signedAt = now - age;
    assert.equal(cache.remember(text, signedAt, signedAt + life, now), plain.remember(text, signedAt, signedAt + life, now));
    assert.equal(cache.forgottenThrough, plain.forgottenThrough);
    assert.equal(cache.size, plain.size);
  }
}

test('the replay cache answers every call as a plain set with a queue does: replays, expiries, the bound and its wrap-around', () => {
  const ids = collidingIds(48);
  const call = fc.record({ id: fc.integer({ min: 0, max: ids.length - 1 }), age: fc.integer({ min: 0, max: 30 }), life: fc.integer({ min: 0, max: 60 }), step: fc.integer({ min: 0, max: 8 }), upper: fc.boolean() });
  // size 'max': sequences up to 400 calls, so that small bounds are hit and the ring wraps many times.
  fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.array(call, { maxLength: 400, size: 'max' }), (max, calls) => sameAnswers(ids, max, calls)), { numRuns: 300 });
});

test('the replay cache answers as the plain one while its ring grows past its first 1,024 slots, with entries expiring meanwhile', () => {
  const ids = collidingIds(6_000);
  // Mostly fresh ids (some replays), long lives: more than 1,024 held, so the ring doubles while
  // its oldest entries sit anywhere in it; some bounds are reached after the growth.
  const call = fc.record({ id: fc.integer({ min: 0, max: ids.length - 1 }), age: fc.integer({ min: 0, max: 50 }), life: fc.integer({ min: 0, max: 4_000 }), step: fc.integer({ min: 0, max: 3 }), upper: fc.boolean() });
  fc.assert(fc.property(fc.integer({ min: 1_100, max: 2_500 }), fc.array(call, { minLength: 1_500, maxLength: 3_000 }), (max, calls) => sameAnswers(ids, max, calls)), { numRuns: 25 });
});
