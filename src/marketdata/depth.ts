/**
 * Depth for the socket: a snapshot, then diffs against what was last published for the market.
 * Each message carries the journal sequence number of the last command it reflects (so it never
 * resets across restarts), the sequence of the previous message for the market (to detect gaps),
 * and a CRC32 checksum of the top 25 levels as the client would print them. The caller decides
 * when to publish (after each batch, or coalesced); a market nobody watches is forgotten and
 * costs nothing per batch.
 */
import { crc32 } from 'node:zlib';
import type { Engine, EngineEvent } from '../core/index.js';
import { formatMinor } from '../money/index.js';

export const CHECKSUM_LEVELS = 25;

export type WireLevel = [price: string, quantity: string];

export interface DepthMessage {
  channel: 'depth';
  type: 'snapshot' | 'update';
  market: string;
  seq: number;
  prev_seq: number;
  bids: WireLevel[];
  asks: WireLevel[];
  checksum: number;
}

interface Published { seq: number; bids: Map<number, number>; asks: Map<number, number> }

/** CRC32 of "bidPrice:bidQty:askPrice:askQty:…" over the best 25 levels of each side, interleaved. */
export function depthChecksum(bids: readonly WireLevel[], asks: readonly WireLevel[]): number {
  const parts: string[] = [];
  for (let i = 0; i < CHECKSUM_LEVELS; i++) {
    const bid = bids[i];
    const ask = asks[i];
    if (bid !== undefined) parts.push(bid[0], bid[1]);
    if (ask !== undefined) parts.push(ask[0], ask[1]);
  }
  return crc32(parts.join(':'));
}

/** Markets whose books the events may have changed. */
export function marketsTouched(events: Iterable<EngineEvent>, into = new Set<string>()): Set<string> {
  for (const event of events) {
    if ('market' in event && typeof event.market === 'string') into.add(event.market);
  }
  return into;
}

export class DepthPublisher {
  private readonly published = new Map<string, Published>();

  constructor(private readonly engine: () => Engine) {}

  /** Drops what was published for the market; the next snapshot starts from the book as it is. */
  forget(market: string): void {
    this.published.delete(market);
  }

  /** The seq of what was last published for the market: the seq its next snapshot would carry. */
  publishedSeq(market: string): number {
    return this.state(market).seq;
  }

  private state(market: string): Published {
    let state = this.published.get(market);
    if (state === undefined) {
      state = { seq: this.engine().lastSeq, bids: new Map(), asks: new Map() };
      const book = this.engine().book(market);
      for (const level of book.bids) state.bids.set(level.price, level.quantity);
      for (const level of book.asks) state.asks.set(level.price, level.quantity);
      this.published.set(market, state);
    }
    return state;
  }

  /**
   * The book as last published for the market (what its subscribers hold), at that message's seq:
   * changes since then reach a new subscriber in the next update, with everyone else's, so that
   * subscribing never forces an update out early.
   */
  snapshot(market: string): DepthMessage {
    const state = this.state(market);
    const scales = this.scales(market);
    const side = (levels: Map<number, number>, descending: boolean): WireLevel[] => [...levels]
      .sort((a, b) => (descending ? b[0] - a[0] : a[0] - b[0]))
      .map(([price, quantity]) => [formatMinor(price, scales.quote), formatMinor(quantity, scales.base)]);
    const bids = side(state.bids, true);
    const asks = side(state.asks, false);
    return { channel: 'depth', type: 'snapshot', market, seq: state.seq, prev_seq: state.seq, bids, asks, checksum: depthChecksum(bids, asks) };
  }

  /**
   * Diffs for the markets since their last message, at the engine's current sequence (call it
   * between commands: after a batch, or from a timer). Markets whose book did not change give none.
   */
  update(markets: Iterable<string>): DepthMessage[] {
    const seq = this.engine().lastSeq;
    const messages: DepthMessage[] = [];
    for (const market of markets) {
      if (!this.engine().markets.has(market)) continue;
      const state = this.state(market);
      const book = this.engine().book(market);
      const scales = this.scales(market);
      const diff = (side: { price: number; quantity: number }[], previous: Map<number, number>): WireLevel[] => {
        const changes: WireLevel[] = [];
        const now = new Map<number, number>();
        for (const level of side) {
          now.set(level.price, level.quantity);
          if (previous.get(level.price) !== level.quantity) changes.push([formatMinor(level.price, scales.quote), formatMinor(level.quantity, scales.base)]);
        }
        for (const price of previous.keys()) if (!now.has(price)) changes.push([formatMinor(price, scales.quote), formatMinor(0, scales.base)]);
        previous.clear();
        for (const [price, quantity] of now) previous.set(price, quantity);
        return changes;
      };
      const bids = diff(book.bids, state.bids);
      const asks = diff(book.asks, state.asks);
      if (bids.length === 0 && asks.length === 0) continue;
      const wire = this.wireBook(market, CHECKSUM_LEVELS);
      messages.push({ channel: 'depth', type: 'update', market, seq, prev_seq: state.seq, bids, asks, checksum: depthChecksum(wire.bids, wire.asks) });
      state.seq = seq;
    }
    return messages;
  }

  private scales(market: string): { base: number; quote: number } {
    const m = this.engine().markets.get(market)!;
    return { base: m.base.precision, quote: m.quote.precision };
  }

  private wireBook(market: string, depth = Infinity): { bids: WireLevel[]; asks: WireLevel[] } {
    const scales = this.scales(market);
    const book = this.engine().book(market, depth);
    const wire = (l: { price: number; quantity: number }): WireLevel => [formatMinor(l.price, scales.quote), formatMinor(l.quantity, scales.base)];
    return { bids: book.bids.map(wire), asks: book.asks.map(wire) };
  }
}
