/**
 * A local copy of a market's book kept from the native WebSocket, as the README tells a client
 * to keep it: by price level (`depth`) or order by order (`book`). Every update must chain to the
 * one before (`prev_seq`) and leave the book with the server's checksum; when one does not, the
 * feed subscribes again for a fresh snapshot. When the connection drops it reconnects, with
 * growing pauses, and starts again from a snapshot. Until a snapshot has arrived, `ready` is false.
 *
 *   const feed = new BookFeed({ url: 'http://127.0.0.1:8080', market: 'BTC-USDT' });
 *   feed.on('update', () => console.log(feed.bids()[0], feed.asks()[0]));
 */
import { EventEmitter } from 'node:events';
import { crc32 } from 'node:zlib';
import { ReconnectingSocket } from './reconnecting-socket.js';
import { BourseApiError } from './rest.js';

export type BookKind = 'depth' | 'book';
/** depth: [price, quantity]; book: [order id, price, quantity]. */
export type BookEntry = string[];

export interface BookFeedOptions {
  /** The server, e.g. http://127.0.0.1:8080 (its /ws is used). */
  url: string;
  market: string;
  kind?: BookKind;
  /** The first pause before reconnecting; it doubles up to maxReconnectMs. */
  reconnectMs?: number;
  maxReconnectMs?: number;
}

const CHECKSUM_ENTRIES = 25;

/** Exact order of two decimal strings (no exponent, no sign): no float ever compares prices. */
export function compareDecimals(a: string, b: string): number {
  const [ai = '', af = ''] = a.split('.');
  const [bi = '', bf = ''] = b.split('.');
  if (ai.length !== bi.length) return ai.length - bi.length;
  if (ai !== bi) return ai < bi ? -1 : 1;
  const width = Math.max(af.length, bf.length);
  const x = af.padEnd(width, '0');
  const y = bf.padEnd(width, '0');
  return x === y ? 0 : x < y ? -1 : 1;
}

const isZero = (quantity: string): boolean => /^0*(\.0*)?$/.test(quantity);

/** CRC32 of the fields of the best 25 entries of each side, bid and ask interleaved, joined by ':'. */
export function bookChecksum(bids: readonly BookEntry[], asks: readonly BookEntry[]): number {
  const parts: string[] = [];
  for (let i = 0; i < CHECKSUM_ENTRIES; i++) {
    if (bids[i] !== undefined) parts.push(...bids[i]!);
    if (asks[i] !== undefined) parts.push(...asks[i]!);
  }
  return crc32(parts.join(':'));
}

type Side = 'buy' | 'sell';

interface Message {
  event?: string; channel?: string; type?: string; market?: string; seq?: number; prev_seq?: number; checksum?: number;
  bids?: BookEntry[]; asks?: BookEntry[]; changes?: [string, Side, string, string][]; error?: { code: string; message: string; retry_after?: number };
}

export class BookFeed extends EventEmitter {
  readonly kind: BookKind;
  /** The journal sequence number the local book is as of. */
  seq = 0;
  ready = false;
  /** How many times the feed started again from a snapshot after a gap, a checksum or a lost connection. */
  resyncs = 0;
  /** Why the server refused the subscription for good (event `refused`: a market it does not have); the feed has stopped. */
  refusal: BourseApiError | null = null;
  private levels = { buy: new Map<string, string>(), sell: new Map<string, string>() };
  private queues = { buy: new Map<string, BookEntry[]>(), sell: new Map<string, BookEntry[]>() };
  /** Each side's prices best first, sorted again only once a price has come or gone. */
  private sorted: Record<Side, string[] | null> = { buy: null, sell: null };
  private readonly connection: ReconnectingSocket;
  private closed = false;
  /** A refused subscription is asked again after a pause. */
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly options: BookFeedOptions) {
    super();
    this.kind = options.kind ?? 'depth';
    this.connection = new ReconnectingSocket(options.url, options, {
      open: () => this.subscribe(),
      message: (message) => this.receive(message as Message),
      lost: () => {
        if (this.ready) this.resyncs += 1;
        this.ready = false;
        this.emit('resync', 'connection lost');
      },
      problem: (error) => this.emit('connection-error', error),
    });
  }

  /** Bids, best first (within a price, first in the queue first). */
  bids(): BookEntry[] {
    return this.side('buy');
  }

  /** Asks, best first (within a price, first in the queue first). */
  asks(): BookEntry[] {
    return this.side('sell');
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.connection.close();
  }

  /** A side best first, `limit` entries at most. */
  private side(side: Side, limit = Infinity): BookEntry[] {
    let prices = this.sorted[side];
    if (prices === null) {
      const keys = this.kind === 'depth' ? this.levels[side].keys() : this.queues[side].keys();
      prices = [...keys].sort((a, b) => (side === 'buy' ? compareDecimals(b, a) : compareDecimals(a, b)));
      this.sorted[side] = prices;
    }
    const entries: BookEntry[] = [];
    for (const price of prices) {
      if (entries.length >= limit) break;
      if (this.kind === 'depth') entries.push([price, this.levels[side].get(price)!]);
      else for (const order of this.queues[side].get(price)!) if (entries.length < limit) entries.push([...order]);
    }
    return entries;
  }

  private subscribe(): void {
    this.connection.send({ op: 'subscribe', channel: this.kind, market: this.options.market });
  }

  /** Drops the local book and asks for a fresh snapshot on the same socket. */
  private resync(reason: string): void {
    this.ready = false;
    this.resyncs += 1;
    this.emit('resync', reason);
    this.connection.send({ op: 'unsubscribe', channel: this.kind, market: this.options.market });
    this.subscribe();
  }

  private receive(message: Message): void {
    if (message.event === 'error') {
      const error = message.error!;
      this.emit('server-error', error);
      if (this.ready || this.closed) return;
      if (error.code === 'UNKNOWN_MARKET' || error.code === 'UNKNOWN_CHANNEL') {
        this.refusal = new BourseApiError(0, error.code, error.message);
        this.close();
        this.emit('refused', this.refusal);
        return;
      }
      // A subscription refused for now (a spent budget, say): ask again after a pause.
      this.retry = setTimeout(() => this.subscribe(), Math.max(1_000, (error.retry_after ?? 0) * 1_000));
      return;
    }
    if (message.channel !== this.kind || message.market !== this.options.market) return;
    if (message.type === 'snapshot') {
      this.load(message);
      return;
    }
    // Updates in flight before a fresh subscription are dropped until its snapshot comes.
    if (!this.ready) return;
    if (message.prev_seq !== this.seq) return this.resync(`gap: update after ${message.prev_seq}, the book is at ${this.seq}`);
    try {
      if (this.kind === 'depth') this.applyLevels(message);
      else for (const change of message.changes ?? []) this.applyOrder(change);
    } catch (error) {
      return this.resync((error as Error).message);
    }
    this.seq = message.seq!;
    if (!this.checksumMatches(message.checksum)) return this.resync(`checksum differs at seq ${this.seq}`);
    this.emit('update');
  }

  private load(message: Message): void {
    this.levels = { buy: new Map(), sell: new Map() };
    this.queues = { buy: new Map(), sell: new Map() };
    this.sorted = { buy: null, sell: null };
    for (const [side, entries] of [['buy', message.bids ?? []], ['sell', message.asks ?? []]] as const) {
      for (const entry of entries) {
        if (this.kind === 'depth') this.setLevel(side, entry[0]!, entry[1]!);
        else this.applyOrder([entry[0]!, side, entry[1]!, entry[2]!]);
      }
    }
    this.seq = message.seq!;
    if (!this.checksumMatches(message.checksum)) return this.resync(`snapshot checksum differs at seq ${this.seq}`);
    this.ready = true;
    this.emit('ready');
    this.emit('update');
  }

  private applyLevels(message: Message): void {
    for (const [side, changes] of [['buy', message.bids ?? []], ['sell', message.asks ?? []]] as const) {
      for (const [price, quantity] of changes) this.setLevel(side, price!, quantity!);
    }
  }

  private setLevel(side: Side, price: string, quantity: string): void {
    const levels = this.levels[side];
    if (isZero(quantity)) {
      if (levels.delete(price)) this.sorted[side] = null;
    } else {
      if (!levels.has(price)) this.sorted[side] = null;
      levels.set(price, quantity);
    }
  }

  /** One order change: zero removes it, a known order takes the quantity in place, another joins the end of its queue. */
  private applyOrder([id, side, price, quantity]: [string, Side, string, string]): void {
    const queue = this.queues[side].get(price) ?? [];
    const at = queue.findIndex((o) => o[0] === id);
    if (isZero(quantity)) {
      if (at < 0) throw new Error(`order ${id} removed from ${side} ${price}, where the book does not have it`);
      queue.splice(at, 1);
    } else if (at >= 0) {
      queue[at] = [id, price, quantity];
    } else {
      queue.push([id, price, quantity]);
    }
    const queues = this.queues[side];
    if (queue.length === 0) {
      queues.delete(price);
      this.sorted[side] = null;
    } else if (!queues.has(price)) {
      queues.set(price, queue);
      this.sorted[side] = null;
    }
  }

  private checksumMatches(checksum: number | undefined): boolean {
    if (checksum === undefined) return true;
    return bookChecksum(this.side('buy', CHECKSUM_ENTRIES), this.side('sell', CHECKSUM_ENTRIES)) === checksum;
  }
}
