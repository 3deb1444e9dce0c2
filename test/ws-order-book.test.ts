import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientChecksum } from './support/book-checksum.js';
import { call } from './support/api-client.js';
import { Venue } from './support/venue.js';
import { SocketClient } from './support/ws-client.js';
import { until } from './support/until.js';

type WireOrder = [id: string, price: string, quantity: string];
type Change = [id: string, side: 'buy' | 'sell', price: string, quantity: string];

/**
 * A book kept order by order as the README tells a client to keep it: per side, a queue per
 * price; a known order takes its new quantity in place, an unknown one joins the end of its queue.
 */
class LocalOrderBook {
  private readonly queues = { buy: new Map<string, WireOrder[]>(), sell: new Map<string, WireOrder[]>() };
  seq = 0;
  /** Every order that ever joined a queue. */
  readonly joined = new Set<string>();

  load(message: { seq: number; bids: WireOrder[]; asks: WireOrder[] }): void {
    for (const [side, orders] of [['buy', message.bids], ['sell', message.asks]] as const) {
      this.queues[side].clear();
      for (const order of orders) this.change([order[0], side, order[1], order[2]]);
    }
    this.seq = message.seq;
  }

  apply(message: { seq: number; prev_seq: number; changes: Change[]; checksum: number }): void {
    assert.equal(message.prev_seq, this.seq, 'no gap between book messages');
    assert.ok(message.seq > this.seq, 'sequence increases');
    for (const change of message.changes) this.change(change);
    this.seq = message.seq;
    const { bids, asks } = this.sides();
    assert.equal(clientChecksum(bids, asks), message.checksum, `checksum after seq ${message.seq}`);
  }

  private change([id, side, price, quantity]: Change): void {
    const queue = this.queues[side].get(price) ?? [];
    const at = queue.findIndex((o) => o[0] === id);
    if (Number(quantity) === 0) {
      assert.ok(at >= 0, `order ${id} removed from ${side} ${price}, where it was`);
      queue.splice(at, 1);
    } else if (at >= 0) {
      queue[at] = [id, price, quantity];
    } else {
      queue.push([id, price, quantity]);
      this.joined.add(id);
    }
    if (queue.length === 0) this.queues[side].delete(price);
    else this.queues[side].set(price, queue);
  }

  sides(): { bids: WireOrder[]; asks: WireOrder[] } {
    const side = (queues: Map<string, WireOrder[]>, descending: boolean): WireOrder[] =>
      [...queues.entries()].sort((a, b) => (descending ? Number(b[0]) - Number(a[0]) : Number(a[0]) - Number(b[0]))).flatMap(([, orders]) => orders);
    return { bids: side(this.queues.buy, true), asks: side(this.queues.sell, false) };
  }
}

async function catchUp(client: SocketClient, book: LocalOrderBook, seq: number): Promise<void> {
  while (book.seq < seq) book.apply(await client.next((m) => m.channel === 'book' && m.type === 'update'));
}

test('a client keeping the book order by order from snapshot and updates matches GET book, queue order included, through fills, amendments, cancels and stops, and so does a late subscriber\'s snapshot', async () => {
  const venue = await Venue.start();
  try {
    const maker = await venue.trader('mbo-maker@example.com', { USDT: '10000000', BTC: '500' });
    const taker = await venue.trader('mbo-taker@example.com', { USDT: '10000000', BTC: '500' });
    const client = await SocketClient.connect(venue.url);
    client.send({ op: 'subscribe', channel: 'book', market: 'BTC-USDT' });
    assert.equal((await client.next((m) => m.event === 'subscribed')).channel, 'book:BTC-USDT');
    const book = new LocalOrderBook();
    book.load(await client.next((m) => m.channel === 'book' && m.type === 'snapshot'));
    let seed = 11;
    const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
    const resting: string[] = [];
    const stops: string[] = [];
    const kinds = new Set<string>();
    for (let i = 0; i < 120; i++) {
      const roll = random();
      const side = random() < 0.5 ? 'buy' : 'sell';
      // Few prices, so that queues form; now and then a taker crosses into them.
      const price = (30_000 + (side === 'buy' ? -1 : 1) * (5 + 5 * Math.floor(random() * 4))).toFixed(2);
      const quantity = (0.001 * (1 + Math.floor(random() * 6))).toFixed(4);
      if (roll < 0.12 && resting.length > 0) {
        kinds.add('cancel');
        const id = resting.splice(Math.floor(random() * resting.length), 1)[0]!;
        await venue.signed(maker, 'DELETE', `/api/v1/orders/${id}`);
      } else if (roll < 0.3 && resting.length > 0) {
        const id = resting[Math.floor(random() * resting.length)]!;
        const change = random();
        const body = change < 0.4 ? { quantity: '0.0005' } : change < 0.8 ? { quantity: '0.0090' } : { price: (29_990 - Math.floor(random() * 3) * 5).toFixed(2) };
        const amended = await venue.signed(maker, 'PATCH', `/api/v1/orders/${id}`, body);
        if (amended.status === 200) kinds.add(change < 0.4 ? 'amend down' : change < 0.8 ? 'amend up' : 'amend price');
      } else if (roll < 0.42) {
        kinds.add('cross');
        await venue.signed(taker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side, type: 'market', quantity });
      } else if (roll < 0.5) {
        // A stop-limit that the next trade through its stop price puts in the book.
        const stopped = await venue.signed(maker, 'POST', '/api/v1/orders', {
          market: 'BTC-USDT', side: 'buy', type: 'stop_limit', price: '29980.00', stop_price: '29000.00', quantity: '0.0010',
        });
        if (stopped.status === 201) stops.push(stopped.body.id);
      } else {
        const placed = await venue.signed(maker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side, type: 'limit', price, quantity });
        assert.equal(placed.status, 201, JSON.stringify(placed.body));
        resting.push(placed.body.id);
      }
    }
    const seq = venue.exchange.sequencer.lastSeq;
    const rest = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/book?limit=5000');
    assert.equal(rest.status, 200);
    assert.equal(rest.body.seq, seq);
    await catchUp(client, book, seq);
    assert.deepEqual(book.sides(), { bids: rest.body.bids, asks: rest.body.asks });
    assert.ok(rest.body.bids.length > 10 && rest.body.asks.length > 10, 'the book is not trivial');
    for (const kind of ['cancel', 'amend down', 'amend up', 'amend price', 'cross']) assert.ok(kinds.has(kind), `the run had a ${kind}`);
    assert.ok(stops.some((id) => book.joined.has(id)), 'a triggered stop joined the book');
    // A subscriber arriving now starts from a snapshot of the book as it stands, partly filled and amended orders at their quantity left.
    const late = await SocketClient.connect(venue.url);
    late.send({ op: 'subscribe', channel: 'book', market: 'BTC-USDT' });
    const snapshot = await late.next((m) => m.channel === 'book' && m.type === 'snapshot');
    assert.equal(snapshot.seq, seq);
    assert.deepEqual({ bids: snapshot.bids, asks: snapshot.asks }, { bids: rest.body.bids, asks: rest.body.asks });
    late.close();
    // Each level of the aggregated depth is the sum of its orders.
    const depth = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/depth?limit=1000');
    for (const [levels, orders] of [[depth.body.bids, rest.body.bids], [depth.body.asks, rest.body.asks]] as const) {
      for (const [price, quantity, count] of levels as [string, string, number][]) {
        const at = (orders as WireOrder[]).filter((o) => o[1] === price);
        assert.equal(at.length, count, `orders at ${price}`);
        assert.equal(at.reduce((sum, o) => sum + Math.round(Number(o[2]) * 1e4), 0), Math.round(Number(quantity) * 1e4), `quantity at ${price}`);
      }
    }
    client.close();
  } finally {
    await venue.stop();
  }
});

test('orders that join one queue within one coalesced update come in queue order, and an order that loses its place is removed before it joins again', async () => {
  const venue = await Venue.start({ server: { ws: { depthIntervalMs: 300 } } });
  try {
    const trader = await venue.trader('mbo-queue@example.com', { USDT: '1000000' });
    const place = () => venue.signed(trader, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '25000.00', quantity: '0.0010' });
    const first = await place();
    const client = await SocketClient.connect(venue.url);
    client.send({ op: 'subscribe', channel: 'book', market: 'BTC-USDT' });
    const book = new LocalOrderBook();
    book.load(await client.next((m) => m.channel === 'book' && m.type === 'snapshot'));
    assert.deepEqual(book.sides().bids, [[first.body.id, '25000.000000', '0.00100000']]);
    // A quiet market's first change goes out at once: the next ones wait for the interval, together.
    await place();
    await catchUp(client, book, venue.exchange.sequencer.lastSeq);
    // Within one interval: an order joins, five more join at once, then it and the first order,
    // published long before, lose their places by growing.
    const early = await place();
    const together = await Promise.all([place(), place(), place(), place(), place()]);
    for (const grown of [early, first]) assert.equal((await venue.signed(trader, 'PATCH', `/api/v1/orders/${grown.body.id}`, { quantity: '0.0020' })).status, 200);
    // Subscribing meanwhile gives the book as the others were last sent it, and forces nothing out.
    const late = await SocketClient.connect(venue.url);
    late.send({ op: 'subscribe', channel: 'book', market: 'BTC-USDT' });
    const lateBook = new LocalOrderBook();
    lateBook.load(await late.next((m) => m.channel === 'book' && m.type === 'snapshot'));
    assert.equal(lateBook.seq, book.seq);
    assert.deepEqual(lateBook.sides(), book.sides());
    const update = await client.next((m) => m.channel === 'book' && m.type === 'update');
    assert.deepEqual(await late.next((m) => m.channel === 'book' && m.type === 'update'), update, 'the newcomer chains on with the same update');
    const ids = update.changes.map((c: Change) => c[0]);
    for (const placed of together) assert.ok(ids.includes(placed.body.id), 'every newcomer is in the one update');
    assert.deepEqual(update.changes[0], [first.body.id, 'buy', '25000.000000', '0.00000000']);
    book.apply(update);
    const rest = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/book');
    assert.deepEqual(book.sides().bids, rest.body.bids);
    assert.deepEqual(rest.body.bids.slice(-2).map((o: WireOrder) => o[0]), [early.body.id, first.body.id], 'the grown orders are last in their queue, in the order they grew');
    assert.equal(rest.body.bids.length, 8);
    // A snapshot made from what was published keeps the queue as the updates left it.
    const later = await SocketClient.connect(venue.url);
    later.send({ op: 'subscribe', channel: 'book', market: 'BTC-USDT' });
    assert.deepEqual((await later.next((m) => m.channel === 'book' && m.type === 'snapshot')).bids, rest.body.bids);
    for (const socket of [client, late, later]) socket.close();
  } finally {
    await venue.stop();
  }
});

test('GET book shows resting orders only, never whose they are, and refuses a bad limit or market', async () => {
  const venue = await Venue.start();
  try {
    const trader = await venue.trader('mbo-rest@example.com', { USDT: '1000000', BTC: '10' });
    const resting = await venue.signed(trader, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'sell', type: 'limit', price: '31000.00', quantity: '0.5000', client_order_id: 'mine-1' });
    await venue.signed(trader, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'sell', type: 'stop_market', stop_price: '20000.00', quantity: '0.1000' });
    for (let i = 0; i < 3; i++) await venue.signed(trader, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: `${29_000 - i}.00`, quantity: '0.0100' });
    const book = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/book?limit=2');
    assert.equal(book.status, 200);
    assert.deepEqual(book.body.asks, [[resting.body.id, '31000.000000', '0.50000000']], 'the waiting stop is not in the book');
    assert.deepEqual(book.body.bids.map((o: WireOrder) => o[1]), ['29000.000000', '28999.000000'], 'best first, at most the limit');
    assert.ok(!JSON.stringify(book.body).includes('mine-1') && !JSON.stringify(book.body).includes('account'), 'nothing says whose an order is');
    assert.equal((await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/book?limit=0')).status, 400);
    assert.equal((await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/book?limit=5001')).status, 400);
    assert.equal((await call(venue.url, 'GET', '/api/v1/markets/NOPE-USDT/book')).status, 404);
    const client = await SocketClient.connect(venue.url);
    client.send({ op: 'subscribe', channel: 'book', market: 'NOPE-USDT' });
    assert.equal((await client.next((m) => m.event === 'error')).error.code, 'UNKNOWN_MARKET');
    client.close();
  } finally {
    await venue.stop();
  }
});

test('a copy of the book costs request weight by its size: over REST by the limit asked, over the socket by the book; a depth subscription as GET depth; a refused one says when to try again', async () => {
  const venue = await Venue.start({ server: { ipWeightPerSecond: 300 } });
  try {
    const big = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/book?limit=5000');
    assert.equal(big.status, 200);
    const again = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/book?limit=5000');
    assert.equal(again.status, 429, 'a second copy of up to 5,000 orders a side within the second is over 300');
    assert.equal(again.body.error.code, 'RATE_LIMITED');
    assert.ok(Number(again.headers.get('retry-after')) >= 1);
  } finally {
    await venue.stop();
  }
  // Two snapshots and the upgrade fit an address's budget of a second; a third does not.
  for (const [channel, budget] of [['book', 12], ['depth', 6]] as const) {
    const small = await Venue.start({ server: { ipWeightPerSecond: budget } });
    try {
      const client = await SocketClient.connect(small.url);
      for (let i = 0; i < 2; i++) {
        client.send({ op: 'subscribe', channel, market: 'BTC-USDT' });
        await client.next((m) => m.channel === channel && m.type === 'snapshot');
      }
      client.send({ op: 'subscribe', channel, market: 'BTC-USDT' });
      const refusal = (await client.next((m) => m.event === 'error')).error;
      assert.equal(refusal.code, 'RATE_LIMITED', `${channel}: the upgrade (1) and two snapshots (5 or 2 each) leave less than a third's weight of ${budget}`);
      assert.equal(refusal.retry_after, 1, 'the socket says how long to wait, as Retry-After does');
      client.close();
    } finally {
      await small.stop();
    }
  }
  // A book of 101 orders a side weighs 25 over the socket: one subscription fits a budget of 40 beside the upgrade, a second does not.
  const deeper = await Venue.start({ server: { ipWeightPerSecond: 40 } });
  try {
    const maker = await deeper.trader('mbo-weight@example.com', { USDT: '1000000' });
    await Promise.all(Array.from({ length: 101 }, (_, i) => deeper.exchange.submit({
      type: 'place_order', account: maker.account, market: 'BTC-USDT', side: 'buy', orderType: 'limit', price: 20_000_000_000 - i * 10_000, quantity: 10_000,
    })));
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const client = await SocketClient.connect(deeper.url);
    client.send({ op: 'subscribe', channel: 'book', market: 'BTC-USDT' });
    assert.equal((await client.next((m) => m.channel === 'book' && m.type === 'snapshot')).bids.length, 101);
    client.send({ op: 'subscribe', channel: 'book', market: 'BTC-USDT' });
    assert.equal((await client.next((m) => m.event === 'error')).error.code, 'RATE_LIMITED', 'the second copy of a 101-order side (25) is over what the first left');
    client.close();
  } finally {
    await deeper.stop();
  }
});

test('a consumer that falls behind gets fresh snapshots of depth and book from what the others were sent, and its books stay whole; /metrics counts the resyncs', async () => {
  // Any buffered byte counts as behind: the second frame of a turn already finds the first unsent.
  const venue = await Venue.start({ server: { ws: { bufferSoftBytes: 1 } } });
  try {
    const maker = await venue.trader('mbo-slow-maker@example.com', { USDT: '1000000', BTC: '50' });
    const taker = await venue.trader('mbo-slow-taker@example.com', { USDT: '1000000', BTC: '50' });
    const client = await SocketClient.connect(venue.url);
    const orders = new LocalOrderBook();
    const levels = new Map<string, string>([]);
    let snapshots = 0;
    let updates = 0;
    let depthSeq = 0;
    client.socket.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.channel === 'book') {
        if (message.type === 'snapshot') { orders.load(message); snapshots += 1; } else { orders.apply(message); updates += 1; }
      } else if (message.channel === 'depth') {
        if (message.type === 'snapshot') {
          levels.clear();
          for (const [side, entries] of [['b', message.bids], ['a', message.asks]] as const) for (const [p, q] of entries) levels.set(`${side}${p}`, q);
        } else {
          assert.equal(message.prev_seq, depthSeq, 'depth updates chain');
          for (const [side, entries] of [['b', message.bids], ['a', message.asks]] as const) for (const [p, q] of entries) { if (Number(q) === 0) levels.delete(`${side}${p}`); else levels.set(`${side}${p}`, q); }
        }
        depthSeq = message.seq;
      }
    });
    client.send({ op: 'subscribe', channel: 'depth', market: 'BTC-USDT' });
    client.send({ op: 'subscribe', channel: 'book', market: 'BTC-USDT' });
    await until(() => snapshots, (n) => n === 1, 'the first book snapshot');
    const placed: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      const side = i % 2 === 0 ? 'buy' : 'sell';
      placed.push(venue.signed(maker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side, type: 'limit', price: (30_000 + (side === 'buy' ? -5 : 5) * (1 + (i % 3))).toFixed(2), quantity: '0.0010' }));
      if (i % 5 === 4) placed.push(venue.signed(taker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'market', quantity: '0.0015' }));
    }
    await Promise.all(placed);
    await venue.signed(maker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '29000.00', quantity: '0.0010' });
    const seq = venue.exchange.sequencer.lastSeq;
    await until(() => Math.min(orders.seq, depthSeq), (at) => at >= seq, 'both books at the last seq');
    const rest = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/book?limit=5000');
    assert.deepEqual(orders.sides(), { bids: rest.body.bids, asks: rest.body.asks });
    const depth = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/depth?limit=1000');
    const expected = new Map<string, string>([...depth.body.bids.map(([p, q]: string[]) => [`b${p}`, q]), ...depth.body.asks.map(([p, q]: string[]) => [`a${p}`, q])]);
    assert.deepEqual(levels, expected);
    assert.ok(snapshots > 1, `the consumer was sent fresh snapshots (${snapshots}) as well as updates (${updates})`);
    const resyncs = Number((await (await fetch(`${venue.url}/metrics`)).text()).match(/^bourse_websocket_resyncs_total (\d+)$/m)?.[1]);
    assert.ok(resyncs >= snapshots - 1, `/metrics counts the resyncs (${resyncs}) for the operator`);
    client.close();
  } finally {
    await venue.stop();
  }
});

test('books larger than the slow-consumer threshold are sent whole, one snapshot made for every request at one seq, and followed by updates, not sent again and again while they go out', async () => {
  const venue = await Venue.start({ server: { ipWeightPerSecond: 100_000, ws: { bufferSoftBytes: 64 * 1024 } } });
  try {
    const maker = await venue.trader('mbo-large@example.com', { USDT: '100000000', BTC: '50' });
    assert.equal((await venue.admin('/markets/BTC-USDT/limits', { max_open_orders: 100_000 })).status, 200);
    // 30,000 resting orders: a snapshot of about a megabyte, sixteen times the threshold.
    await Promise.all(Array.from({ length: 30_000 }, (_, i) => venue.exchange.submit({
      type: 'place_order', account: maker.account, market: 'BTC-USDT', side: 'buy', orderType: 'limit', price: 20_000_000_000 - (i % 5_000) * 1_000_000, quantity: 10_000,
    })));
    const client = await SocketClient.connect(venue.url);
    const book = new LocalOrderBook();
    let snapshots = 0;
    let updates = 0;
    let snapshotBytes = 0;
    client.socket.on('message', (data) => {
      const message = JSON.parse(data.toString());
      if (message.channel !== 'book') return;
      if (message.type === 'snapshot') { book.load(message); snapshots += 1; snapshotBytes = (data as Buffer).length; } else { book.apply(message); updates += 1; }
    });
    // The client reads nothing for a while and asks for the book six times: more than the kernel's
    // buffers take, so that snapshots wait in the server's buffer while the market moves, as one
    // would on a slow link.
    const raw = (client.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    raw.pause();
    for (let i = 0; i < 6; i++) client.send({ op: 'subscribe', channel: 'book', market: 'BTC-USDT' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (let i = 0; i < 10; i++) {
      await venue.signed(maker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'sell', type: 'limit', price: (31_000 + i).toFixed(2), quantity: '0.0010' });
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    raw.resume();
    const seq = venue.exchange.sequencer.lastSeq;
    await until(() => book.seq, (at) => at >= seq, 'the book at the last seq');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(snapshotBytes > 16 * 64 * 1024, `the snapshot's ${snapshotBytes} bytes are far over the threshold`);
    assert.equal(snapshots, 6, `the six snapshots asked for and no more (${updates} updates)`);
    const metrics = await (await fetch(`${venue.url}/metrics`)).text();
    assert.match(metrics, /^bourse_websocket_snapshots_sent_total 6$/m);
    assert.match(metrics, /^bourse_websocket_snapshots_made_total 1$/m, 'six subscriptions at one seq share one snapshot');
    assert.match(metrics, /^bourse_websocket_resyncs_total 0$/m);
    assert.ok(updates >= 1);
    assert.equal(book.sides().asks.length, 10);
    assert.equal(book.sides().bids.length, 30_000);
    client.close();
  } finally {
    await venue.stop();
  }
});

/** A depth book kept as the README tells a client to: levels replaced by price, quantity zero removes. */
class LocalDepth {
  readonly levels = { bids: new Map<string, string>(), asks: new Map<string, string>() };
  seq = 0;

  load(message: { seq: number; bids: string[][]; asks: string[][] }): void {
    for (const side of ['bids', 'asks'] as const) this.levels[side] = new Map(message[side].map(([p, q]) => [p!, q!]));
    this.seq = message.seq;
  }

  apply(message: { seq: number; prev_seq: number; bids: string[][]; asks: string[][] }): void {
    assert.equal(message.prev_seq, this.seq, 'no gap between depth messages');
    for (const side of ['bids', 'asks'] as const) {
      for (const [p, q] of message[side]) { if (Number(q) === 0) this.levels[side].delete(p!); else this.levels[side].set(p!, q!); }
    }
    this.seq = message.seq;
  }
}

test('clients that subscribe, unsubscribe, subscribe again and stop reading at random while the market moves each end with both books equal to the server\'s', async () => {
  // Any buffered byte but a snapshot's counts as behind (the second frame of a turn finds the first
  // unsent), so that clients fall behind often and are sent snapshots again.
  const venue = await Venue.start({ server: { ws: { bufferSoftBytes: 1 } } });
  try {
    const maker = await venue.trader('mbo-churn-maker@example.com', { USDT: '10000000', BTC: '500' });
    const taker = await venue.trader('mbo-churn-taker@example.com', { USDT: '10000000', BTC: '500' });
    let seed = 29;
    const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
    const problems: string[] = [];
    const clients = await Promise.all(Array.from({ length: 12 }, async (_, n) => {
      const socket = await SocketClient.connect(venue.url);
      const state = { socket, n, book: new LocalOrderBook(), depth: new LocalDepth(), active: { book: false, depth: false }, snapshots: 0 };
      socket.socket.on('message', (data) => {
        const message = JSON.parse(data.toString());
        try {
          if (message.event === 'unsubscribed') state.active[message.channel.split(':')[0] as 'book' | 'depth'] = false;
          if (message.channel !== 'book' && message.channel !== 'depth') return;
          const kind = message.channel as 'book' | 'depth';
          if (message.type === 'snapshot') {
            state.snapshots += 1;
            state.active[kind] = true;
            if (kind === 'book') state.book.load(message); else state.depth.load(message);
          } else if (state.active[kind]) {
            if (kind === 'book') state.book.apply(message); else state.depth.apply(message);
          }
        } catch (error) {
          problems.push(`client ${n}, ${message.channel} seq ${message.seq}: ${(error as Error).message}`);
        }
      });
      return state;
    }));
    const raw = (client: SocketClient) => (client.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    const churn = async (state: (typeof clients)[number]): Promise<void> => {
      for (let step = 0; step < 25; step++) {
        const roll = random();
        const kind = random() < 0.5 ? 'book' : 'depth';
        if (roll < 0.45) state.socket.send({ op: 'subscribe', channel: kind, market: 'BTC-USDT' });
        else if (roll < 0.7) state.socket.send({ op: 'unsubscribe', channel: kind, market: 'BTC-USDT' });
        else {
          raw(state.socket).pause();
          await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(random() * 80)));
          raw(state.socket).resume();
        }
        await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 60)));
      }
    };
    const resting: string[] = [];
    const flow = async (): Promise<void> => {
      for (let i = 0; i < 250; i++) {
        const roll = random();
        const side = random() < 0.5 ? 'buy' : 'sell';
        if (roll < 0.15 && resting.length > 0) {
          await venue.signed(maker, 'DELETE', `/api/v1/orders/${resting.splice(Math.floor(random() * resting.length), 1)[0]!}`);
        } else if (roll < 0.3) {
          await venue.signed(taker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side, type: 'market', quantity: '0.0020' });
        } else {
          const price = (30_000 + (side === 'buy' ? -1 : 1) * (5 + 5 * Math.floor(random() * 40))).toFixed(2);
          const placed = await venue.signed(maker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side, type: 'limit', price, quantity: (0.001 * (1 + Math.floor(random() * 4))).toFixed(4) });
          if (placed.status === 201) resting.push(placed.body.id);
        }
      }
    };
    await Promise.all([flow(), ...clients.map(churn)]);
    // Everyone reads again and follows both books to the end.
    for (const state of clients) {
      for (const kind of ['book', 'depth']) state.socket.send({ op: 'subscribe', channel: kind, market: 'BTC-USDT' });
    }
    const seq = venue.exchange.sequencer.lastSeq;
    for (const state of clients) {
      await until(() => Math.min(state.book.seq, state.depth.seq), (at) => at >= seq, `client ${state.n} at the last seq`);
    }
    assert.deepEqual(problems, []);
    const book = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/book?limit=5000');
    const depth = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/depth?limit=1000');
    assert.equal(book.body.seq, seq);
    const levels = (entries: string[][]) => new Map(entries.map(([p, q]) => [p!, q!]));
    for (const state of clients) {
      assert.deepEqual(state.book.sides(), { bids: book.body.bids, asks: book.body.asks }, `client ${state.n}'s book`);
      assert.deepEqual(state.depth.levels, { bids: levels(depth.body.bids), asks: levels(depth.body.asks) }, `client ${state.n}'s depth`);
    }
    const metrics = await (await fetch(`${venue.url}/metrics`)).text();
    const resyncs = Number(metrics.match(/^bourse_websocket_resyncs_total (\d+)$/m)?.[1]);
    const made = Number(metrics.match(/^bourse_websocket_snapshots_made_total (\d+)$/m)?.[1]);
    const sent = Number(metrics.match(/^bourse_websocket_snapshots_sent_total (\d+)$/m)?.[1]);
    assert.ok(resyncs > 0, 'some clients fell behind and were sent snapshots again');
    assert.ok(made < sent, `snapshots were shared (${made} made, ${sent} sent)`);
    for (const state of clients) state.socket.close();
  } finally {
    await venue.stop();
  }
});
