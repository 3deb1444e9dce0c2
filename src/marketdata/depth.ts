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

/** One side's levels as last published, best first: prices and their quantities, index for index. */
interface PublishedSide { prices: number[]; quantities: number[] }
interface Published { seq: number; bids: PublishedSide; asks: PublishedSide }

type Level = { price: number; quantity: number };

function publishedSide(levels: readonly Level[]): PublishedSide {
  return { prices: levels.map((l) => l.price), quantities: levels.map((l) => l.quantity) };
}

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
      const book = this.engine().book(market);
      state = { seq: this.engine().lastSeq, bids: publishedSide(book.bids), asks: publishedSide(book.asks) };
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
    const side = ({ prices, quantities }: PublishedSide): WireLevel[] => prices.map((price, i) => [formatMinor(price, scales.quote), formatMinor(quantities[i]!, scales.base)]);
    const bids = side(state.bids);
    const asks = side(state.asks);
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
      const zero = formatMinor(0, scales.base);
      // Both lists are best first: one walk down them side by side finds every level that came,
      // went or changed (a Map of the last levels cost ten times as much at 5,000 levels).
      const diff = (levels: readonly Level[], previous: PublishedSide, better: (a: number, b: number) => boolean): WireLevel[] => {
        const changes: WireLevel[] = [];
        const { prices, quantities } = previous;
        let j = 0;
        for (const level of levels) {
          for (; j < prices.length && better(prices[j]!, level.price); j++) changes.push([formatMinor(prices[j]!, scales.quote), zero]);
          if (j < prices.length && prices[j] === level.price) {
            if (quantities[j] !== level.quantity) changes.push([formatMinor(level.price, scales.quote), formatMinor(level.quantity, scales.base)]);
            j++;
          } else {
            changes.push([formatMinor(level.price, scales.quote), formatMinor(level.quantity, scales.base)]);
          }
        }
        for (; j < prices.length; j++) changes.push([formatMinor(prices[j]!, scales.quote), zero]);
        return changes;
      };
      const bids = diff(book.bids, state.bids, (a, b) => a > b);
      const asks = diff(book.asks, state.asks, (a, b) => a < b);
      if (bids.length === 0 && asks.length === 0) continue;
      state.bids = publishedSide(book.bids);
      state.asks = publishedSide(book.asks);
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
