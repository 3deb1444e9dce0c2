import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { call } from './support/api-client.js';
import { Venue } from './support/venue.js';
import { WebSocket } from 'ws';
import { SocketClient, tryConnect } from './support/ws-client.js';
import type { Upgrade } from './support/ws-client.js';
import { until } from './support/until.js';
import { clientChecksum } from './support/book-checksum.js';
import { rmSync } from 'node:fs';
import type { WireLevel } from '../src/marketdata/depth.js';

/** A client-side book rebuilt from a snapshot and updates, as a trading bot would keep it. */
class LocalBook {
  bids = new Map<string, string>();
  asks = new Map<string, string>();
  seq = 0;

  load(message: { seq: number; bids: WireLevel[]; asks: WireLevel[] }): void {
    this.bids = new Map(message.bids);
    this.asks = new Map(message.asks);
    this.seq = message.seq;
  }

  apply(message: { seq: number; prev_seq: number; bids: WireLevel[]; asks: WireLevel[]; checksum: number }): void {
    assert.equal(message.prev_seq, this.seq, 'no gap between depth messages');
    assert.ok(message.seq > this.seq, 'sequence increases');
    for (const [side, changes] of [[this.bids, message.bids], [this.asks, message.asks]] as const) {
      for (const [price, quantity] of changes) {
        if (Number(quantity) === 0) side.delete(price);
        else side.set(price, quantity);
      }
    }
    this.seq = message.seq;
    const top = this.top();
    assert.equal(clientChecksum(top.bids, top.asks), message.checksum, `checksum after seq ${message.seq}`);
  }

  top(depth = 25): { bids: WireLevel[]; asks: WireLevel[] } {
    const sort = (side: Map<string, string>, descending: boolean): WireLevel[] =>
      [...side.entries()].sort((a, b) => (descending ? Number(b[0]) - Number(a[0]) : Number(a[0]) - Number(b[0]))).slice(0, depth);
    return { bids: sort(this.bids, true), asks: sort(this.asks, false) };
  }
}

test('a client rebuilding the book from snapshot and diffs matches GET depth and every checksum', async () => {
  const venue = await Venue.start();
  try {
    const maker = await venue.trader('maker@example.com', { USDT: '1000000', BTC: '50' });
    const taker = await venue.trader('taker@example.com', { USDT: '1000000', BTC: '50' });
    const client = await SocketClient.connect(venue.url);
    client.send({ op: 'subscribe', channel: 'depth', market: 'BTC-USDT' });
    const book = new LocalBook();
    book.load(await client.next((m) => m.channel === 'depth' && m.type === 'snapshot'));
    let seed = 7;
    const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const who = random() < 0.5 ? maker : taker;
      const side = random() < 0.5 ? 'buy' : 'sell';
      const roll = random();
      if (roll < 0.15 && ids.length > 0) {
        await venue.signed(maker, 'DELETE', `/api/v1/orders/${ids.splice(Math.floor(random() * ids.length), 1)[0]}`);
        continue;
      }
      const price = (30_000 + Math.floor(random() * 20) * 5 * (side === 'buy' ? -1 : 1) + (roll > 0.85 ? (side === 'buy' ? 60 : -60) : 0)).toFixed(2);
      const placed = await venue.signed(who, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side, type: 'limit', price, quantity: (0.001 * (1 + Math.floor(random() * 5))).toFixed(4) });
      assert.equal(placed.status, 201, JSON.stringify(placed.body));
      if (who === maker && placed.body.status === 'NEW') ids.push(placed.body.id);
    }
    const finalSeq = venue.exchange.sequencer.lastSeq;
    while (book.seq < finalSeq) {
      const update = await client.next((m) => m.channel === 'depth' && m.type === 'update');
      book.apply(update);
      if (update.seq >= finalSeq) break;
      if (client.messages.every((m) => m.channel !== 'depth')) {
        // Nothing more queued: the last commands may not have changed this book.
        const depth = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/depth?limit=1000');
        if (JSON.stringify(book.top(1000).bids.map(([p, q]) => [p, q])) === JSON.stringify(depth.body.bids.map(([p, q]: string[]) => [p, q]))) break;
      }
    }
    const depth = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/depth?limit=1000');
    const top = book.top(1000);
    assert.deepEqual(top.bids, depth.body.bids.map(([p, q]: string[]) => [p, q]));
    assert.deepEqual(top.asks, depth.body.asks.map(([p, q]: string[]) => [p, q]));
    assert.ok(top.bids.length > 3 && top.asks.length > 3, 'the book is not trivial');
    client.close();
  } finally {
    await venue.stop();
  }
});

test('depth updates are coalesced to one per interval, each with every change since the previous one, and a late subscriber gets the book as last sent and chains on without forcing an update out', async () => {
  const venue = await Venue.start({ server: { ws: { depthIntervalMs: 1_000 } } });
  try {
    const trader = await venue.trader('coalesce@example.com', { USDT: '100000' });
    const early = await SocketClient.connect(venue.url);
    early.send({ op: 'subscribe', channel: 'depth', market: 'BTC-USDT' });
    const earlyBook = new LocalBook();
    earlyBook.load(await early.next((m) => m.type === 'snapshot'));
    const place = (price: string) => venue.signed(trader, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price, quantity: '0.0100' });
    // The first change of a quiet market goes out at once; the next ones wait for the interval.
    await place('100.00');
    earlyBook.apply(await early.next((m) => m.type === 'update'));
    for (let i = 1; i <= 8; i++) assert.equal((await place(`${100 + i}.00`)).status, 201);
    // A subscriber joining with changes pending gets the book as last published, at that seq, and
    // the pending changes in the next update with everyone else: subscribing forces nothing out early.
    const placedSeq = venue.exchange.sequencer.lastSeq;
    const late = await SocketClient.connect(venue.url);
    late.send({ op: 'subscribe', channel: 'depth', market: 'BTC-USDT' });
    const lateBook = new LocalBook();
    lateBook.load(await late.next((m) => m.type === 'snapshot'));
    let updates = 0;
    while (earlyBook.seq < lateBook.seq) {
      earlyBook.apply(await early.next((m) => m.type === 'update'));
      updates += 1;
    }
    assert.equal(earlyBook.seq, lateBook.seq, 'the snapshot is the state the others were last sent');
    assert.deepEqual(earlyBook.top(), lateBook.top());
    assert.ok(lateBook.seq < placedSeq, 'the pending changes were not sent early for the newcomer');
    const [pendingA, pendingB] = await Promise.all([early.next((m) => m.type === 'update'), late.next((m) => m.type === 'update')]);
    earlyBook.apply(pendingA);
    lateBook.apply(pendingB);
    updates += 1;
    assert.deepEqual(pendingA, pendingB, 'both get the same update, chained to the snapshot');
    assert.equal(lateBook.seq, placedSeq);
    assert.ok(updates <= 2, `the 8 orders' changes came in ${updates} updates, not at most 2`);
    assert.deepEqual(earlyBook.top(), lateBook.top());
    await place('100.50');
    const [a, b] = await Promise.all([early.next((m) => m.type === 'update'), late.next((m) => m.type === 'update')]);
    earlyBook.apply(a);
    lateBook.apply(b);
    assert.equal(a.seq, b.seq);
    const depth = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/depth?limit=100');
    assert.deepEqual(lateBook.top(100).bids, depth.body.bids.map(([p, q]: string[]) => [p, q]));
    assert.equal(lateBook.bids.size, 10);
    early.close();
    late.close();
  } finally {
    await venue.stop();
  }
});

test('after a restart the depth sequence continues from where it was', async () => {
  const first = await Venue.start();
  const dataDir = first.dataDir;
  const trader = await first.trader('restart@example.com', { USDT: '100000' });
  const client = await SocketClient.connect(first.url);
  client.send({ op: 'subscribe', channel: 'depth', market: 'BTC-USDT' });
  await client.next((m) => m.type === 'snapshot');
  await first.signed(trader, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '100.00', quantity: '0.0100' });
  const before = await client.next((m) => m.type === 'update');
  client.close();
  await first.stop(true);

  const second = await Venue.start({ dataDir });
  try {
    const again = await SocketClient.connect(second.url);
    again.send({ op: 'subscribe', channel: 'depth', market: 'BTC-USDT' });
    const snapshot = await again.next((m) => m.type === 'snapshot');
    assert.ok(snapshot.seq >= before.seq, `snapshot seq ${snapshot.seq} does not go back from ${before.seq}`);
    assert.deepEqual(snapshot.bids, [['100.000000', '0.01000000']]);
    await second.signed(trader, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '101.00', quantity: '0.0100' });
    const update = await again.next((m) => m.type === 'update');
    assert.ok(update.seq > snapshot.seq);
    assert.equal(update.prev_seq, snapshot.seq);
    again.close();
  } finally {
    await second.stop();
  }
});

test('over the socket: auth, private channels, placing and cancelling orders, trades and tickers', async () => {
  const venue = await Venue.start();
  try {
    const alice = await venue.trader('ws-alice@example.com', { USDT: '100000' });
    const bob = await venue.trader('ws-bob@example.com', { BTC: '1' });
    const client = await SocketClient.connect(venue.url);
    client.send({ op: 'subscribe', channel: 'orders' });
    assert.equal((await client.next((m) => m.event === 'error')).error.code, 'AUTH_REQUIRED');
    const timestamp = String(Date.now());
    const signature = createHmac('sha256', alice.secret).update(`${timestamp}GET/ws`).digest('hex');
    client.send({ op: 'auth', key: alice.key, timestamp, signature });
    assert.equal((await client.next((m) => m.event === 'authenticated')).account, alice.account);
    client.send({ op: 'auth', key: alice.key, timestamp, signature });
    assert.equal((await client.next((m) => m.event === 'error')).error.code, 'REPLAYED_REQUEST');
    for (const channel of ['orders', 'balances', 'fills']) client.send({ op: 'subscribe', channel });
    client.send({ op: 'subscribe', channel: 'trades', market: 'BTC-USDT' });
    client.send({ op: 'subscribe', channel: 'ticker', market: 'BTC-USDT' });
    await client.next((m) => m.event === 'subscribed' && m.channel === 'ticker:BTC-USDT');

    client.send({ op: 'place', id: 'r1', order: { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '50000.00', quantity: '0.0100' } });
    const placed = await client.next((m) => m.event === 'placed' && m.id === 'r1');
    assert.equal(placed.order.status, 'NEW');
    assert.equal(placed.order.account, alice.account);
    const balance = await client.next((m) => m.channel === 'balances' && m.balance !== undefined);
    assert.equal(balance.balance.reserved, '500.000000');

    await venue.signed(bob, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'sell', type: 'limit', price: '50000.00', quantity: '0.0040' });
    const fill = await client.next((m) => m.channel === 'fills' && m.fill !== undefined);
    assert.equal(fill.fill.quantity, '0.00400000');
    assert.equal(fill.fill.liquidity, 'maker');
    const trades = await client.next((m) => m.channel === 'trades' && m.trades !== undefined);
    assert.equal(trades.trades[0].price, '50000.000000');
    const ticker = await client.next((m) => m.channel === 'ticker' && m.ticker?.last !== null);
    assert.equal(ticker.ticker.last, '50000.000000');
    const partial = await client.next((m) => m.channel === 'orders' && m.order?.status === 'PARTIALLY_FILLED');
    assert.equal(partial.order.remaining_quantity, '0.00600000');

    client.send({ op: 'place', id: 'r-foreign', order: { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '50000.00', quantity: '0.0100', account: bob.account } });
    assert.equal((await client.next((m) => m.event === 'error' && m.id === 'r-foreign')).error.code, 'ACCOUNT_NOT_ALLOWED', 'another user\'s account cannot be named');
    client.send({ op: 'place', id: 'r2', order: { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '40000.00', quantity: '1000' } });
    const refused = (await client.next((m) => m.event === 'error' && m.id === 'r2')).error;
    assert.deepEqual([refused.code, refused.message], ['INSUFFICIENT_BALANCE', 'not enough available USDT for this order'], 'the socket words a refusal as REST does');
    client.send({ op: 'cancel', id: 'r3', order_id: placed.order.id });
    const cancelled = await client.next((m) => m.event === 'cancelled' && m.id === 'r3');
    assert.equal(cancelled.order.status, 'CANCELLED');
    client.send({ op: 'place', id: 'r4', order: { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '40000.00', quantity: '0.0100', client_order_id: 'grid-7' } });
    const mine = await client.next((m) => m.event === 'placed' && m.id === 'r4');
    client.send({ op: 'cancel', id: 'r5', client_order_id: 'grid-7', order_id: mine.order.id });
    assert.equal((await client.next((m) => m.event === 'error' && m.id === 'r5')).error.code, 'INVALID_REQUEST', 'one id or the other, not both');
    client.send({ op: 'cancel', id: 'r6', client_order_id: 'grid-7' });
    const byClientId = await client.next((m) => m.event === 'cancelled' && m.id === 'r6');
    assert.deepEqual([byClientId.order.id, byClientId.order.status, byClientId.order.client_order_id], [mine.order.id, 'CANCELLED', 'grid-7'], 'cancelled by the client\'s own id');
    client.send({ op: 'cancel', id: 'r7', client_order_id: 'grid-7' });
    assert.equal((await client.next((m) => m.event === 'error' && m.id === 'r7')).error.code, 'UNKNOWN_ORDER', 'a client id is cancelled once');
    client.socket.send('{"op":"ping","__proto__":{"admin":true}}');
    assert.equal((await client.next((m) => m.event === 'error' && m.error.code === 'INVALID_JSON')).error.code, 'INVALID_JSON', 'a __proto__ key is refused');
    client.send({ op: 'ping' });
    await client.next((m) => m.event === 'pong');
    client.socket.send('not json');
    assert.equal((await client.next((m) => m.event === 'error')).error.code, 'INVALID_JSON');
    client.close();

    const candles = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/candles?interval=1m');
    assert.equal(candles.body.candles.length, 1);
    assert.equal(candles.body.candles[0].volume, '0.00400000');
    const tickers = await call(venue.url, 'GET', '/api/v1/tickers');
    assert.equal(tickers.body.tickers.find((t: { market: string }) => t.market === 'BTC-USDT').trades, 1);
  } finally {
    await venue.stop();
  }
});

test('cancel-on-disconnect: when a socket that asked for it closes, the account\'s open orders are cancelled; other sockets leave them; the switch can be set over the socket', async () => {
  const venue = await Venue.start();
  try {
    const carol = await venue.trader('ws-carol@example.com', { USDT: '100000' });
    const watcher = await venue.trader('ws-watcher@example.com', {}, ['read']);
    const auth = (client: SocketClient, key: { key: string; secret: string }, extra: Record<string, unknown> = {}): void => {
      const timestamp = String(Date.now());
      const signature = createHmac('sha256', key.secret).update(`${timestamp}GET/ws`).digest('hex');
      client.send({ op: 'auth', key: key.key, timestamp, signature, ...extra });
    };
    const buy = (price: string) => ({ market: 'BTC-USDT', side: 'buy', type: 'limit', price, quantity: '0.0100' });
    const statusOf = async (id: string) => (await venue.signed(carol, 'GET', `/api/v1/orders/${id}`)).body;

    // A plain socket closing leaves its orders.
    const plain = await SocketClient.connect(venue.url);
    auth(plain, carol);
    assert.equal((await plain.next((m) => m.event === 'authenticated')).cancel_on_disconnect, false);
    plain.send({ op: 'place', id: 'p1', order: buy('40000.00') });
    const stays = (await plain.next((m) => m.event === 'placed')).order;
    plain.close();

    const guarded = await SocketClient.connect(venue.url);
    auth(guarded, carol, { cancel_on_disconnect: true });
    assert.equal((await guarded.next((m) => m.event === 'authenticated')).cancel_on_disconnect, true);
    guarded.send({ op: 'place', id: 'g1', order: buy('41000.00') });
    await guarded.next((m) => m.event === 'placed');
    assert.equal((await statusOf(stays.id)).status, 'NEW', 'the plain socket\'s close cancelled nothing');

    // The dead man's switch over the socket, and its refusals.
    guarded.send({ op: 'cancel_after', id: 's1', timeout_ms: 60_000 });
    const set = await guarded.next((m) => m.event === 'cancel_after' && m.id === 's1');
    assert.equal(set.trigger_time, set.current_time + 60_000);
    guarded.send({ op: 'cancel_after', id: 's2', timeout_ms: -5 });
    assert.equal((await guarded.next((m) => m.event === 'error' && m.id === 's2')).error.code, 'INVALID_REQUEST');
    guarded.send({ op: 'cancel_after', id: 's3', timeout_ms: 0 });
    assert.equal((await guarded.next((m) => m.event === 'cancel_after' && m.id === 's3')).trigger_time, null);

    guarded.close();
    let open: { orders: { id: string }[] } = { orders: [] };
    for (let i = 0; i < 100; i++) {
      open = (await venue.signed(carol, 'GET', '/api/v1/orders')).body;
      if (open.orders.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(open.orders.length, 0, 'every open order of the account is cancelled, the plain socket\'s too');
    assert.deepEqual([(await statusOf(stays.id)).status, (await statusOf(stays.id)).reason], ['CANCELLED', 'DISCONNECT']);

    // Asking for it needs the trade permission; a bad value is refused; neither authenticates the socket.
    const reader = await SocketClient.connect(venue.url);
    auth(reader, watcher, { cancel_on_disconnect: true });
    assert.equal((await reader.next((m) => m.event === 'error')).error.code, 'PERMISSION_DENIED');
    auth(reader, carol, { cancel_on_disconnect: 'yes' });
    assert.equal((await reader.next((m) => m.event === 'error')).error.code, 'INVALID_REQUEST');
    reader.send({ op: 'cancel_after', id: 's4', timeout_ms: 1_000 });
    assert.equal((await reader.next((m) => m.event === 'error' && m.id === 's4')).error.code, 'AUTH_REQUIRED');
    reader.close();
  } finally {
    await venue.stop();
  }
});

test('cancel-on-disconnect holds when the server shuts down: the sockets it closes cancel their orders before the journal closes', async () => {
  const first = await Venue.start();
  const dave = await first.trader('ws-dave@example.com', { USDT: '100000' });
  const client = await SocketClient.connect(first.url);
  const timestamp = String(Date.now());
  const signature = createHmac('sha256', dave.secret).update(`${timestamp}GET/ws`).digest('hex');
  client.send({ op: 'auth', key: dave.key, timestamp, signature, cancel_on_disconnect: true });
  await client.next((m) => m.event === 'authenticated');
  client.send({ op: 'place', id: 'd1', order: { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '40000.00', quantity: '0.0100' } });
  const placed = (await client.next((m) => m.event === 'placed')).order;
  await first.stop(true);
  const again = await Venue.start({ dataDir: first.dataDir });
  try {
    const order = (await again.signed(dave, 'GET', `/api/v1/orders/${placed.id}`)).body;
    assert.deepEqual([order.status, order.reason], ['CANCELLED', 'DISCONNECT']);
  } finally {
    await again.stop();
  }
});

test('sockets that try to open while the server stops are refused with 503, and none holds the stop up', async () => {
  const venue = await Venue.start({ server: { ipWeightPerSecond: 1_000_000, ws: { socketsPerAddress: 100_000 } } });
  const url = `${venue.url.replace('http', 'ws')}/ws`;
  const refusals: number[] = [];
  const attempt = (): Promise<void> => new Promise((resolve) => {
    const socket = new WebSocket(url);
    socket.on('open', () => resolve());
    socket.on('error', () => resolve());
    socket.on('unexpected-response', (_request, response) => { refusals.push(response.statusCode ?? 0); resolve(); });
  });
  await Promise.all(Array.from({ length: 20 }, attempt));
  // Before, a socket opened after the stop had closed the open ones was never closed, and the
  // stop waited for it for ever.
  const spam = setInterval(() => { for (let i = 0; i < 5; i++) void attempt(); }, 1);
  await new Promise((r) => setTimeout(r, 30)); // upgrades in flight as the stop begins
  try {
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([venue.app.close(), new Promise((_, reject) => { bound = setTimeout(() => reject(new Error('the stop is held up by a socket')), 5_000); })]);
    clearTimeout(bound);
  } finally {
    clearInterval(spam);
    venue.exchange.close();
    rmSync(venue.dataDir, { recursive: true, force: true });
  }
  assert.deepEqual(refusals.filter((status) => status !== 503), [], 'the only refusal is the shutdown\'s');
});

test('a consumer that stops reading is closed with 1008 instead of buffering without bound, and /metrics counts it', async () => {
  const venue = await Venue.start({ server: { ws: { bufferSoftBytes: 64 * 1024, bufferHardBytes: 1024 * 1024 } } });
  try {
    const trader = await venue.trader('deep@example.com', { USDT: '10000000', BTC: '1000' });
    // A deep book makes every snapshot large (about 60 KB).
    await Promise.all(Array.from({ length: 600 }, (_, i) => venue.exchange.submit({
      type: 'place_order', account: trader.account, market: 'BTC-USDT', side: i % 2 === 0 ? 'buy' : 'sell', orderType: 'limit',
      price: (i % 2 === 0 ? 30_000_000_000 - i * 10_000 : 30_100_000_000 + i * 10_000), quantity: 10_000,
    })));
    const slow = await SocketClient.connect(venue.url);
    const raw = (slow.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    raw.pause();
    for (let i = 0; i < 400; i++) slow.send({ op: 'subscribe', channel: 'depth', market: 'BTC-USDT' });
    const healthy = await SocketClient.connect(venue.url);
    healthy.send({ op: 'subscribe', channel: 'depth', market: 'BTC-USDT' });
    await healthy.next((m) => m.type === 'snapshot');
    await new Promise((r) => setTimeout(r, 1_500));
    raw.resume();
    const deadline = Date.now() + 10_000;
    while (slow.closed === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(slow.closed?.code, 1008, `closed as a slow consumer: ${JSON.stringify(slow.closed)}`);
    assert.equal(healthy.closed, null, 'other clients are not affected');
    assert.match(await (await fetch(`${venue.url}/metrics`)).text(), /^bourse_websocket_slow_consumer_closes_total 1$/m, 'the operator sees it');
    healthy.close();
  } finally {
    await venue.stop();
  }
});

test('a socket that stops answering pings is dropped; one that answers stays', async () => {
  const { WebSocket } = await import('ws');
  const venue = await Venue.start({ server: { ws: { pingIntervalMs: 100 } } });
  try {
    const url = `${venue.url.replace('http', 'ws')}/ws`;
    const silent = new WebSocket(url, { autoPong: false });
    const polite = new WebSocket(url);
    await Promise.all([silent, polite].map((s) => new Promise((r) => s.once('open', r))));
    const closed = await new Promise<number>((resolve) => silent.once('close', (code) => resolve(code)));
    assert.equal(closed, 1006, 'terminated without a closing handshake');
    assert.equal(polite.readyState, WebSocket.OPEN);
    polite.close();
  } finally {
    await venue.stop();
  }
});

test('revoking a key closes the sockets authenticated with it at once; other keys of the account stay connected', async () => {
  const venue = await Venue.start();
  try {
    const first = await venue.trader('ws-revoke@example.com', { USDT: '1000' });
    const second = await venue.admin('/apikeys', { email: 'ws-revoke@example.com', permissions: ['read', 'trade'] });
    const doomed = await SocketClient.connect(venue.url);
    await doomed.login(first);
    const kept = await SocketClient.connect(venue.url);
    await kept.login({ key: second.body.key, secret: second.body.secret });
    const revoked = await call(venue.url, 'DELETE', `/admin/v1/apikeys/${first.key}?email=ws-revoke@example.com`, { headers: { authorization: `Bearer ${venue.exchange.adminToken}` } });
    assert.equal(revoked.status, 200);
    for (let i = 0; i < 100 && doomed.closed === null; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(doomed.closed, { code: 1008, reason: 'API key revoked' });
    kept.send({ op: 'place', id: 1, order: { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '100.00', quantity: '0.0100' } });
    assert.equal((await kept.next((m) => m.event === 'placed' || m.event === 'error')).event, 'placed');
    assert.equal(kept.closed, null);
    kept.socket.close();
  } finally {
    await venue.stop();
  }
});

test('a socket follows one account: a main-account key may authenticate for a sub-account, whose private channels and orders it then carries', async () => {
  const venue = await Venue.start();
  try {
    const dana = await venue.trader('ws-dana@example.com', { USDT: '1000' }, ['read', 'trade', 'withdraw'], ['127.0.0.1']);
    const erin = await venue.trader('ws-erin@example.com', {});
    const sub = (await venue.signed(dana, 'POST', '/api/v1/accounts', { label: 'desk' })).body.account as number;
    assert.equal((await venue.signed(dana, 'POST', '/api/v1/transfers', { to_account: sub, asset: 'USDT', amount: '300', request_id: 'desk' })).status, 201);
    const auth = (client: SocketClient, account: number, offset: number): void => {
      const timestamp = String(Date.now() + offset);
      const signature = createHmac('sha256', dana.secret).update(`${timestamp}GET/ws`).digest('hex');
      client.send({ op: 'auth', key: dana.key, timestamp, signature, account });
    };

    const client = await SocketClient.connect(venue.url);
    auth(client, erin.account, 0);
    assert.equal((await client.next((m) => m.event === 'error')).error.code, 'ACCOUNT_NOT_ALLOWED', 'another user\'s account is out of reach');
    auth(client, sub, 1);
    assert.equal((await client.next((m) => m.event === 'authenticated')).account, sub);
    for (const channel of ['orders', 'balances']) client.send({ op: 'subscribe', channel });
    await client.next((m) => m.event === 'subscribed' && m.channel === 'balances');

    client.send({ op: 'place', id: 'd1', order: { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '100.00', quantity: '1.0000' } });
    const placed = await client.next((m) => m.event === 'placed' && m.id === 'd1');
    assert.equal(placed.order.account, sub, 'orders go to the socket\'s account by default');
    assert.equal((await client.next((m) => m.channel === 'balances' && m.balance?.asset === 'USDT')).balance.reserved, '100.000000');
    const main = await venue.signed(dana, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '100.00', quantity: '2.0000' });
    const mainOrder = main.body.id as string;
    const sent = await venue.signed(dana, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '100.00', quantity: '0.5000', account: sub });
    const next = await client.next((m) => m.channel === 'orders' && m.order !== undefined && m.order.id !== placed.order.id);
    assert.equal(next.order.id, sent.body.id, 'the main account\'s order is not on this socket; the sub-account\'s REST order is');
    assert.notEqual(next.order.id, mainOrder);
    client.close();
  } finally {
    await venue.stop();
  }
});

test('an address holds a bounded number of sockets, and each upgrade draws on its request budget', async () => {
  const venue = await Venue.start({ server: { ws: { socketsPerAddress: 3 } } });
  try {
    const open = await Promise.all([1, 2, 3].map(() => tryConnect(venue.url)));
    assert.ok(open.every((o) => 'socket' in o));
    assert.deepEqual(await tryConnect(venue.url), { status: 429, code: 'TOO_MANY_SOCKETS', retryAfter: 1 });
    const first = open[0] as { socket: WebSocket };
    await new Promise<void>((resolve) => { first.socket.once('close', () => resolve()); first.socket.close(); });
    let again = await tryConnect(venue.url);
    for (let i = 0; i < 20 && !('socket' in again); i++) {
      await new Promise((r) => setTimeout(r, 25)); // the server sees the close a moment later
      again = await tryConnect(venue.url);
    }
    assert.ok('socket' in again, 'a closed socket frees its place');
    for (const o of [...open.slice(1), again]) if ('socket' in o) o.socket.close();
  } finally {
    await venue.stop();
  }
  const budget = await Venue.start({ server: { ipWeightPerSecond: 5 } });
  try {
    const attempts = await Promise.all(Array.from({ length: 12 }, () => tryConnect(budget.url)));
    const refused = attempts.filter((a): a is Extract<Upgrade, { status: number }> => 'status' in a);
    assert.ok(refused.length >= 6 && refused.every((r) => r.status === 429 && r.code === 'RATE_LIMITED'), JSON.stringify(refused));
    for (const a of attempts) if ('socket' in a) a.socket.close();
  } finally {
    await budget.stop();
  }
});

test('the orders and balances channels start with a snapshot of the account as of a seq, then every later update: a reconnecting bot needs no REST call racing the stream', async () => {
  const venue = await Venue.start();
  try {
    const bot = await venue.trader('ws-snapshot@example.com', { USDT: '10000' });
    const order = (price: string) => ({ market: 'BTC-USDT', side: 'buy', type: 'limit', price, quantity: '0.0100' });
    const resting = (await venue.signed(bot, 'POST', '/api/v1/orders', order('20000.00'))).body;
    const client = await SocketClient.connect(venue.url);
    const timestamp = String(Date.now());
    client.send({ op: 'auth', key: bot.key, timestamp, signature: createHmac('sha256', bot.secret).update(`${timestamp}GET/ws`).digest('hex') });
    await client.next((m) => m.event === 'authenticated');

    client.send({ op: 'subscribe', channel: 'orders' });
    await client.next((m) => m.event === 'subscribed' && m.channel === 'orders');
    const orders = await client.next((m) => m.channel === 'orders' && m.type === 'snapshot');
    assert.deepEqual([orders.orders.map((o: { id: string }) => o.id), orders.complete, typeof orders.seq], [[resting.id], true, 'number']);
    assert.deepEqual(orders.orders[0], (await venue.signed(bot, 'GET', `/api/v1/orders?limit=1`)).body.orders[0], 'each order as GET /orders shows it');

    client.send({ op: 'subscribe', channel: 'balances' });
    const balances = await client.next((m) => m.channel === 'balances' && m.type === 'snapshot');
    assert.deepEqual(balances.balances, [{ asset: 'USDT', available: '9800.000000', reserved: '200.000000', locked: '0.000000' }]);
    assert.ok(balances.seq >= orders.seq);

    const next = (await venue.signed(bot, 'POST', '/api/v1/orders', order('19000.00'))).body;
    const update = await client.next((m) => m.channel === 'orders' && m.order?.id === next.id);
    assert.equal(update.order.status, 'NEW', 'then updates, as before');
    const balance = await client.next((m) => m.channel === 'balances' && m.balance !== undefined);
    assert.equal(balance.balance.reserved, '390.000000');
    client.close();
  } finally {
    await venue.stop();
  }
});

test('a key made to expire works until then and not after: REST answers KEY_EXPIRED (to whoever signs right), sockets signed in with it close, listings show when', async () => {
  const venue = await Venue.start();
  try {
    await venue.trader('ws-expiry@example.com', { USDT: '1000' });
    const expiresAt = Date.now() + 1_500;
    const made = await venue.admin('/apikeys', { email: 'ws-expiry@example.com', permissions: ['read', 'trade'], label: 'one-off', expires_at: expiresAt });
    assert.deepEqual([made.status, made.body.expires_at], [201, expiresAt]);
    const credentials = { key: made.body.key, secret: made.body.secret };
    assert.equal((await call(venue.url, 'GET', '/api/v1/balances', { credentials })).status, 200);
    const socket = await SocketClient.connect(venue.url);
    await socket.login(credentials);
    const listed = (await venue.admin('/apikeys?email=ws-expiry%40example.com', undefined, 'GET')).body.keys.find((k: { key: string }) => k.key === made.body.key);
    assert.equal(listed.expires_at, expiresAt);

    for (let i = 0; i < 300 && socket.closed === null; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(Date.now() >= expiresAt);
    assert.deepEqual(socket.closed, { code: 1008, reason: 'API key expired' });
    const expired = await call(venue.url, 'GET', '/api/v1/balances', { credentials });
    assert.deepEqual([expired.status, expired.body.error.code], [401, 'KEY_EXPIRED']);
    const forged = await call(venue.url, 'GET', '/api/v1/balances', { credentials: { key: made.body.key, secret: 'not the secret' } });
    assert.equal(forged.body.error.code, 'INVALID_SIGNATURE', 'a prober without the secret learns nothing of the expiry');
    const past = await venue.admin('/apikeys', { email: 'ws-expiry@example.com', permissions: ['read'], expires_at: Date.now() - 1 });
    assert.deepEqual([past.status, past.body.error.code], [400, 'INVALID_EXPIRY']);
  } finally {
    await venue.stop();
  }
});

test('a balances snapshot taken while the read model lags is not followed by the stale updates it already holds: the subscription starts once they have gone', async () => {
  const venue = await Venue.start({ projectionDelayMs: 300 });
  try {
    const bot = await venue.trader('ws-lagging@example.com', { USDT: '10000' });
    const client = await SocketClient.connect(venue.url);
    await client.login(bot);
    const arrived: { type?: string; balance?: unknown; balances?: unknown }[] = [];
    client.socket.on('message', (data) => arrived.push(JSON.parse(String(data))));
    // The order is acknowledged at once; its balance update waits for the lagging read model.
    assert.equal((await venue.signed(bot, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '20000.00', quantity: '0.0100' })).status, 201);
    client.send({ op: 'subscribe', channel: 'balances' });
    const snapshot = await client.next((m) => m.channel === 'balances' && m.type === 'snapshot', 5_000);
    assert.deepEqual(snapshot.balances, [{ asset: 'USDT', available: '9800.000000', reserved: '200.000000', locked: '0.000000' }], 'the order is in the snapshot');
    await new Promise((resolve) => setTimeout(resolve, 800));
    const balances = arrived.filter((m) => m.balance !== undefined || m.balances !== undefined);
    assert.deepEqual(balances.map((m) => m.type ?? 'update'), ['snapshot'], 'the update the snapshot already holds never comes after it');
    client.close();
  } finally {
    await venue.stop();
  }
});

test('a socket over its message rate is told once to wait (RATE_LIMITED with retry_after) and the rest of its burst is dropped unanswered; one that waits goes on, one that keeps sending gets its address banned and the socket closed', async () => {
  const venue = await Venue.start({ server: { ws: { messagesPerSecond: 10 }, rateBans: { ignoredRefusalsBeforeBan: 20, graceMs: 100, banMs: 5_000 }, rateBanExempt: [] } });
  try {
    const patient = await SocketClient.connect(venue.url);
    for (let i = 0; i < 30; i++) patient.send({ op: 'ping' });
    const told = await patient.next((m) => m.event === 'error');
    assert.deepEqual([told.error.code, told.error.retry_after], ['RATE_LIMITED', 1]);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(patient.messages.filter((m) => m.event === 'pong').length, 10, 'the first ten are answered');
    assert.equal(patient.messages.filter((m) => m.event === 'error').length, 0, 'one error for the whole burst');
    await new Promise((r) => setTimeout(r, 1_000));
    patient.send({ op: 'ping' });
    await until(() => patient.messages.filter((m) => m.event === 'pong').length, (pongs) => pongs === 11, 'the answer after the wait');
    assert.equal(patient.closed, null, 'it waited, and goes on');
    patient.close();

    const flooder = await SocketClient.connect(venue.url);
    const started = Date.now();
    while (flooder.closed === null && Date.now() - started < 3_000) {
      for (let i = 0; i < 20; i++) flooder.send({ op: 'ping' });
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(flooder.closed?.code, 1008, 'closed for the ban');
    assert.deepEqual((await venue.admin('/rate-bans', undefined, 'GET')).body.bans.map((b: { subject: string }) => b.subject), ['ip:127.0.0.1']);
  } finally {
    await venue.stop();
  }
});
