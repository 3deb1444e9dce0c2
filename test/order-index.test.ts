import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OrderIndex } from '../src/core/state.js';
import type { Order } from '../src/core/state.js';

const PAGE = 4_096;
/** The index reads nothing of an order but its id. */
const order = (id: number): Order => ({ id }) as Order;

/** Ids at both ends of four pages, so that pages fill, empty and come back often. */
const anyId = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.constantFrom(0, 1, 2, PAGE - 2, PAGE - 1)).map(([page, slot]) => page * PAGE + slot);

function assertSame(index: OrderIndex, model: Map<number, Order>, ids: Iterable<number>): void {
  assert.equal(index.size, model.size);
  for (const id of ids) {
    assert.equal(index.get(id), model.get(id), `get(${id})`);
    assert.equal(index.has(id), model.has(id), `has(${id})`);
  }
}

/** Listing walks every slot of every page: once per sequence keeps the property quick. */
function assertListing(index: OrderIndex, model: Map<number, Order>): void {
  assert.deepEqual([...index.keys()].sort((a, b) => a - b), [...model.keys()].sort((a, b) => a - b));
  assert.deepEqual([...index.values()].map((o) => o.id), [...index.keys()]);
}

test('the order index answers like a map while its pages fill, empty and are reused', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), anyId), { maxLength: 300, size: 'max' }), (ops) => {
    const index = new OrderIndex();
    const model = new Map<number, Order>();
    const seen = new Set<number>();
    for (const [add, id] of ops) {
      seen.add(id);
      if (add) {
        const o = order(id);
        index.set(id, o);
        model.set(id, o);
      } else {
        index.delete(id);
        model.delete(id);
      }
      assertSame(index, model, seen);
    }
    assertListing(index, model);
  }), { numRuns: 300 });
});

test('the order index lists orders in id order when ids arrive in ascending order, as the engine places them', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 2 * PAGE }), fc.boolean(), fc.nat()), { minLength: 1, maxLength: 200, size: 'max' }), (steps) => {
    const index = new OrderIndex();
    const open: number[] = [];
    let next = 0;
    for (const [gap, closeOne, pick] of steps) {
      next += gap;
      index.set(next, order(next));
      open.push(next);
      // Orders close in any order: an IOC at once, a resting one much later.
      if (closeOne) index.delete(open.splice(pick % open.length, 1)[0]!);
    }
    assert.deepEqual([...index.keys()], [...open].sort((a, b) => a - b));
    assert.equal(index.size, open.length);
  }), { numRuns: 300 });
});

test('an order that opens and closes at once leaves the index empty, and the next one is found in a reused page', () => {
  const index = new OrderIndex();
  for (let id = 10 * PAGE; id < 10 * PAGE + 3 * PAGE; id += 1_000) {
    index.set(id, order(id));
    assert.equal(index.get(id)?.id, id);
    index.delete(id);
    assert.equal(index.size, 0);
    assert.equal(index.get(id), undefined);
    assert.deepEqual([...index.values()], []);
  }
  // A page that comes back holds nothing of its previous life.
  index.set(5, order(5));
  for (let slot = 0; slot < PAGE; slot++) if (slot !== 5) assert.equal(index.get(slot), undefined);
});
