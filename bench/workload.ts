/**
 * Seeded, deterministic order-book workload (the shape of research/perf.md §2a):
 * a prefill of passive limits, then ~50 % passive limits, ~30 % cancels of orders that are
 * really resting at that moment, ~10 % market orders and ~10 % crossing limits, from 1,000
 * accounts. A small price-time simulator (with the engine's self-trade rule, cancel taker)
 * tracks the book so that every cancel targets a resting order.
 */

export const KIND_LIMIT = 0;
export const KIND_CANCEL = 1;
export const KIND_MARKET = 2;
export const KIND_STOP = 3;

export interface Workload {
  /** Number of operations, prefill included. */
  count: number;
  prefill: number;
  kind: Uint8Array;
  /** 0 buy, 1 sell. */
  side: Uint8Array;
  market: Uint8Array;
  /** Price in ticks (limits), stop price in ticks (stops). */
  price: Float64Array;
  /** Quantity in lots. */
  size: Float64Array;
  /** Account (1-based; account n belongs to user n). */
  account: Uint16Array;
  /** Order id targeted by a cancel; the op's own id (its index + 1) otherwise. */
  target: Float64Array;
  /** Final state of the simulated books, for the correctness check. */
  final: BookSummary[];
}

export interface BookSummary {
  resting: number;
  bidLevels: number;
  askLevels: number;
  bidVolume: number;
  askVolume: number;
  bestBid: number;
  bestAsk: number;
}

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimOrder { id: number; side: number; price: number; size: number; user: number }

/** Price-time book with the engine's default self-trade prevention (cancel the taker). */
class SimBook {
  readonly levels = [new Map<number, SimOrder[]>(), new Map<number, SimOrder[]>()];
  readonly prices: number[][] = [[], []]; // sorted ascending
  readonly orders = new Map<number, SimOrder>();
  readonly ids: number[] = []; // resting ids, for random picks (lazy removal)

  best(side: number): number | undefined {
    const p = this.prices[side]!;
    if (p.length === 0) return undefined;
    return side === 0 ? p[p.length - 1] : p[0];
  }

  private insertPrice(side: number, price: number): void {
    const p = this.prices[side]!;
    let lo = 0;
    let hi = p.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (p[mid]! < price) lo = mid + 1; else hi = mid; }
    p.splice(lo, 0, price);
  }

  private dropPrice(side: number, price: number): void {
    const p = this.prices[side]!;
    p.splice(p.indexOf(price), 1);
    this.levels[side]!.delete(price);
  }

  rest(order: SimOrder): void {
    const levels = this.levels[order.side]!;
    let queue = levels.get(order.price);
    if (queue === undefined) {
      queue = [];
      levels.set(order.price, queue);
      this.insertPrice(order.side, order.price);
    }
    queue.push(order);
    this.orders.set(order.id, order);
    this.ids.push(order.id);
  }

  cancel(id: number): void {
    const order = this.orders.get(id)!;
    const queue = this.levels[order.side]!.get(order.price)!;
    queue.splice(queue.indexOf(order), 1);
    if (queue.length === 0) this.dropPrice(order.side, order.price);
    this.orders.delete(id);
  }

  /** Matches a taker; returns the size left, or -1 when self-trade prevention cancelled it. */
  take(side: number, limit: number, size: number, user: number): number {
    const opposite = 1 - side;
    while (size > 0) {
      const price = this.best(opposite);
      if (price === undefined) return size;
      if (side === 0 ? price > limit : price < limit) return size;
      const queue = this.levels[opposite]!.get(price)!;
      while (size > 0 && queue.length > 0) {
        const maker = queue[0]!;
        if (maker.user === user) return -1;
        const q = Math.min(size, maker.size);
        size -= q;
        maker.size -= q;
        if (maker.size === 0) {
          queue.shift();
          this.orders.delete(maker.id);
        }
      }
      if (queue.length === 0) this.dropPrice(opposite, price);
    }
    return size;
  }

  randomResting(rng: () => number): number | undefined {
    while (this.ids.length > 0) {
      const index = Math.floor(rng() * this.ids.length);
      const id = this.ids[index]!;
      if (this.orders.has(id)) {
        this.ids[index] = this.ids[this.ids.length - 1]!;
        this.ids.pop();
        return id;
      }
      this.ids[index] = this.ids[this.ids.length - 1]!;
      this.ids.pop();
    }
    return undefined;
  }

  summary(): BookSummary {
    let bidVolume = 0;
    let askVolume = 0;
    for (const q of this.levels[0]!.values()) for (const o of q) bidVolume += o.size;
    for (const q of this.levels[1]!.values()) for (const o of q) askVolume += o.size;
    return {
      resting: this.orders.size, bidLevels: this.levels[0]!.size, askLevels: this.levels[1]!.size, bidVolume, askVolume,
      bestBid: this.best(0) ?? 0, bestAsk: this.best(1) ?? 0,
    };
  }
}

export interface WorkloadOptions {
  operations: number;
  prefill: number;
  accounts: number;
  markets: number;
  /** Share of operations that are stop orders (multi-market variant). */
  stopShare: number;
  seed: number;
}

const MID = 100_000;

export function generateWorkload(options: WorkloadOptions): Workload {
  const rng = mulberry32(options.seed);
  const count = options.prefill + options.operations;
  const w: Workload = {
    count, prefill: options.prefill, kind: new Uint8Array(count), side: new Uint8Array(count), market: new Uint8Array(count),
    price: new Float64Array(count), size: new Float64Array(count), account: new Uint16Array(count), target: new Float64Array(count), final: [],
  };
  const books = Array.from({ length: options.markets }, () => new SimBook());
  const depth = (): number => Math.min(101, 1 + Math.floor(Math.log(1 - rng()) / Math.log(1 - 1 / 8)));
  const passive = (book: SimBook, side: number): number => {
    const opposite = book.best(1 - side) ?? (side === 0 ? MID + 1 : MID - 1);
    return side === 0 ? opposite - depth() : opposite + depth();
  };
  for (let i = 0; i < count; i++) {
    const id = i + 1;
    const m = options.markets === 1 ? 0 : Math.floor(rng() * options.markets);
    const book = books[m]!;
    const account = 1 + Math.floor(rng() * options.accounts);
    const side = rng() < 0.5 ? 0 : 1;
    const size = 1 + Math.floor(rng() * 10);
    w.market[i] = m;
    w.account[i] = account;
    w.side[i] = side;
    w.size[i] = size;
    w.target[i] = id;
    const roll = i < options.prefill ? 0 : rng();
    if (roll < 0.5) {
      w.kind[i] = KIND_LIMIT;
      w.price[i] = passive(book, side);
      book.rest({ id, side, price: w.price[i]!, size, user: account });
    } else if (roll < 0.8) {
      const target = book.randomResting(rng);
      if (target === undefined) {
        w.kind[i] = KIND_LIMIT;
        w.price[i] = passive(book, side);
        book.rest({ id, side, price: w.price[i]!, size, user: account });
      } else {
        w.kind[i] = KIND_CANCEL;
        w.target[i] = target;
        w.account[i] = book.orders.get(target)!.user;
        book.cancel(target);
      }
    } else if (roll < 0.9 - options.stopShare) {
      w.kind[i] = KIND_MARKET;
      book.take(side, side === 0 ? Infinity : 0, size, account);
    } else if (roll < 0.9) {
      // A stop far enough from the touch to rest for a while; the simulator does not fire it,
      // so cancels in the multi-market variant can miss orders that stops consumed.
      w.kind[i] = KIND_STOP;
      const touch = book.best(side === 0 ? 1 : 0) ?? MID;
      w.price[i] = side === 0 ? touch + 1 + Math.floor(rng() * 5) : touch - 1 - Math.floor(rng() * 5);
    } else {
      w.kind[i] = KIND_LIMIT;
      const touch = book.best(1 - side) ?? MID;
      const through = Math.floor(rng() * 6);
      w.price[i] = side === 0 ? touch + through : touch - through;
      const left = book.take(side, w.price[i]!, size, account);
      if (left > 0) book.rest({ id, side, price: w.price[i]!, size: left, user: account });
    }
  }
  w.final = books.map((b) => b.summary());
  return w;
}
