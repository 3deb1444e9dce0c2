/**
 * The native WebSocket at /ws, on the HTTP port.
 *
 *   → {"op":"subscribe","channel":"depth"|"book"|"trades"|"ticker"|"candles","market":"BTC-USDT","interval":"1m"}
 *   → {"op":"auth","key":K,"timestamp":T,"signature":hex HMAC(secret, T + "GET/ws"),"cancel_on_disconnect":true?}
 *   → {"op":"subscribe","channel":"orders"|"balances"|"fills"|"funding"}    (after auth)
 *   → {"op":"place","id":R,"order":{…as POST /orders…}}   {"op":"cancel","id":R,"order_id":"…"}
 *     (or "client_order_id":"…", with "account":N for a sub-account's)
 *   → {"op":"cancel_after","id":R,"timeout_ms":N}    (the dead man's switch, as POST /orders/cancel-after)
 *   → {"op":"ping"}
 *
 * Depth (by price level) and book (order by order, marketdata/order-book.ts) are a snapshot, then
 * updates with seq/prev_seq and a checksum. Updates are coalesced: at most one per
 * `depthIntervalMs` (a quiet market's first change goes out at once), each carrying every level or
 * order that changed since the previous one. Every message is serialised once per channel. A
 * consumer that reads too slowly stops getting depth and book updates (it gets a fresh snapshot
 * once it catches up); one that falls far behind is closed with 1008.
 */
import { STATUS_CODES } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import fastJson from 'fast-json-stringify';
import { parse as parseJson } from 'secure-json-parse';
import { WebSocket, WebSocketServer } from 'ws';
import type { FastifyInstance } from 'fastify';
import { MAX_CANCEL_AFTER_MS } from '../core/index.js';
import type { EngineEvent } from '../core/index.js';
import type { Exchange } from '../exchange.js';
import type { Committed } from '../journal/index.js';
import { formatMinor } from '../money/index.js';
import { DepthPublisher, marketsTouched } from '../marketdata/depth.js';
import { OrderBookPublisher, ordersTouched } from '../marketdata/order-book.js';
import { CANDLE_INTERVALS } from '../marketdata/candles.js';
import type { CandleInterval } from '../marketdata/candles.js';
import { Authenticator } from '../identity/auth.js';
import { ApiError, authRefusal, errorBody, serviceRefusal, throwIfRejected } from './errors.js';
import { idFrom } from './ids.js';
import { addressSubject } from '../identity/ip.js';
import { actingAccount } from './account-scope.js';
import { cancelByClientIdFor, cancelOrderFor } from './order-cancels.js';
import { orderCommand } from './orders.js';
import type { OrderBody } from './orders.js';
import { balanceOut, cancelAfterOut, CLIENT_ORDER_ID, findOrder, liveOrderOut, ORDER_OUT, placedOrderOut } from './wire.js';
import { depositWire, withdrawalWire } from './funding-wire.js';
import { tickerOf, candleOut, DEPTH_WEIGHT, orderBookWeight } from './market-views.js';
import type { Gateway } from './server.js';
import type { ApiKeyRecord } from '../identity/store.js';

export interface WsOptions {
  pingIntervalMs: number;
  /**
   * Above this many buffered bytes a client gets no depth or book updates until it drains.
   * Snapshots on their way out do not count (up to bufferHardBytes of them): a client that asked
   * for a book larger than this is not behind for that.
   */
  bufferSoftBytes: number;
  /** Above this many buffered bytes, snapshots on their way out counted as for bufferSoftBytes, a client is closed. */
  bufferHardBytes: number;
  messageBytesMax: number;
  subscriptionsMax: number;
  messagesPerSecond: number;
  /**
   * Depth and book updates go out at most this often (0: after every journal batch). Per-batch updates
   * cost one frame per subscriber per batch; at a few hundred batches a second and a thousand
   * subscribers, sending them becomes most of the server's work.
   */
  depthIntervalMs: number;
  /** Open sockets per address (IPv4 address or IPv6 /64) at most; more are refused with 429. */
  socketsPerAddress: number;
}

export const DEFAULT_WS_OPTIONS: WsOptions = {
  pingIntervalMs: 30_000,
  bufferSoftBytes: 512 * 1024,
  bufferHardBytes: 8 * 1024 * 1024,
  messageBytesMax: 16 * 1024,
  subscriptionsMax: 200,
  // Frames of any kind; orders are also charged to the key's request-weight budget.
  messagesPerSecond: 2_000,
  depthIntervalMs: 10,
  socketsPerAddress: 200,
};

class Client {
  readonly subscriptions = new Set<string>();
  key: ApiKeyRecord | null = null;
  /** Depth and book channels ("depth:M", "book:M") whose updates were skipped; each gets a snapshot once the buffer drains. */
  readonly stale = new Set<string>();
  /** Bytes of snapshots handed to the socket and not yet written out. */
  snapshotBytes = 0;
  account: number | null = null;
  /** Cancel the account's open orders when this socket closes (asked for in `auth`). */
  cancelOnDisconnect = false;
  /** Closes the socket when its key expires. */
  expiry: NodeJS.Timeout | null = null;
  tokens: number;
  refilledAt: number;
  /** Until when messages over the socket's rate are dropped without a word (the first was told to wait). */
  quietUntil = 0;
  /** The address's subject for budgets and bans (addressSubject). */
  readonly subject: string;
  constructor(readonly socket: WebSocket, readonly ip: string, messagesPerSecond: number, now: number) {
    this.tokens = messagesPerSecond;
    this.refilledAt = now;
    this.subject = addressSubject(ip);
  }
}

type Message = Record<string, unknown>;

/** Frames sent from a Buffer are text frames all the same: every message on this socket is JSON. */
const TEXT_FRAME = { binary: false } as const;

const CLIENT_ORDER_ID_PATTERN = new RegExp(CLIENT_ORDER_ID.pattern);

/** How often clients that fell behind are looked at, once their buffers may have drained. */
const STALE_CHECK_MS = 50;

/** Open orders in an `orders` snapshot at most (`complete: false` beyond: the rest through GET /orders). */
const SNAPSHOT_ORDERS_MAX = 1_000;

/** What the socket layer has done since it started, for /metrics. */
export interface SocketStats {
  /** Clients closed for falling bufferHardBytes behind. */
  slowConsumerCloses: number;
  /** Depth and book snapshots sent again to clients that fell behind, once they drained. */
  resyncs: number;
  /** Depth and book snapshots made, and sent (a snapshot made once may go to many). */
  snapshotsMade: number;
  snapshotsSent: number;
}

export function attachWebSocket(app: FastifyInstance, exchange: Exchange, gateway: Gateway, options: WsOptions = DEFAULT_WS_OPTIONS): { clients: () => number; stats: SocketStats } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.messageBytesMax });
  const channels = new Map<string, Set<Client>>();
  const byAccount = new Map<number, Set<Client>>();
  /** Cancel-on-disconnect commands submitted and not yet acknowledged (a shutdown waits for them). */
  const disconnectCancels = new Set<Promise<void>>();
  const depth = new DepthPublisher(() => exchange.engine);
  /** Markets with subscribers whose book changed since their last depth message. */
  const depthDirty = new Set<string>();
  const orderBook = new OrderBookPublisher(() => exchange.engine);
  /** Per market with book subscribers, the orders named since its last book message. */
  const bookDirty = new Map<string, Set<number>>();
  let depthTimer: NodeJS.Timeout | null = null;
  let depthFlushedAt = -Infinity;
  /** Clients that missed depth or book updates while their buffer was full: a snapshot each once it drains. */
  const staleClients = new Set<Client>();
  const lastTicker = new Map<string, number>();

  /** Open sockets per address subject (addressSubject), for socketsPerAddress. */
  const openByAddress = new Map<string, number>();
  const refuseUpgrade = (socket: Duplex, retryAfterSeconds: number, code: string, message: string, status = 429): void => {
    const body = JSON.stringify(errorBody(code, message));
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nRetry-After: ${retryAfterSeconds}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  };

  // An upgrade is a request like any other: it draws on its address's budget, and an address
  // holds a bounded number of sockets, each of which costs memory for as long as it is open.
  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node stops listening for errors on a socket it hands over for an upgrade: a client that
    // resets while it is being refused would otherwise end the process with ECONNRESET.
    socket.on('error', () => socket.destroy());
    if ((request.url ?? '').split('?')[0] !== '/ws') {
      socket.destroy();
      return;
    }
    // Once the server is stopping, a socket opened after the open ones were closed would hold the
    // stop up for ever: refused, like one on a connection over its address's cap.
    const refusal = gateway.refusedAtTheDoor(request.socket);
    if (refusal !== undefined) {
      refuseUpgrade(socket, refusal.retryAfterSeconds ?? 1, refusal.code, refusal.message, refusal.status);
      return;
    }
    const ip = gateway.addressOf(request);
    const blocked = gateway.blockedAddress(ip);
    if (blocked !== undefined) {
      refuseUpgrade(socket, 60, blocked.code, blocked.message, blocked.status);
      return;
    }
    try {
      gateway.chargeSubjects(ip, null, 1);
    } catch (error) {
      const limited = error as ApiError;
      refuseUpgrade(socket, limited.retryAfterSeconds ?? 1, limited.code, limited.message);
      return;
    }
    const subject = addressSubject(ip);
    const open = openByAddress.get(subject) ?? 0;
    if (open >= options.socketsPerAddress) {
      refuseUpgrade(socket, 1, 'TOO_MANY_SOCKETS', `at most ${options.socketsPerAddress} open sockets per address`);
      return;
    }
    openByAddress.set(subject, open + 1);
    let counted = true;
    const release = (): void => {
      if (!counted) return;
      counted = false;
      const left = (openByAddress.get(subject) ?? 1) - 1;
      if (left <= 0) openByAddress.delete(subject);
      else openByAddress.set(subject, left);
    };
    socket.once('close', release);
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  });

  const join = (client: Client, channel: string): void => {
    let members = channels.get(channel);
    if (members === undefined) { members = new Set(); channels.set(channel, members); }
    members.add(client);
    client.subscriptions.add(channel);
  };
  const leave = (client: Client, channel: string): void => {
    channels.get(channel)?.delete(client);
    client.subscriptions.delete(channel);
  };

  // Frames sent in one turn of the event loop leave in one write per socket: corked on the first
  // send, uncorked once the turn's work is done. One write per frame cost a third of the CPU.
  const corked = new Set<{ cork(): void; uncork(): void }>();
  const stats: SocketStats = { slowConsumerCloses: 0, resyncs: 0, snapshotsMade: 0, snapshotsSent: 0 };
  const uncorkAll = (): void => {
    for (const raw of corked) raw.uncork();
    corked.clear();
  };

  /** What a client has buffered but the snapshots on their way out, those discounted up to bufferHardBytes. */
  const backlog = (client: Client): number => client.socket.bufferedAmount - Math.min(client.snapshotBytes, options.bufferHardBytes);

  /**
   * Sends unless the client is hopelessly behind; returns false if it was closed. `written` runs
   * once the text has left for the kernel. A message for many clients comes as one Buffer (see
   * `shared`), sent as a text frame.
   */
  const send = (client: Client, text: string | Buffer, written?: () => void): boolean => {
    if (client.socket.readyState !== client.socket.OPEN) return false;
    if (backlog(client) > options.bufferHardBytes) {
      stats.slowConsumerCloses += 1;
      client.socket.close(1008, 'slow consumer');
      return false;
    }
    const raw = (client.socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    if (raw !== undefined && !corked.has(raw)) {
      if (corked.size === 0) setImmediate(uncorkAll);
      raw.cork();
      corked.add(raw);
    }
    client.socket.send(text, TEXT_FRAME, written);
    return true;
  };
  /**
   * A message for many clients, encoded once. Given a string, ws measures it and the socket
   * encodes and copies it again for every client; one Buffer is framed without a copy, each
   * client's frame pointing at the same bytes.
   */
  const shared = (message: unknown): Buffer => Buffer.from(JSON.stringify(message));
  const reply = (client: Client, message: Message): void => {
    send(client, JSON.stringify(message));
  };
  /**
   * A snapshot is what the client asked for, however large, not a sign that it reads too slowly:
   * its bytes are not counted as a backlog while they go out. Counted, a book larger than
   * bufferSoftBytes would make every update find its subscriber behind, and each drain bring
   * another whole snapshot instead of the updates.
   */
  const sendSnapshot = (client: Client, message: Message | Buffer): void => {
    const frame = Buffer.isBuffer(message) ? message : Buffer.from(JSON.stringify(message));
    const bytes = frame.length;
    if (send(client, frame, () => { client.snapshotBytes -= bytes; })) client.snapshotBytes += bytes;
  };
  /**
   * The socket's most frequent answer, serialised as the order route serialises its response:
   * from the same schema, in about half the time of JSON.stringify (bench:micro).
   */
  const placedText = fastJson({ type: 'object', properties: { event: { type: 'string' }, id: {}, order: ORDER_OUT } } as unknown as Parameters<typeof fastJson>[0]) as
    (message: { event: 'placed'; id: unknown; order: unknown }) => string;

  /** A depth or book update to its channel's members, but those too far behind to take it. */
  const publishBookChange = (message: { channel: 'depth' | 'book'; market: string }): void => {
    const channel = `${message.channel}:${message.market}`;
    const members = channels.get(channel);
    if (members === undefined || members.size === 0) return;
    const text = shared(message);
    for (const client of members) {
      if (client.stale.has(channel)) continue;
      if (backlog(client) > options.bufferSoftBytes) {
        client.stale.add(channel);
        staleClients.add(client);
        continue;
      }
      send(client, text);
    }
  };
  /**
   * Each depth and book channel's last snapshot, encoded, and the seq it is at. A snapshot is made
   * at most once per published update, however many ask: after a restart every subscriber asks at
   * once, and a deep book takes milliseconds to make (bench:micro).
   */
  /** A snapshot as sent, and the entries on its longer side (what the `book` channel is weighed by). */
  interface Snapshot { seq: number; frame: Buffer; longerSide: number }
  const snapshots = new Map<string, Snapshot>();
  const snapshotOf = (channel: string): Snapshot => {
    const [kind, market] = channel.split(':') as ['depth' | 'book', string];
    const seq = kind === 'depth' ? depth.publishedSeq(market) : orderBook.publishedSeq(market);
    const cached = snapshots.get(channel);
    if (cached !== undefined && cached.seq === seq) return cached;
    const message = kind === 'depth' ? depth.snapshot(market) : orderBook.snapshot(market);
    const made = { seq, frame: shared(message), longerSide: Math.max(message.bids!.length, message.asks!.length) };
    stats.snapshotsMade += 1;
    snapshots.set(channel, made);
    return made;
  };
  const sendBookSnapshot = (client: Client, snapshot: Snapshot): void => {
    stats.snapshotsSent += 1;
    sendSnapshot(client, snapshot.frame);
  };

  const flushDepth = (): void => {
    if (depthTimer !== null) clearTimeout(depthTimer);
    depthTimer = null;
    depthFlushedAt = performance.now();
    if (depthDirty.size === 0 && bookDirty.size === 0) return;
    const messages = [...depth.update(depthDirty), ...orderBook.update(bookDirty)];
    depthDirty.clear();
    bookDirty.clear();
    for (const message of messages) publishBookChange(message);
    resyncStale();
  };

  const scheduleDepth = (): void => {
    if ((depthDirty.size === 0 && bookDirty.size === 0) || depthTimer !== null) return;
    const wait = depthFlushedAt + options.depthIntervalMs - performance.now();
    if (wait <= 0) flushDepth();
    else depthTimer = setTimeout(flushDepth, wait);
  };

  /**
   * Snapshots for the clients behind whose buffers have drained. Looked at again every
   * STALE_CHECK_MS while any is waiting: in a market that goes quiet no batch would come to do it.
   */
  let staleCheck: NodeJS.Timeout | null = null;
  const resyncStale = (): void => {
    for (const client of staleClients) {
      if (client.socket.readyState !== WebSocket.OPEN) {
        staleClients.delete(client);
        continue;
      }
      if (backlog(client) > options.bufferSoftBytes / 2) continue;
      for (const channel of client.stale) {
        if (!client.subscriptions.has(channel)) continue;
        stats.resyncs += 1;
        sendBookSnapshot(client, snapshotOf(channel));
      }
      client.stale.clear();
      staleClients.delete(client);
    }
    if (staleClients.size > 0 && staleCheck === null) {
      staleCheck = setTimeout(() => { staleCheck = null; resyncStale(); }, STALE_CHECK_MS);
      staleCheck.unref();
    }
  };

  const publishTrades = (events: EngineEvent[]): void => {
    const byMarket = new Map<string, Message[]>();
    for (const event of events) {
      if (event.type !== 'trade') continue;
      const market = exchange.engine.markets.get(event.market)!;
      let list = byMarket.get(event.market);
      if (list === undefined) { list = []; byMarket.set(event.market, list); }
      list.push({
        id: String(event.tradeId), price: formatMinor(event.price, market.quote.precision),
        quantity: formatMinor(event.quantity, market.base.precision), taker_side: event.takerSide,
      });
    }
    for (const [market, trades] of byMarket) {
      const members = channels.get(`trades:${market}`);
      if (members === undefined || members.size === 0) continue;
      const text = shared({ channel: 'trades', market, trades });
      for (const client of members) send(client, text);
    }
  };

  const publishMarketStats = (markets: Set<string>, now: number): void => {
    for (const market of markets) {
      const tickerMembers = channels.get(`ticker:${market}`);
      if (tickerMembers !== undefined && tickerMembers.size > 0 && now - (lastTicker.get(market) ?? 0) >= 1_000) {
        lastTicker.set(market, now);
        const text = shared({ channel: 'ticker', market, ticker: tickerOf(exchange, market) });
        for (const client of tickerMembers) send(client, text);
      }
      for (const interval of Object.keys(CANDLE_INTERVALS) as CandleInterval[]) {
        const members = channels.get(`candles:${market}:${interval}`);
        if (members === undefined || members.size === 0) continue;
        const [candle] = exchange.projector.candles(market, interval, { limit: 1 });
        if (candle === undefined) continue;
        const text = shared({ channel: 'candles', market, interval, candle: candleOut(exchange, candle) });
        for (const client of members) send(client, text);
      }
    }
  };

  const publishPrivate = (events: EngineEvent[]): void => {
    const perAccount = new Map<number, EngineEvent[]>();
    for (const event of events) {
      if (!('account' in event) || typeof event.account !== 'number' || !byAccount.has(event.account)) continue;
      let list = perAccount.get(event.account);
      if (list === undefined) { list = []; perAccount.set(event.account, list); }
      list.push(event);
    }
    for (const [account, list] of perAccount) {
      const clients = byAccount.get(account)!;
      let wanted = false;
      for (const client of clients) if (client.subscriptions.has('orders') || client.subscriptions.has('fills') || client.subscriptions.has('balances')) wanted = true;
      if (!wanted) continue;
      const orders = new Set<number>();
      const messages: { channel: string; text: string }[] = [];
      for (const event of list) {
        if (event.type === 'balance') {
          messages.push({ channel: 'balances', text: JSON.stringify({ channel: 'balances', balance: balanceOut(exchange.engine, event) }) });
        } else if (event.type === 'order_fill') {
          const market = exchange.engine.markets.get(event.market)!;
          const feeScale = event.feeAsset === market.base.code ? market.base.precision : market.quote.precision;
          messages.push({ channel: 'fills', text: JSON.stringify({ channel: 'fills', fill: {
            trade_id: String(event.tradeId), order_id: String(event.orderId), market: event.market, side: event.side,
            price: formatMinor(event.price, market.quote.precision), quantity: formatMinor(event.quantity, market.base.precision),
            fee: formatMinor(event.fee, feeScale), fee_asset: event.feeAsset, liquidity: event.liquidity,
          } }) });
          orders.add(event.orderId);
        } else if ('orderId' in event && typeof event.orderId === 'number' && event.type !== 'order_rejected') {
          orders.add(event.orderId);
        }
      }
      for (const id of orders) {
        const order = findOrder(exchange, id, account);
        if (order !== undefined) messages.push({ channel: 'orders', text: JSON.stringify({ channel: 'orders', order }) });
      }
      for (const client of clients) {
        for (const message of messages) if (client.subscriptions.has(message.channel)) send(client, message.text);
      }
    }
  };

  // A key that stops working ends its sessions at once: a socket must not keep trading on it.
  exchange.onKeyRevoked((key, why) => {
    for (const clients of byAccount.values()) {
      for (const client of clients) if (client.key?.key === key) client.socket.close(1008, why);
    }
  });

  exchange.funding.onEvent((event) => {
    const account = exchange.identity.user(event.userId)?.account;
    const clients = account === undefined ? undefined : byAccount.get(account);
    if (clients === undefined) return;
    const text = JSON.stringify(event.type === 'deposit'
      ? { channel: 'funding', deposit: depositWire(exchange, event.deposit) }
      : { channel: 'funding', withdrawal: withdrawalWire(exchange, event.withdrawal) });
    for (const client of clients) if (client.subscriptions.has('funding')) send(client, text);
  });

  exchange.sequencer.onBatch((batch: Committed[]) => {
    const markets = new Set<string>();
    for (const committed of batch) marketsTouched(committed.events, markets);
    let bookWatched = false;
    for (const market of markets) {
      if ((channels.get(`depth:${market}`)?.size ?? 0) > 0) depthDirty.add(market);
      else { depth.forget(market); snapshots.delete(`depth:${market}`); }
      if ((channels.get(`book:${market}`)?.size ?? 0) > 0) bookWatched = true;
      else { orderBook.forget(market); snapshots.delete(`book:${market}`); }
    }
    if (bookWatched) {
      const watched = (market: string): boolean => (channels.get(`book:${market}`)?.size ?? 0) > 0;
      for (const committed of batch) ordersTouched(committed.events, bookDirty, watched);
    }
    if (wss.clients.size === 0) return;
    const events = batch.flatMap((c) => c.events);
    const seq = batch[batch.length - 1]!.envelope.seq;
    scheduleDepth();
    publishTrades(events);
    const touched = new Set<string>();
    for (const e of events) if (e.type === 'trade') touched.add(e.market);
    resyncStale();
    // Tickers, candles and order states come from the read model: send them once it has this batch.
    exchange.afterProjected(seq, () => {
      publishMarketStats(touched, exchange.clock());
      publishPrivate(events);
    });
  });

  /**
   * The account's open orders or balances as of the engine's last seq S, then every update after
   * S: updates go out once the read model has their batch, so the snapshot is taken now and the
   * subscription starts, with it, once the updates up to S have gone (they queue in seq order).
   * A client that reconnects has its state without a REST call racing the stream.
   */
  const subscribeWithSnapshot = (client: Client, channel: 'orders' | 'balances'): void => {
    const account = client.account!;
    const seq = exchange.sequencer.lastSeq;
    const engine = exchange.engine;
    let snapshot: Record<string, unknown>;
    if (channel === 'orders') {
      const open = engine.openOrdersOf(account, { limit: SNAPSHOT_ORDERS_MAX + 1 });
      snapshot = {
        channel, type: 'snapshot', seq, orders: open.slice(0, SNAPSHOT_ORDERS_MAX).map((o) => liveOrderOut(exchange, o)), complete: open.length <= SNAPSHOT_ORDERS_MAX,
      };
    } else {
      snapshot = {
        channel, type: 'snapshot', seq, balances: engine.balances(account).map((b) => balanceOut(engine, b)),
      };
    }
    exchange.afterProjected(seq, () => {
      if (client.socket.readyState !== WebSocket.OPEN || client.account !== account) return;
      join(client, channel);
      reply(client, { event: 'subscribed', channel });
      sendSnapshot(client, snapshot);
    });
  };

  /** A socket signed in with a key that expires closes when it does, as a revoked key's sockets do. */
  const closeAtExpiry = (client: Client): void => {
    if (client.expiry !== null) clearTimeout(client.expiry);
    client.expiry = null;
    const at = client.key?.expiresAt ?? null;
    if (at === null) return;
    // Timers take at most 2^31 − 1 ms: a key that lives longer is looked at again then.
    client.expiry = setTimeout(() => {
      if (exchange.clock() >= at) client.socket.close(1008, 'API key expired');
      else closeAtExpiry(client);
    }, Math.min(Math.max(0, at - exchange.clock()), 2 ** 31 - 1));
    client.expiry.unref();
  };

  const handle = async (client: Client, message: Message): Promise<void> => {
    const op = message.op;
    const id = message.id;
    if (op === 'ping') return reply(client, { event: 'pong', time: exchange.clock() });
    if (op === 'subscribe' || op === 'unsubscribe') {
      const channel = message.channel;
      let name: string;
      if (channel === 'orders' || channel === 'balances' || channel === 'fills' || channel === 'funding') {
        if (client.account === null) throw new ApiError(401, 'AUTH_REQUIRED', `authenticate before subscribing to ${channel}`);
        name = channel;
      } else if (channel === 'depth' || channel === 'book' || channel === 'trades' || channel === 'ticker' || channel === 'candles') {
        const market = message.market;
        if (typeof market !== 'string' || !exchange.engine.markets.has(market)) throw new ApiError(404, 'UNKNOWN_MARKET', 'unknown market');
        if (channel === 'candles') {
          const interval = message.interval ?? '1m';
          if (typeof interval !== 'string' || !Object.hasOwn(CANDLE_INTERVALS, interval)) throw new ApiError(400, 'INVALID_INTERVAL', 'unknown interval');
          name = `candles:${market}:${interval}`;
        } else {
          name = `${channel}:${market}`;
        }
      } else {
        throw new ApiError(400, 'UNKNOWN_CHANNEL', 'unknown channel');
      }
      if (op === 'unsubscribe') {
        leave(client, name);
        return reply(client, { event: 'unsubscribed', channel: name });
      }
      if (client.subscriptions.size >= options.subscriptionsMax) throw new ApiError(429, 'TOO_MANY_SUBSCRIPTIONS', 'subscription limit reached');
      if (channel === 'orders' || channel === 'balances') return subscribeWithSnapshot(client, channel);
      // A public subscription draws on the budgets as the REST call for its first message would.
      // The book's snapshot comes first, to weigh by its size (made once per update however many ask).
      const snapshot = channel === 'depth' || channel === 'book' ? snapshotOf(name) : null;
      const weight = channel === 'depth' ? DEPTH_WEIGHT : channel === 'book' ? orderBookWeight(snapshot!.longerSide) : 1;
      gateway.chargeSubjects(client.ip, client.key?.key ?? null, weight);
      join(client, name);
      reply(client, { event: 'subscribed', channel: name });
      if (snapshot !== null) sendBookSnapshot(client, snapshot);
      if (channel === 'ticker') {
        await exchange.readModelCaughtUp();
        reply(client, { channel: 'ticker', market: message.market, ticker: tickerOf(exchange, message.market as string) });
      }
      return;
    }
    if (op === 'auth') {
      const result = exchange.auth.verify({
        method: 'GET', pathWithQuery: '/ws', body: '', key: str(message.key), timestamp: str(message.timestamp),
        recvWindow: undefined, signature: str(message.signature), ip: client.ip, now: exchange.clock(),
      });
      if (!result.ok) throw authRefusal(result);
      if (!Authenticator.permits(result.key, 'read')) throw new ApiError(403, 'PERMISSION_DENIED', 'this key lacks the read permission');
      // A sign-in is a signed request like any other: it draws on the key's budget (a banned key is refused here).
      gateway.chargeSubjects(client.ip, result.key.key, 1);
      const cancelOnDisconnect = message.cancel_on_disconnect ?? false;
      if (typeof cancelOnDisconnect !== 'boolean') throw new ApiError(400, 'INVALID_REQUEST', 'cancel_on_disconnect must be true or false');
      if (cancelOnDisconnect && !Authenticator.permits(result.key, 'trade')) {
        throw new ApiError(403, 'PERMISSION_DENIED', 'cancel_on_disconnect needs a key with the trade permission');
      }
      // The account whose private channels this socket follows and whose orders it places by default.
      const account = actingAccount(exchange, result.key, message.account);
      if (client.account !== null) byAccount.get(client.account)?.delete(client);
      client.account = account;
      client.key = result.key;
      client.cancelOnDisconnect = cancelOnDisconnect;
      closeAtExpiry(client);
      let clients = byAccount.get(client.account);
      if (clients === undefined) { clients = new Set(); byAccount.set(client.account, clients); }
      clients.add(client);
      return reply(client, { event: 'authenticated', account: client.account, permissions: result.key.permissions, cancel_on_disconnect: cancelOnDisconnect });
    }
    if (op === 'place' || op === 'cancel' || op === 'cancel_after') {
      const key = client.key;
      if (key === null || client.account === null) throw new ApiError(401, 'AUTH_REQUIRED', 'authenticate first');
      if (!Authenticator.permits(key, 'trade')) throw new ApiError(403, 'PERMISSION_DENIED', 'this key lacks the trade permission');
      // Orders over the socket draw on the same budgets as over HTTP.
      gateway.chargeSubjects(client.ip, key.key, 1);
      if (op === 'place') {
        gateway.chargeOrders(key, 1);
        const order = message.order as OrderBody;
        const named = (order !== null && typeof order === 'object' ? order.account : undefined) ?? client.account;
        const cmd = orderCommand(exchange.engine, actingAccount(exchange, key, named), order);
        const ack = await exchange.submit(cmd);
        throwIfRejected(ack.events, exchange.engine, cmd);
        send(client, placedText({ event: 'placed', id, order: placedOrderOut(exchange, ack.seq, ack.events, ack.ts) }));
        return;
      }
      if (op === 'cancel_after') {
        const timeoutMs = message.timeout_ms;
        if (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_CANCEL_AFTER_MS) {
          throw new ApiError(400, 'INVALID_REQUEST', `timeout_ms must be a whole number of milliseconds from 0 (off) to ${MAX_CANCEL_AFTER_MS}`);
        }
        const ack = await exchange.submit({ type: 'set_cancel_after', account: client.account, timeoutMs });
        throwIfRejected(ack.events, exchange.engine);
        return reply(client, { event: 'cancel_after', id, ...cancelAfterOut(client.account, ack.events, ack.ts) });
      }
      if (message.client_order_id !== undefined) {
        const clientOrderId = message.client_order_id;
        if (typeof clientOrderId !== 'string' || !CLIENT_ORDER_ID_PATTERN.test(clientOrderId) || message.order_id !== undefined) {
          throw new ApiError(400, 'INVALID_REQUEST', 'client_order_id must be 1 to 64 printable characters, given instead of order_id');
        }
        const owner = actingAccount(exchange, key, message.account ?? client.account);
        return reply(client, { event: 'cancelled', id, order: await cancelByClientIdFor(exchange, owner, clientOrderId) });
      }
      const orderId = idFrom(message.order_id) ?? NaN;
      if (!Number.isSafeInteger(orderId) || orderId <= 0) throw new ApiError(400, 'INVALID_REQUEST', 'order_id must be an order id');
      return reply(client, { event: 'cancelled', id, order: await cancelOrderFor(exchange, key, orderId, client.account) });
    }
    throw new ApiError(400, 'UNKNOWN_OP', 'unknown op');
  };

  // A block closes the sockets already open from the addresses it covers.
  const everyClient = new Set<Client>();
  exchange.addressBlocks.onBlock((_block, covers) => {
    for (const client of everyClient) if (covers(client.ip)) client.socket.close(1008, 'address blocked');
  });
  gateway.rateBans.onBan((ban) => {
    for (const client of everyClient) {
      if (client.subject === ban.subject || (client.key !== null && `key:${client.key.key}` === ban.subject)) client.socket.close(1008, 'banned: sent on after 429s');
    }
  });

  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    const ip = gateway.addressOf(request);
    const client = new Client(socket, ip, options.messagesPerSecond, exchange.clock());
    everyClient.add(client);
    // A frame that breaks the protocol (over maxPayload, invalid UTF-8, unmasked) makes ws close
    // the socket with the fitting code and emit 'error': unheard, that error would end the process.
    socket.on('error', (error) => app.log.debug({ err: error, ip }, 'websocket closed for a protocol error'));
    socket.on('message', (data, isBinary) => {
      const now = exchange.clock();
      client.tokens = Math.min(options.messagesPerSecond, client.tokens + ((now - client.refilledAt) * options.messagesPerSecond) / 1000);
      client.refilledAt = now;
      if (client.tokens < 1) {
        // Over the socket's rate: the first message is told how long to wait; those that follow
        // within that time are dropped unanswered (an answer each would double a flood's traffic)
        // and count toward the address's ban, like requests sent after a 429.
        const waitMs = Math.ceil(((1 - client.tokens) * 1000) / options.messagesPerSecond);
        if (gateway.countRefusal(client.ip, client.subject, waitMs, now) !== undefined || now < client.quietUntil) return;
        const retryAfter = Math.ceil(waitMs / 1000);
        client.quietUntil = now + retryAfter * 1000;
        reply(client, { event: 'error', error: { code: 'RATE_LIMITED', message: `at most ${options.messagesPerSecond} messages a second on one socket`, retry_after: retryAfter } });
        return;
      }
      client.tokens -= 1;
      let message: Message;
      try {
        if (isBinary) throw new Error('binary');
        const parsed: unknown = parseJson(data.toString());
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
        message = parsed as Message;
      } catch {
        reply(client, { event: 'error', error: { code: 'INVALID_JSON', message: 'messages are JSON objects' } });
        return;
      }
      handle(client, message).catch((error: unknown) => {
        const refusal = error instanceof ApiError ? error : serviceRefusal(error);
        const e = refusal ?? new ApiError(500, 'INTERNAL', 'internal error');
        if (refusal === null) app.log.error({ err: error }, 'websocket handler failed');
        const retryAfter = e.retryAfterSeconds === undefined ? {} : { retry_after: e.retryAfterSeconds };
        reply(client, { event: 'error', id: message.id, error: { code: e.code, message: e.message, ...retryAfter } });
      });
    });
    socket.on('close', () => {
      everyClient.delete(client);
      if (client.expiry !== null) clearTimeout(client.expiry);
      for (const channel of [...client.subscriptions]) leave(client, channel);
      if (client.account !== null) byAccount.get(client.account)?.delete(client);
      staleClients.delete(client);
      if (client.cancelOnDisconnect && client.account !== null) {
        const account = client.account;
        const cancelling = exchange.submit({ type: 'cancel_all', account, cause: 'disconnect' }).then(() => undefined, (error: unknown) => {
          app.log.warn({ err: error, account }, 'cancel-on-disconnect could not be submitted');
        });
        disconnectCancels.add(cancelling);
        void cancelling.finally(() => disconnectCancels.delete(cancelling));
      }
    });
  });

  // A socket that has not answered the previous ping by the next one is gone: terminate it.
  const answered = new WeakMap<WebSocket, boolean>();
  wss.on('connection', (socket: WebSocket) => {
    answered.set(socket, true);
    socket.on('pong', () => answered.set(socket, true));
  });
  const heartbeat = setInterval(() => {
    for (const socket of wss.clients) {
      if (answered.get(socket) === false) {
        socket.terminate();
        continue;
      }
      answered.set(socket, false);
      socket.ping();
    }
  }, options.pingIntervalMs);
  heartbeat.unref();

  // Before the HTTP server closes: it would otherwise wait forever for the upgraded sockets.
  // A shutdown is a disconnect too: wait until every closed socket's cancel-on-disconnect is
  // journaled, while the sequencer still takes commands.
  app.addHook('preClose', async () => {
    clearInterval(heartbeat);
    if (depthTimer !== null) clearTimeout(depthTimer);
    if (staleCheck !== null) clearTimeout(staleCheck);
    const closed = [...wss.clients].map((socket) => new Promise((resolve) => socket.once('close', resolve)));
    for (const socket of wss.clients) socket.terminate();
    // Bounded, so that a socket that never reports its close cannot hold the shutdown up.
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise((resolve) => { timer = setTimeout(resolve, 5_000); });
    await Promise.race([Promise.all(closed).then(() => Promise.all(disconnectCancels)), bound]);
    clearTimeout(timer);
    wss.close();
  });

  return { clients: () => wss.clients.size, stats };
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined;
}
