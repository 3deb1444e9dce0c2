import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TrailingStops } from '../src/core/trailing-stops.js';
import type { Order } from '../src/core/state.js';
import { BUY, SELL } from '../src/core/types.js';

/** What TrailingStops reads of an order. */
interface Stop { id: number; side: number; callbackBps: number; extremeTicks: number }

/** The walk as the engine first wrote it: every stop in id order, stopping at the first that fires. */
function walk(stops: Stop[], last: number): Stop | undefined {
  const bps = 10_000n;
  for (let i = 0; i < stops.length; i++) {
    const stop = stops[i]!;
    if (stop.extremeTicks === 0) stop.extremeTicks = last;
    const fires = stop.side === SELL
      ? (stop.extremeTicks = Math.max(stop.extremeTicks, last), BigInt(last) * bps <= BigInt(stop.extremeTicks) * (bps - BigInt(stop.callbackBps)))
      : (stop.extremeTicks = Math.min(stop.extremeTicks, last), BigInt(last) * bps >= BigInt(stop.extremeTicks) * (bps + BigInt(stop.callbackBps)));
    if (fires) {
      stops.splice(i, 1);
      return stop;
    }
  }
  return undefined;
}

type Step =
  | { kind: 'add'; side: number; callbackBps: number; extreme: number }
  | { kind: 'remove'; pick: number }
  | { kind: 'take'; last: number };

/** Prices near one another so that stops fire, at a scale where some products pass 2^53. */
const step = (scale: number): fc.Arbitrary<Step> => fc.oneof(
  fc.record({
    kind: fc.constant('add' as const), side: fc.constantFrom(BUY, SELL),
    callbackBps: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 9_999 })),
    extreme: fc.oneof(fc.constant(0), fc.integer({ min: 900, max: 1_100 }).map((p) => p * scale)),
  }),
  fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('take' as const), last: fc.integer({ min: 850, max: 1_150 }).map((p) => p * scale) }),
);

function run(steps: Step[]): void {
  const stops = new TrailingStops();
  const model: Stop[] = [];
  const real = new Map<number, Stop>();
  let id = 0;
  for (const s of steps) {
    if (s.kind === 'add') {
      id += 1 + (s.extreme % 3);
      const stop: Stop = { id, side: s.side, callbackBps: s.callbackBps, extremeTicks: s.extreme };
      real.set(id, stop);
      model.push({ ...stop });
      stops.push(stop as unknown as Order);
    } else if (s.kind === 'remove') {
      if (model.length === 0) continue;
      const [gone] = model.splice(s.pick % model.length, 1);
      assert.equal(stops.remove(real.get(gone!.id)! as unknown as Order), true);
      assert.equal(real.get(gone!.id)!.extremeTicks, gone!.extremeTicks, `extreme of removed stop ${gone!.id}`);
      assert.equal(stops.remove(real.get(gone!.id)! as unknown as Order), false, 'a stop is removed once');
    } else {
      const expected = walk(model, s.last);
      const actual = stops.take(s.last) as unknown as Stop | undefined;
      assert.equal(actual?.id, expected?.id, `fired at ${s.last}`);
      if (expected !== undefined) assert.equal(actual!.extremeTicks, expected.extremeTicks, `extreme of fired stop ${expected.id}`);
    }
    assert.equal(stops.size, model.length);
  }
  stops.settle();
  assert.deepEqual([...stops].map((o) => [o.id, o.extremeTicks]), model.map((o) => [o.id, o.extremeTicks]), 'waiting stops and their extremes');
}

test('trailing stops fire as the walk over every stop in id order does, and keep the same extremes', () => {
  fc.assert(fc.property(fc.array(step(1), { maxLength: 400 }), run), { numRuns: 300 });
});

test('trailing stops compare exactly when price × basis points passes 2^53', () => {
  fc.assert(fc.property(fc.array(step(2 ** 40), { maxLength: 200 }), run), { numRuns: 100 });
});

test('trailing stops keep their extremes and order across many adds and removals (the tree is rebuilt)', () => {
  // Enough stops to grow the tree several times, with removals that leave it mostly empty.
  const steps: Step[] = [];
  for (let i = 0; i < 3_000; i++) {
    steps.push({ kind: 'add', side: i % 2 === 0 ? SELL : BUY, callbackBps: 1 + ((i * 37) % 400), extreme: i % 5 === 0 ? 0 : 950 + (i % 100) });
    if (i % 3 === 0) steps.push({ kind: 'remove', pick: i * 7 });
    if (i % 4 === 0) steps.push({ kind: 'take', last: 900 + ((i * 13) % 200) });
  }
  run(steps);
});

test('a trailing stop added out of id order is refused', () => {
  const stops = new TrailingStops();
  stops.push({ id: 5, side: SELL, callbackBps: 100, extremeTicks: 1_000 } as unknown as Order);
  assert.throws(() => stops.push({ id: 4, side: SELL, callbackBps: 100, extremeTicks: 1_000 } as unknown as Order), /added after 5/);
});

test('a trailing stop fires exactly at its callback from the extreme, not a tick before', () => {
  for (const [side, waitAt, fireAt] of [[SELL, 991, 990], [BUY, 1_009, 1_010]] as const) {
    const stops = new TrailingStops();
    const stop = { id: 1, side, callbackBps: 100, extremeTicks: 1_000 };
    stops.push(stop as unknown as Order);
    assert.equal(stops.take(waitAt), undefined, `1 % from an extreme of 1,000, side ${side} waits at ${waitAt}`);
    assert.equal(stops.take(fireAt), stop as unknown as Order, `and fires at ${fireAt}`);
    assert.equal(stops.size, 0);
  }
});
