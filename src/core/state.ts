/**
 * The engine's mutable state: assets, markets with their books, users, accounts, balances
 * and orders. Plain classes with fixed shapes; no behaviour beyond bookkeeping of the
 * structures themselves (the rules live in engine.ts).
 */
import type { FeeTier, MarketState, OrderType, Restriction, StpMode, TimeInForce } from './types.js';
import { TrailingStops } from './trailing-stops.js';

export { BUY, SELL } from './types.js';

/** Where an order is in its life. */
export const PENDING = 0; // conditional order waiting for its trigger
export const WORKING = 1; // being matched, or resting on the book
export const DONE = 2;

export class Asset {
  constructor(
    readonly index: number,
    readonly code: string,
    readonly precision: number,
    readonly minFee: number,
  ) {}
}

export class Balance {
  available = 0;
  reserved = 0;
  locked = 0;
  /** Command number in which this balance last changed; drives one balance event per command. */
  touchedAt = -1;
  constructor(readonly account: Account, readonly asset: Asset) {}
}

export class User {
  level: number;
  /** market index → rolling 30-day volume in the market's quote minor units. */
  readonly volumes = new Map<number, VolumeWindow>();
  constructor(readonly id: number, level: number) {
    this.level = level;
  }
}

export const VOLUME_DAYS = 30;
const DAY_MS = 86_400_000;

/** Traded volume per UTC day over the last 30 days, in a ring of day buckets. */
export class VolumeWindow {
  readonly days = new Array<number>(VOLUME_DAYS).fill(-1);
  readonly amounts = new Array<number>(VOLUME_DAYS).fill(0);

  add(ts: number, amount: number): void {
    const day = Math.floor(ts / DAY_MS);
    const slot = day % VOLUME_DAYS;
    if (this.days[slot] !== day) {
      this.days[slot] = day;
      this.amounts[slot] = 0;
    }
    this.amounts[slot] = Math.min(Number.MAX_SAFE_INTEGER, this.amounts[slot]! + amount);
  }

  /** Volume of the 30 days ending with the day of ts (today included). */
  total(ts: number): number {
    const today = Math.floor(ts / DAY_MS);
    let sum = 0;
    for (let i = 0; i < VOLUME_DAYS; i++) {
      const day = this.days[i]!;
      if (day > today - VOLUME_DAYS && day <= today) sum = Math.min(Number.MAX_SAFE_INTEGER, sum + this.amounts[i]!);
    }
    return sum;
  }
}

export class Account {
  restriction: Restriction = 'none';
  /** asset index → balance (created on first use). */
  readonly balances: (Balance | undefined)[] = [];
  /** client order id → open order (working or pending). */
  readonly openByClientId = new Map<string, Order>();
  /**
   * Open orders of the account, newest (largest id) first, as an intrusive list (O(1) add and
   * remove, no hashing). Orders join when placed, and a restore adds them oldest first.
   */
  openHead: Order | null = null;
  /** Open orders per market index (the markets' open-order limits count these). */
  readonly openInMarket: number[] = [];
  /** When the dead man's switch cancels every open order (epoch ms; 0: not armed). */
  cancelAllAt = 0;
  /** This account's place in the engine's CancelAfterHeap (-1: not in it). */
  cancelAfterSlot = -1;
  constructor(readonly id: number, readonly user: User | null) {}

  addOpen(order: Order): void {
    order.accountNext = this.openHead;
    order.accountPrev = null;
    if (this.openHead !== null) this.openHead.accountPrev = order;
    this.openHead = order;
    const counts = this.openInMarket;
    // Grown with zeros rather than holes, so that the array stays packed small integers.
    while (counts.length <= order.market.index) counts.push(0);
    counts[order.market.index]! += 1;
  }

  removeOpen(order: Order): void {
    if (order.accountPrev !== null) order.accountPrev.accountNext = order.accountNext;
    else this.openHead = order.accountNext;
    if (order.accountNext !== null) order.accountNext.accountPrev = order.accountPrev;
    order.accountPrev = null;
    order.accountNext = null;
    this.openInMarket[order.market.index]! -= 1;
  }

  /** Open orders, oldest (smallest id) first. */
  openOrdersById(): Order[] {
    const orders: Order[] = [];
    for (let o = this.openHead; o !== null; o = o.accountNext) orders.push(o);
    return orders.sort((a, b) => a.id - b.id);
  }

  balance(asset: Asset): Balance {
    let balance = this.balances[asset.index];
    if (balance === undefined) {
      balance = new Balance(this, asset);
      this.balances[asset.index] = balance;
    }
    return balance;
  }
}

export class Order {
  // Queue links within a price level.
  prev: Order | null = null;
  next: Order | null = null;
  level: Level | null = null;
  // Links in the account's list of open orders.
  accountPrev: Order | null = null;
  accountNext: Order | null = null;

  state = WORKING;
  /** Price in ticks (limit orders; 0 for market). */
  priceTicks = 0;
  /** Original quantity in lots (0 for orders sized in quote). */
  quantityLots = 0;
  leavesLots = 0;
  filledLots = 0;
  /** Sum of price × quantity over fills, quote minor units. */
  cumQuote = 0;
  /** Quote still to spend or receive, for orders sized in quote. */
  quoteLeft = 0;
  quoteQuantity = 0;
  byQuote = false;
  /** Funds held for this order, in the asset it pays with. */
  reserved = 0;
  /** Conditional orders. */
  stopTicks = 0;
  callbackBps = 0;
  /** Trailing stops: the best price seen since placement, in ticks (0 = none yet). */
  extremeTicks = 0;
  /** True for orders that execute as market orders once live. */
  isMarket = false;
  postOnly = false;
  expireAt = 0;
  /** Position in time priority: the command number of the last (re)queue. */
  priority = 0;

  constructor(
    readonly id: number,
    readonly account: Account,
    readonly market: Market,
    readonly side: number,
    readonly orderType: OrderType,
    readonly timeInForce: TimeInForce,
    readonly stp: StpMode,
    readonly clientOrderId: string | null,
  ) {}
}

export class Level {
  head: Order | null = null;
  tail: Order | null = null;
  totalLots = 0;
  count = 0;
  constructor(readonly priceTicks: number) {}
}

/** Where price is, or would go, in prices sorted ascending or descending (binary search). */
function pricePosition(prices: readonly number[], price: number, ascending: boolean): number {
  let lo = 0;
  let hi = prices.length;
  if (ascending) {
    while (lo < hi) { const mid = (lo + hi) >> 1; if (prices[mid]! < price) lo = mid + 1; else hi = mid; }
  } else {
    while (lo < hi) { const mid = (lo + hi) >> 1; if (prices[mid]! > price) lo = mid + 1; else hi = mid; }
  }
  return lo;
}

/**
 * One side of a book: a sorted array of level prices with the best price at the end (so the
 * common operations at the top of the book are push/pop), and a map from price to level.
 */
export class BookSide {
  readonly prices: number[] = [];
  readonly levels = new Map<number, Level>();
  constructor(readonly isBid: boolean) {}

  best(): Level | undefined {
    const prices = this.prices;
    return prices.length === 0 ? undefined : this.levels.get(prices[prices.length - 1]!);
  }

  /** True if a is strictly better than b on this side. */
  better(a: number, b: number): boolean {
    return this.isBid ? a > b : a < b;
  }

  append(order: Order): void {
    const price = order.priceTicks;
    let level = this.levels.get(price);
    if (level === undefined) {
      level = new Level(price);
      this.levels.set(price, level);
      const prices = this.prices;
      const n = prices.length;
      if (n === 0 || this.better(price, prices[n - 1]!)) prices.push(price);
      else prices.splice(pricePosition(prices, price, this.isBid), 0, price);
    }
    order.level = level;
    order.prev = level.tail;
    order.next = null;
    if (level.tail !== null) level.tail.next = order;
    else level.head = order;
    level.tail = order;
    level.totalLots += order.leavesLots;
    level.count += 1;
  }

  remove(order: Order): void {
    const level = order.level!;
    if (order.prev !== null) order.prev.next = order.next;
    else level.head = order.next;
    if (order.next !== null) order.next.prev = order.prev;
    else level.tail = order.prev;
    level.totalLots -= order.leavesLots;
    level.count -= 1;
    order.level = null;
    order.prev = null;
    order.next = null;
    if (level.count === 0) this.dropLevel(level.priceTicks);
  }

  private dropLevel(price: number): void {
    this.levels.delete(price);
    const prices = this.prices;
    if (prices[prices.length - 1] === price) prices.pop();
    else prices.splice(pricePosition(prices, price, this.isBid), 1);
  }

  /** Levels from best to worst. */
  *levelsBestFirst(): Iterable<Level> {
    for (let i = this.prices.length - 1; i >= 0; i--) yield this.levels.get(this.prices[i]!)!;
  }
}

/**
 * One direction of a market's conditional orders, like a BookSide: trigger prices sorted with the
 * next to fire at the end, and at each price its orders, oldest first. Adding or cancelling costs
 * binary searches and a splice of one level's orders (or of the price list), not of every waiting
 * order: with all in one sorted array, 100,000 waiting stops cost about 40 µs per add or cancel.
 */
export class TriggerSide {
  /** Descending when firing on a rise (lowest trigger last), ascending on a fall (highest last). */
  private readonly prices: number[] = [];
  /** Trigger price → its orders in id order. */
  private readonly levels = new Map<number, Order[]>();
  private count = 0;
  constructor(private readonly firesOnRise: boolean) {}

  get size(): number {
    return this.count;
  }

  /** The next to fire: the lowest trigger (on a rise) or highest (on a fall), oldest first. */
  peek(): Order | undefined {
    const prices = this.prices;
    return prices.length === 0 ? undefined : this.levels.get(prices[prices.length - 1]!)![0];
  }

  /** Removes and returns the next to fire. */
  shift(): Order | undefined {
    const prices = this.prices;
    if (prices.length === 0) return undefined;
    const price = prices[prices.length - 1]!;
    const level = this.levels.get(price)!;
    const order = level.shift()!;
    this.count -= 1;
    if (level.length === 0) {
      this.levels.delete(price);
      prices.pop();
    }
    return order;
  }

  add(order: Order): void {
    const price = order.stopTicks;
    let level = this.levels.get(price);
    if (level === undefined) {
      level = [];
      this.levels.set(price, level);
      this.prices.splice(pricePosition(this.prices, price, !this.firesOnRise), 0, price);
    }
    // Orders arrive in id order (a new one has the highest id; a restore adds each level oldest
    // first), so this is a push; the splice keeps a level in id order should one ever not.
    if (level.length === 0 || level[level.length - 1]!.id < order.id) level.push(order);
    else level.splice(TriggerSide.idPosition(level, order.id), 0, order);
    this.count += 1;
  }

  /** Removes the order if it waits here; says whether it did. */
  remove(order: Order): boolean {
    const price = order.stopTicks;
    const level = this.levels.get(price);
    if (level === undefined) return false;
    const index = TriggerSide.idPosition(level, order.id);
    if (level[index] !== order) return false;
    level.splice(index, 1);
    this.count -= 1;
    if (level.length === 0) {
      this.levels.delete(price);
      this.prices.splice(pricePosition(this.prices, price, !this.firesOnRise), 1);
    }
    return true;
  }

  /** Every waiting order, the next to fire last (the order snapshots record). */
  *[Symbol.iterator](): IterableIterator<Order> {
    for (const price of this.prices) {
      const level = this.levels.get(price)!;
      for (let i = level.length - 1; i >= 0; i--) yield level[i]!;
    }
  }

  /** Where id is, or would go, in a level. */
  private static idPosition(level: Order[], id: number): number {
    let lo = 0;
    let hi = level.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (level[mid]!.id < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Conditional orders of one market waiting for their trigger. */
export class TriggerBook {
  /** Fire when the last price rises to the trigger: lowest trigger first, then oldest. */
  readonly rising = new TriggerSide(true);
  /** Fire when the last price falls to the trigger: highest trigger first, then oldest. */
  readonly falling = new TriggerSide(false);
  readonly trailing = new TrailingStops();

  add(order: Order, rising: boolean): void {
    (rising ? this.rising : this.falling).add(order);
  }

  remove(order: Order): void {
    if (this.rising.remove(order) || this.falling.remove(order)) return;
    this.trailing.remove(order);
  }

  get size(): number {
    return this.rising.size + this.falling.size + this.trailing.size;
  }
}

export class Market {
  state: MarketState;
  makerFeePpm: number;
  takerFeePpm: number;
  tiers: FeeTier[] = [];
  lastPriceTicks = 0;
  /** Most open orders per account here (0 = no limit). */
  maxOpenOrders = 0;
  /** How far from the last price a market order may trade, in basis points (0 = no collar). */
  collarBps = 0;
  readonly bids = new BookSide(true);
  readonly asks = new BookSide(false);
  readonly triggers = new TriggerBook();
  /** Quote minor units of one lot at one tick: tick × lot / 10^basePrecision, an integer. */
  readonly unitNotional: number;

  constructor(
    readonly index: number,
    readonly id: string,
    readonly base: Asset,
    readonly quote: Asset,
    readonly tick: number,
    readonly lot: number,
    public minQuantity: number,
    public maxQuantity: number,
    public minNotional: number,
    public maxNotional: number,
    public bandLowBps: number,
    public bandHighBps: number,
    state: MarketState,
    makerFeePpm: number,
    takerFeePpm: number,
    unitNotional: number,
  ) {
    this.state = state;
    this.makerFeePpm = makerFeePpm;
    this.takerFeePpm = takerFeePpm;
    this.unitNotional = unitNotional;
  }
}

/** A min-heap of orders by (expireAt, id). Entries of orders that ended are skipped lazily. */
export class ExpiryHeap {
  private readonly heap: Order[] = [];

  get size(): number {
    return this.heap.length;
  }

  private static less(a: Order, b: Order): boolean {
    return a.expireAt !== b.expireAt ? a.expireAt < b.expireAt : a.id < b.id;
  }

  push(order: Order): void {
    const heap = this.heap;
    heap.push(order);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!ExpiryHeap.less(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  peek(): Order | undefined {
    return this.heap[0];
  }

  pop(): Order | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && ExpiryHeap.less(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && ExpiryHeap.less(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
        i = smallest;
      }
    }
    return top;
  }
}

const PAGE_BITS = 12;
const PAGE_SIZE = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_SIZE - 1;

interface OrderPage { slots: (Order | undefined)[]; count: number }

/**
 * Open orders by id. Ids are sequence numbers, so open orders cluster in a sliding window:
 * pages of 4,096 slots, dropped when empty, beat a hash map that sees a million distinct keys
 * come and go. Iterates in id order (pages are created in ascending order).
 *
 * The last page dropped is kept for the next one needed: an order that never rests (an IOC that
 * finds nothing) empties its page as soon as it opened it, and building a fresh page for each
 * such order cost about ten times the rest of the order.
 */
export class OrderIndex {
  private readonly pages = new Map<number, OrderPage>();
  /** An emptied page (every slot undefined), or null. */
  private spare: OrderPage | null = null;
  private sizeValue = 0;

  get size(): number {
    return this.sizeValue;
  }

  get(id: number): Order | undefined {
    const page = this.pages.get(Math.floor(id / PAGE_SIZE));
    return page === undefined ? undefined : page.slots[id & PAGE_MASK];
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  set(id: number, order: Order): void {
    const key = Math.floor(id / PAGE_SIZE);
    let page = this.pages.get(key);
    if (page === undefined) {
      page = this.spare ?? { slots: new Array<Order | undefined>(PAGE_SIZE).fill(undefined), count: 0 };
      this.spare = null;
      this.pages.set(key, page);
    }
    const slot = id & PAGE_MASK;
    if (page.slots[slot] === undefined) {
      page.count += 1;
      this.sizeValue += 1;
    }
    page.slots[slot] = order;
  }

  delete(id: number): void {
    const key = Math.floor(id / PAGE_SIZE);
    const page = this.pages.get(key);
    if (page === undefined) return;
    const slot = id & PAGE_MASK;
    if (page.slots[slot] === undefined) return;
    page.slots[slot] = undefined;
    page.count -= 1;
    this.sizeValue -= 1;
    if (page.count === 0) {
      this.pages.delete(key);
      this.spare = page;
    }
  }

  *values(): IterableIterator<Order> {
    for (const page of this.pages.values()) {
      for (const order of page.slots) if (order !== undefined) yield order;
    }
  }

  *keys(): IterableIterator<number> {
    for (const order of this.values()) yield order.id;
  }
}
