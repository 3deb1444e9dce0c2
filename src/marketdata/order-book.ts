/**
 * The book order by order for the socket (market by order): a snapshot, then updates that name
 * each order whose place in the book changed since the previous message. Like depth, every
 * message carries the journal sequence number it reflects, the previous message's, and a CRC32
 * checksum, here of the best 25 orders of each side.
 *
 * An update's changes are `[id, side, price, quantity]`, applied in order: quantity "0" removes
 * the order; an order the client holds takes the new quantity and keeps its place (a fill, or an
 * amendment down); any other joins the end of its price's queue. An order that lost its place
 * (amended up, or to another price) comes as its removal and then its joining, so a client never
 * needs the engine's priority rules to keep the queue in the exchange's order.
 */
import { crc32 } from 'node:zlib';
import type { Engine, EngineEvent, RestingOrderView, Side } from '../core/index.js';
import { formatMinor } from '../money/index.js';

export const BOOK_CHECKSUM_ORDERS = 25;

export type WireOrder = [id: string, price: string, quantity: string];
export type WireOrderChange = [id: string, side: Side, price: string, quantity: string];

export interface OrderBookMessage {
  channel: 'book';
  type: 'snapshot' | 'update';
  market: string;
  seq: number;
  prev_seq: number;
  bids?: WireOrder[];
  asks?: WireOrder[];
  changes?: WireOrderChange[];
  checksum: number;
}

/** CRC32 of "id:price:quantity:…" over the best 25 orders of each side, bid and ask interleaved. */
export function orderBookChecksum(bids: readonly WireOrder[], asks: readonly WireOrder[]): number {
  const parts: string[] = [];
  for (let i = 0; i < BOOK_CHECKSUM_ORDERS; i++) {
    const bid = bids[i];
    const ask = asks[i];
    if (bid !== undefined) parts.push(...bid);
    if (ask !== undefined) parts.push(...ask);
  }
  return crc32(parts.join(':'));
}

/** Adds, per market it watches, the orders the events may have moved in or out of a book or resized there. */
export function ordersTouched(events: Iterable<EngineEvent>, into: Map<string, Set<number>>, watched: (market: string) => boolean): Map<string, Set<number>> {
  for (const event of events) {
    if (!('orderId' in event) || event.type === 'order_rejected' || !watched(event.market)) continue;
    let ids = into.get(event.market);
    if (ids === undefined) { ids = new Set(); into.set(event.market, ids); }
    ids.add(event.orderId);
  }
  return into;
}

/** An order as last published, with its text on the wire (shared by every snapshot until it changes). */
type Published = Pick<RestingOrderView, 'side' | 'price' | 'quantity' | 'priority'> & { readonly wire: WireOrder };

/**
 * What was last published for a market. The map's order is the queues' order: orders enter it as
 * they join (in queue order), a change in place keeps an order's entry where it is, and an order
 * that loses its place leaves the map before it enters again, at the end.
 */
interface MarketState { seq: number; orders: Map<number, Published> }

export class OrderBookPublisher {
  private readonly published = new Map<string, MarketState>();

  constructor(private readonly engine: () => Engine) {}

  /** Drops what was published for the market; the next snapshot starts from the book as it is. */
  forget(market: string): void {
    this.published.delete(market);
  }

  /** The seq of what was last published for the market: the seq its next snapshot would carry. */
  publishedSeq(market: string): number {
    return this.state(market).seq;
  }

  private state(market: string): MarketState {
    let state = this.published.get(market);
    if (state === undefined) {
      const book = this.engine().orderBook(market);
      const m = this.engine().markets.get(market)!;
      state = { seq: this.engine().lastSeq, orders: new Map() };
      for (const order of [...book.bids, ...book.asks]) state.orders.set(order.orderId, published(order, wireOrder(order, m.quote.precision, m.base.precision)));
      this.published.set(market, state);
    }
    return state;
  }

  /**
   * The whole book as last published for the market, at that message's seq: changes since reach
   * a new subscriber in the next update, with everyone else's.
   */
  snapshot(market: string): OrderBookMessage {
    const state = this.state(market);
    // Each side's queues in the map's order, which is queue order; then their prices sorted once.
    // The orders' text was made when they were published (half the time of a snapshot else).
    const queues = { buy: new Map<number, WireOrder[]>(), sell: new Map<number, WireOrder[]>() };
    for (const order of state.orders.values()) {
      const queue = queues[order.side].get(order.price);
      if (queue === undefined) queues[order.side].set(order.price, [order.wire]);
      else queue.push(order.wire);
    }
    const side = (which: Side): WireOrder[] => {
      const prices = Float64Array.from(queues[which].keys()).sort();
      if (which === 'buy') prices.reverse();
      const orders: WireOrder[] = [];
      for (const price of prices) for (const order of queues[which].get(price)!) orders.push(order);
      return orders;
    };
    const bids = side('buy');
    const asks = side('sell');
    return { channel: 'book', type: 'snapshot', market, seq: state.seq, prev_seq: state.seq, bids, asks, checksum: orderBookChecksum(bids, asks) };
  }

  /**
   * For each market, the changes to the orders named since its last message, at the engine's
   * current sequence (call between commands). Orders whose place did not change give none, and
   * markets without changes no message.
   */
  update(touched: Map<string, Set<number>>): OrderBookMessage[] {
    const engine = this.engine();
    const seq = engine.lastSeq;
    const messages: OrderBookMessage[] = [];
    for (const [market, ids] of touched) {
      const m = engine.markets.get(market);
      if (m === undefined) continue;
      const state = this.state(market);
      const price = (units: number) => formatMinor(units, m.quote.precision);
      const quantity = (units: number) => formatMinor(units, m.base.precision);
      const changes: WireOrderChange[] = [];
      const gone = quantity(0);
      /** Orders that join a queue, by side and price: their order there comes from the book. */
      const joining = new Map<string, { side: Side; price: number; ids: Set<number> }>();
      for (const id of ids) {
        const before = state.orders.get(id);
        const now = engine.restingOrder(id);
        if (before !== undefined && (now === undefined || now.priority !== before.priority || now.price !== before.price)) {
          changes.push([before.wire[0], before.side, before.wire[1], gone]);
          state.orders.delete(id);
        }
        if (now === undefined) continue;
        if (state.orders.has(id)) {
          if (now.quantity === before!.quantity) continue;
          const wire: WireOrder = [String(id), before!.wire[1], quantity(now.quantity)];
          changes.push([wire[0], now.side, wire[1], wire[2]]);
          state.orders.set(id, published(now, wire));
          continue;
        }
        const queue = `${now.side}:${now.price}`;
        let group = joining.get(queue);
        if (group === undefined) { group = { side: now.side, price: now.price, ids: new Set() }; joining.set(queue, group); }
        group.ids.add(id);
      }
      for (const group of joining.values()) {
        // The newcomers are the last orders of their queue: walk it from its end until all are found.
        const inQueueOrder: number[] = [];
        if (group.ids.size === 1) inQueueOrder.push(...group.ids);
        else for (const id of engine.queuedLastFirst(market, group.side, group.price)) {
          if (group.ids.has(id)) inQueueOrder.unshift(id);
          if (inQueueOrder.length === group.ids.size) break;
        }
        for (const id of inQueueOrder) {
          const now = engine.restingOrder(id)!;
          const wire: WireOrder = [String(id), price(now.price), quantity(now.quantity)];
          changes.push([wire[0], now.side, wire[1], wire[2]]);
          state.orders.set(id, published(now, wire));
        }
      }
      if (changes.length === 0) continue;
      const top = this.wireBook(market, BOOK_CHECKSUM_ORDERS);
      messages.push({ channel: 'book', type: 'update', market, seq, prev_seq: state.seq, changes, checksum: orderBookChecksum(top.bids, top.asks) });
      state.seq = seq;
    }
    return messages;
  }

  private wireBook(market: string, perSide = Infinity): { bids: WireOrder[]; asks: WireOrder[] } {
    const m = this.engine().markets.get(market)!;
    const book = this.engine().orderBook(market, perSide);
    const wire = (o: RestingOrderView): WireOrder => wireOrder(o, m.quote.precision, m.base.precision);
    return { bids: book.bids.map(wire), asks: book.asks.map(wire) };
  }
}

function wireOrder(order: RestingOrderView, priceScale: number, quantityScale: number): WireOrder {
  return [String(order.orderId), formatMinor(order.price, priceScale), formatMinor(order.quantity, quantityScale)];
}

function published(order: RestingOrderView, wire: WireOrder): Published {
  return { side: order.side, price: order.price, quantity: order.quantity, priority: order.priority, wire };
}
