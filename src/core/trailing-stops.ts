/**
 * The trailing stops of one market, in id order, and the walk the engine makes over them after
 * each price change: every stop, oldest first, takes the last price into its extreme (the peak for
 * sells, the trough for buys), and the first one whose drop (or rise) from its extreme reaches its
 * callback fires; the walk stops there, so younger stops take that price only on the next walk.
 *
 * Walking every stop on every trade made a trade cost as much as the stops waiting (10,000 of them
 * held a market to about 3,500 trades a second). Here the walk is a segment tree over the stops'
 * positions that finds the first stop to fire and hands the new price to everything before it in
 * O(log n), deferring the price to whole subtrees (it is pushed down when one is split).
 *
 * A sell stop with extreme x and w = BPS − callbackBps fires at `last` when x·w ≥ last·BPS; a
 * buy stop with w = BPS + callbackBps when x·w ≤ last·BPS. The walk first takes `last` into x,
 * but that never changes the outcome: a stop whose extreme the walk moves to `last` cannot fire at
 * `last` (callbackBps ≥ 1). Taking a price p into a subtree turns its largest sell level into
 * max(level, p × its largest w), and its smallest buy level into min(level, p × its smallest w),
 * so each node keeps those two levels (as factor pairs, compared exactly) and the two w bounds.
 *
 * An unset extreme (placed before the market's first trade, stored as 0 on the order) is 0 for a
 * sell and +∞ for a buy here: taking any price into it gives that price.
 */
import { compareProducts } from './arith.js';
import type { Order } from './state.js';
import { BPS, SELL } from './types.js';

const MIN_CAPACITY = 16;

/** Compares x1·w1 with x2·w2 exactly (x may be +∞; w > 0). */
function compareLevels(x1: number, w1: number, x2: number, w2: number): number {
  if (x1 === Infinity || x2 === Infinity) return x1 === x2 ? 0 : x1 === Infinity ? 1 : -1;
  return compareProducts(x1, w1, x2, w2);
}

export class TrailingStops {
  private capacity = 0;
  /** Stops by position (id order); null where one has left. */
  private slots: (Order | null)[] = [];
  private next = 0;
  private lastAdded = 0;
  private readonly positions = new Map<number, number>();
  /** Per node: the largest sell level as x·w, and the largest w among its sells (0: none). */
  private sellX = new Float64Array(0);
  private sellW = new Float64Array(0);
  private sellMaxW = new Float64Array(0);
  /** Per node: the smallest buy level as x·w, and the smallest w among its buys (+∞: none). */
  private buyX = new Float64Array(0);
  private buyW = new Float64Array(0);
  private buyMinW = new Float64Array(0);
  /** Per inner node: prices taken by the whole subtree and not yet by its children (0 / +∞: none). */
  private pendingHigh = new Float64Array(0);
  private pendingLow = new Float64Array(0);

  constructor() {
    this.allocate(MIN_CAPACITY);
  }

  get size(): number {
    return this.positions.size;
  }

  /** Adds a stop; its extreme is order.extremeTicks (0: none yet). Stops come in id order. */
  push(order: Order): void {
    if (order.id <= this.lastAdded) throw new Error(`trailing stop ${order.id} added after ${this.lastAdded}`);
    this.lastAdded = order.id;
    if (this.next === this.capacity) this.rebuild(Math.max(MIN_CAPACITY, 2 * (this.positions.size + 1)));
    const position = this.next++;
    this.pushPath(position);
    this.slots[position] = order;
    this.positions.set(order.id, position);
    this.setLeaf(position, order, order.extremeTicks);
    this.pullPath(position);
  }

  /** Removes a waiting stop (cancelled, expired), its extreme written back to the order. */
  remove(order: Order): boolean {
    const position = this.positions.get(order.id);
    if (position === undefined) return false;
    this.clear(position);
    return true;
  }

  /**
   * The walk at price `last` (> 0): the first stop that fires, taken out, with every stop before
   * it having taken the price; or undefined, with every stop having taken it.
   */
  take(last: number): Order | undefined {
    if (!this.fires(1, last)) {
      this.apply(1, last, last);
      return undefined;
    }
    let node = 1;
    while (node < this.capacity) {
      this.pushDown(node);
      node = this.fires(2 * node, last) ? 2 * node : 2 * node + 1;
    }
    const position = node - this.capacity;
    this.applyPrefix(1, 0, this.capacity - 1, position, last);
    const order = this.slots[position]!;
    this.clear(position);
    return order;
  }

  /** Writes every waiting stop's extreme to its order (for a snapshot). */
  settle(): void {
    for (let node = 1; node < this.capacity; node++) this.pushDown(node);
    for (let position = 0; position < this.next; position++) {
      const order = this.slots[position];
      if (order !== null) order.extremeTicks = this.leafExtreme(position, order);
    }
  }

  *[Symbol.iterator](): IterableIterator<Order> {
    for (let position = 0; position < this.next; position++) {
      const order = this.slots[position];
      if (order !== null) yield order;
    }
  }

  private fires(node: number, last: number): boolean {
    return (this.sellMaxW[node]! > 0 && compareLevels(this.sellX[node]!, this.sellW[node]!, last, BPS) >= 0)
      || (this.buyMinW[node]! < Infinity && compareLevels(this.buyX[node]!, this.buyW[node]!, last, BPS) <= 0);
  }

  /** The subtree at `node` takes `high` into its sells' extremes and `low` into its buys'. */
  private apply(node: number, high: number, low: number): void {
    if (this.sellMaxW[node]! > 0 && compareLevels(high, this.sellMaxW[node]!, this.sellX[node]!, this.sellW[node]!) > 0) {
      this.sellX[node] = high;
      this.sellW[node] = this.sellMaxW[node]!;
    }
    if (this.buyMinW[node]! < Infinity && compareLevels(low, this.buyMinW[node]!, this.buyX[node]!, this.buyW[node]!) < 0) {
      this.buyX[node] = low;
      this.buyW[node] = this.buyMinW[node]!;
    }
    if (node < this.capacity) {
      if (high > this.pendingHigh[node]!) this.pendingHigh[node] = high;
      if (low < this.pendingLow[node]!) this.pendingLow[node] = low;
    }
  }

  private pushDown(node: number): void {
    const high = this.pendingHigh[node]!;
    const low = this.pendingLow[node]!;
    if (high === 0 && low === Infinity) return;
    this.apply(2 * node, high, low);
    this.apply(2 * node + 1, high, low);
    this.pendingHigh[node] = 0;
    this.pendingLow[node] = Infinity;
  }

  /** In the subtree at `node` (positions lo..hi), the positions up to `until` take `price`. */
  private applyPrefix(node: number, lo: number, hi: number, until: number, price: number): void {
    if (lo > until) return;
    if (hi <= until) {
      this.apply(node, price, price);
      return;
    }
    this.pushDown(node);
    const mid = (lo + hi) >> 1;
    this.applyPrefix(2 * node, lo, mid, until, price);
    this.applyPrefix(2 * node + 1, mid + 1, hi, until, price);
    this.pull(node);
  }

  private pull(node: number): void {
    const l = 2 * node;
    const r = l + 1;
    const lSell = compareLevels(this.sellX[l]!, this.sellW[l]!, this.sellX[r]!, this.sellW[r]!) >= 0 ? l : r;
    this.sellX[node] = this.sellX[lSell]!;
    this.sellW[node] = this.sellW[lSell]!;
    this.sellMaxW[node] = Math.max(this.sellMaxW[l]!, this.sellMaxW[r]!);
    const lBuy = compareLevels(this.buyX[l]!, this.buyW[l]!, this.buyX[r]!, this.buyW[r]!) <= 0 ? l : r;
    this.buyX[node] = this.buyX[lBuy]!;
    this.buyW[node] = this.buyW[lBuy]!;
    this.buyMinW[node] = Math.min(this.buyMinW[l]!, this.buyMinW[r]!);
  }

  /** Pushes every pending price on the way from the root down to a position. */
  private pushPath(position: number): void {
    const leaf = position + this.capacity;
    for (let shift = Math.log2(this.capacity); shift > 0; shift--) this.pushDown(leaf >> shift);
  }

  private pullPath(position: number): void {
    for (let node = (position + this.capacity) >> 1; node >= 1; node >>= 1) this.pull(node);
  }

  private setLeaf(position: number, order: Order | null, extreme: number): void {
    const node = position + this.capacity;
    this.sellX[node] = 0;
    this.sellW[node] = 0;
    this.sellMaxW[node] = 0;
    this.buyX[node] = Infinity;
    this.buyW[node] = 1;
    this.buyMinW[node] = Infinity;
    if (order === null) return;
    if (order.side === SELL) {
      this.sellX[node] = extreme;
      this.sellW[node] = this.sellMaxW[node] = BPS - order.callbackBps;
    } else {
      this.buyX[node] = extreme === 0 ? Infinity : extreme;
      this.buyW[node] = this.buyMinW[node] = BPS + order.callbackBps;
    }
  }

  /** A leaf's extreme as the order stores it (0: none yet); its path must have been pushed. */
  private leafExtreme(position: number, order: Order): number {
    const node = position + this.capacity;
    if (order.side === SELL) return this.sellX[node]!;
    const x = this.buyX[node]!;
    return x === Infinity ? 0 : x;
  }

  private clear(position: number): void {
    this.pushPath(position);
    const order = this.slots[position]!;
    order.extremeTicks = this.leafExtreme(position, order);
    this.slots[position] = null;
    this.positions.delete(order.id);
    this.setLeaf(position, null, 0);
    this.pullPath(position);
  }

  private allocate(capacity: number): void {
    this.capacity = capacity;
    this.slots = new Array<Order | null>(capacity).fill(null);
    this.next = 0;
    this.positions.clear();
    this.sellX = new Float64Array(2 * capacity);
    this.sellW = new Float64Array(2 * capacity);
    this.sellMaxW = new Float64Array(2 * capacity);
    this.buyX = new Float64Array(2 * capacity).fill(Infinity);
    this.buyW = new Float64Array(2 * capacity).fill(1);
    this.buyMinW = new Float64Array(2 * capacity).fill(Infinity);
    this.pendingHigh = new Float64Array(capacity);
    this.pendingLow = new Float64Array(capacity).fill(Infinity);
  }

  /** Moves the waiting stops, in order, to the front of a new tree of at least `atLeast` positions (a power of two). */
  private rebuild(atLeast: number): void {
    this.settle();
    const waiting = [...this];
    let capacity = MIN_CAPACITY;
    while (capacity < atLeast) capacity *= 2;
    this.allocate(capacity);
    for (const order of waiting) {
      const position = this.next++;
      this.slots[position] = order;
      this.positions.set(order.id, position);
      this.setLeaf(position, order, order.extremeTicks);
    }
    for (let node = capacity - 1; node >= 1; node--) this.pull(node);
  }
}
