import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer } from 'ws';
import { createServer } from 'node:http';
import { AccountFeed, BookFeed, BourseApiError, compareDecimals, RestClient } from '../src/client/index.js';
import type { RequestBudget } from '../src/client/index.js';
import { call } from './support/api-client.js';
import { clientChecksum } from './support/book-checksum.js';
import { Venue } from './support/venue.js';
import { until } from './support/until.js';

test('the REST client signs requests, follows a server clock 30 s ahead after one stale answer, and raises the API\'s errors with their code', async () => {
  const venue = await Venue.start({ clock: () => Date.now() + 30_000 });
  try {
    const credentials = await venue.trader('client-rest@example.com', { USDT: '1000' });
    const client = new RestClient({ url: venue.url, credentials });
    const balances = await client.get<{ balances: { asset: string; available: string }[] }>('/api/v1/balances');
    assert.equal(balances.balances.find((b) => b.asset === 'USDT')?.available, '1000.000000');
    assert.ok(Math.abs(client.clockOffsetMs - 30_000) < 1_000, `the measured offset ${client.clockOffsetMs} ms`);
    const placed = await client.post<{ id: string; status: string }>('/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '20000.00', quantity: '0.0100' });
    assert.equal(placed.status, 'NEW');
    await assert.rejects(client.post('/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '20000.001', quantity: '0.0100' }),
      (error: unknown) => error instanceof BourseApiError && error.status === 400 && error.code === 'TICK_SIZE');
    await assert.rejects(new RestClient({ url: venue.url }).get('/api/v1/balances'), (error: unknown) => error instanceof BourseApiError && error.status === 401);
    assert.equal((await client.delete<{ status: string }>(`/api/v1/orders/${placed.id}`)).status, 'CANCELLED');
  } finally {
    await venue.stop();
  }
});

test('book feeds by level and by order follow a busy market, match GET depth and GET book, and after the server drops their sockets reconnect and start again from a snapshot', async () => {
  const venue = await Venue.start();
  const depth = new BookFeed({ url: venue.url, market: 'BTC-USDT', kind: 'depth', reconnectMs: 50, maxReconnectMs: 200 });
  const book = new BookFeed({ url: venue.url, market: 'BTC-USDT', kind: 'book', reconnectMs: 50, maxReconnectMs: 200 });
  try {
    const maker = await venue.trader('client-maker@example.com', { USDT: '1000000', BTC: '50' });
    const taker = await venue.trader('client-taker@example.com', { USDT: '1000000', BTC: '50' });
    await until(() => depth.ready && book.ready, (ready) => ready, 'both feeds ready');
    const flurry = async (round: number) => {
      for (let i = 0; i < 30; i++) {
        const side = i % 2 === 0 ? 'buy' : 'sell';
        const price = (30_000 + (side === 'buy' ? -1 : 1) * (5 + (i % 4) * 5)).toFixed(2);
        await venue.signed(maker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side, type: 'limit', price, quantity: '0.0020' });
        if (i % 7 === round % 7) await venue.signed(taker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: side === 'buy' ? 'sell' : 'buy', type: 'market', quantity: '0.0030' });
      }
    };
    const matches = async () => {
      // A resting order last, so that both books change at the last seq.
      await venue.signed(maker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '29000.00', quantity: '0.0010' });
      const seq = venue.exchange.sequencer.lastSeq;
      await until(() => Math.min(depth.seq, book.seq), (at) => at >= seq, 'the feeds at the last seq');
      const levels = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/depth?limit=1000');
      const orders = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/book?limit=5000');
      assert.deepEqual({ bids: depth.bids(), asks: depth.asks() }, { bids: levels.body.bids.map(([p, q]: string[]) => [p, q]), asks: levels.body.asks.map(([p, q]: string[]) => [p, q]) });
      assert.deepEqual({ bids: book.bids(), asks: book.asks() }, { bids: orders.body.bids, asks: orders.body.asks });
    };
    await flurry(1);
    await matches();
    assert.equal(depth.resyncs + book.resyncs, 0, 'no gap and no checksum failure');

    // The operator blocks the address: the server closes the sockets. Once lifted, the feeds are back.
    assert.equal((await venue.admin('/blocks', { cidr: '127.0.0.1', reason: 'a test of reconnecting' })).status, 201);
    await until(() => depth.ready || book.ready, (either) => !either, 'both feeds lost');
    assert.equal((await venue.admin('/blocks?cidr=127.0.0.1', undefined, 'DELETE')).status, 200);
    await until(() => depth.ready && book.ready, (ready) => ready, 'both feeds back');
    assert.ok(depth.resyncs >= 1 && book.resyncs >= 1);
    await flurry(2);
    await matches();
  } finally {
    depth.close();
    book.close();
    await venue.stop();
  }
});

test('an account feed keeps the open orders and balances the REST API shows, through placements, fills and cancels, places and cancels orders itself, and after its socket is dropped starts again from fresh snapshots', async () => {
  const venue = await Venue.start();
  const credentials = await venue.trader('client-account@example.com', { USDT: '100000', BTC: '1' });
  const other = await venue.trader('client-other@example.com', { USDT: '100000', BTC: '1' });
  const feed = new AccountFeed({ url: venue.url, credentials, reconnectMs: 50, maxReconnectMs: 200 });
  const fills: unknown[] = [];
  feed.on('fill', (fill) => fills.push(fill));
  try {
    const api = new RestClient({ url: venue.url, credentials });
    await until(() => feed.ready, (ready) => ready, 'the feed ready');
    assert.equal(feed.account, credentials.account);
    const resting = await api.post<{ id: string }>('/api/v1/orders', { market: 'BTC-USDT', side: 'sell', type: 'limit', price: '31000.00', quantity: '0.5000' });
    const gone = await api.post<{ id: string }>('/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '20000.00', quantity: '0.1000' });
    await api.delete(`/api/v1/orders/${gone.id}`);
    await new RestClient({ url: venue.url, credentials: other }).post('/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'market', quantity: '0.2000' });
    const agrees = async (): Promise<boolean> => {
      const open = await api.get<{ orders: { id: string; remaining_quantity: string }[] }>('/api/v1/orders');
      const balances = await api.get<{ balances: { asset: string; available: string; reserved: string }[] }>('/api/v1/balances');
      const mine = feed.orders();
      return open.orders.length === mine.size && open.orders.every((o) => mine.get(o.id)?.remaining_quantity === o.remaining_quantity)
        && balances.balances.every((b) => feed.balances().get(b.asset)?.available === b.available && feed.balances().get(b.asset)?.reserved === b.reserved);
    };
    await until(agrees, (same) => same, 'the feed agreeing with REST');
    assert.deepEqual([...feed.orders().keys()], [resting.id], 'the cancelled order left, the partly filled one stays');
    assert.equal(feed.orders().get(resting.id)!.remaining_quantity, '0.30000000');
    assert.equal(fills.length, 1);

    // Order entry over the same socket: answers matched to requests, refusals with the REST codes.
    const placed = await feed.place({ market: 'BTC-USDT', side: 'buy', type: 'limit', price: '21000.00', quantity: '0.0100', client_order_id: 'grid-1' });
    assert.equal(placed.status, 'NEW');
    await until(() => feed.orders().has(placed.id!), (has) => has, 'the placed order in the feed');
    assert.equal((await feed.cancel({ clientOrderId: 'grid-1' })).status, 'CANCELLED');
    await assert.rejects(feed.place({ market: 'BTC-USDT', side: 'buy', type: 'limit', price: '21000.001', quantity: '0.0100' }),
      (error: unknown) => error instanceof BourseApiError && error.code === 'TICK_SIZE' && error.status === 0);
    await assert.rejects(feed.cancel({ orderId: '999999' }), (error: unknown) => error instanceof BourseApiError && error.code === 'UNKNOWN_ORDER');
    await until(agrees, (same) => same, 'the feed agreeing with REST after its own orders');

    // Dropped while the operator credits the account: the fresh snapshots after the reconnect have it.
    const before = feed.balances().get('USDT')!.available as string;
    assert.equal((await venue.admin('/blocks', { cidr: '127.0.0.1', reason: 'a test of reconnecting' })).status, 201);
    await until(() => feed.ready, (ready) => !ready, 'the feed lost');
    assert.equal((await venue.admin('/deposits', { email: 'client-account@example.com', asset: 'USDT', amount: '5' })).status, 201);
    assert.equal((await venue.admin('/blocks?cidr=127.0.0.1', undefined, 'DELETE')).status, 200);
    await until(() => feed.ready, (ready) => ready, 'the feed back');
    assert.equal(BigInt((feed.balances().get('USDT')!.available as string).replace('.', '')) - BigInt(before.replace('.', '')), 5_000_000n, 'the 5 USDT credited while away');
    assert.ok(await agrees());
  } finally {
    feed.close();
    await venue.stop();
  }
});

test('a book feed that meets a gap or a checksum it cannot reproduce drops its book and subscribes again', async () => {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  const asked: string[] = [];
  let snapshots = 0;
  server.on('connection', (socket) => {
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { op: string };
      asked.push(message.op);
      if (message.op !== 'subscribe') return;
      snapshots += 1;
      const bids = [['100.00', '1.0']];
      socket.send(JSON.stringify({ channel: 'depth', type: 'snapshot', market: 'X-Y', seq: 10 * snapshots, prev_seq: 10 * snapshots, bids, asks: [], checksum: clientChecksum(bids, []) }));
      if (snapshots === 1) {
        // A checksum the book the update leaves cannot have.
        socket.send(JSON.stringify({ channel: 'depth', type: 'update', market: 'X-Y', seq: 11, prev_seq: 10, bids: [['99.00', '2.0']], asks: [], checksum: 12345 }));
      } else if (snapshots === 2) {
        // An update that does not follow the one before.
        socket.send(JSON.stringify({ channel: 'depth', type: 'update', market: 'X-Y', seq: 25, prev_seq: 21, bids: [], asks: [], checksum: 0 }));
      }
    });
  });
  await new Promise((resolve) => server.once('listening', resolve));
  const feed = new BookFeed({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, market: 'X-Y' });
  const reasons: string[] = [];
  feed.on('resync', (reason: string) => reasons.push(reason));
  try {
    await until(() => snapshots, (n) => n === 3, 'the third snapshot');
    await until(() => feed.ready, (ready) => ready, 'ready on the third');
    assert.match(reasons[0]!, /checksum differs at seq 11/);
    assert.match(reasons[1]!, /gap: update after 21, the book is at 20/);
    assert.deepEqual(asked, ['subscribe', 'unsubscribe', 'subscribe', 'unsubscribe', 'subscribe']);
    assert.deepEqual(feed.bids(), [['100.00', '1.0']]);
    assert.equal(feed.seq, 30);
  } finally {
    feed.close();
    server.close();
  }
});

test('prices are ordered as decimals, exactly, however many digits they have', () => {
  const prices = ['10.5', '9.99', '100.000000000000000001', '100', '0.00000001', '100.000000000000000002'];
  assert.deepEqual([...prices].sort(compareDecimals), ['0.00000001', '9.99', '10.5', '100', '100.000000000000000001', '100.000000000000000002']);
});

test('an order placed over the account feed whose answer never comes, because the connection drops, is refused DISCONNECTED rather than left hanging', async () => {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  server.on('connection', (socket) => {
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { op: string; channel?: string };
      if (message.op === 'auth') socket.send(JSON.stringify({ event: 'authenticated', account: 7, permissions: ['read', 'trade'] }));
      if (message.op === 'subscribe' && message.channel === 'orders') socket.send(JSON.stringify({ channel: 'orders', type: 'snapshot', seq: 1, orders: [], complete: true }));
      if (message.op === 'subscribe' && message.channel === 'balances') socket.send(JSON.stringify({ channel: 'balances', type: 'snapshot', seq: 1, balances: [] }));
      // A placement reaches the server, which goes away before answering.
      if (message.op === 'place') socket.terminate();
    });
  });
  await new Promise((resolve) => server.once('listening', resolve));
  const feed = new AccountFeed({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, credentials: { key: 'k', secret: 's' }, reconnectMs: 1_000 });
  try {
    await until(() => feed.ready, (ready) => ready, 'signed in');
    await assert.rejects(feed.place({ market: 'X-Y', side: 'buy', type: 'limit', price: '1', quantity: '1' }),
      (error: unknown) => error instanceof BourseApiError && error.code === 'DISCONNECTED');
    await assert.rejects(feed.place({ market: 'X-Y', side: 'buy', type: 'limit', price: '1', quantity: '1' }),
      (error: unknown) => error instanceof BourseApiError && error.code === 'NOT_READY', 'until it is signed in again');
  } finally {
    feed.close();
    server.close();
  }
});

test('an account feed whose key is revoked, or whose secret is wrong, stops at the refusal instead of signing in again and again', async () => {
  const venue = await Venue.start();
  const credentials = await venue.trader('client-revoked@example.com', { USDT: '10' });
  const revoked = new AccountFeed({ url: venue.url, credentials, reconnectMs: 20, maxReconnectMs: 40 });
  const wrong = new AccountFeed({ url: venue.url, credentials: { key: credentials.key, secret: 'not the secret' }, reconnectMs: 20, maxReconnectMs: 40 });
  const refusals: { feed: string; code: string }[] = [];
  revoked.on('server-error', (error: { code: string }) => refusals.push({ feed: 'revoked', code: error.code }));
  wrong.on('server-error', (error: { code: string }) => refusals.push({ feed: 'wrong', code: error.code }));
  try {
    await until(() => wrong.refusal, (refusal) => refusal !== null, 'the wrong secret refused');
    assert.equal(wrong.refusal!.code, 'INVALID_SIGNATURE');
    await until(() => revoked.ready, (ready) => ready, 'the right secret signed in');
    assert.equal((await venue.admin(`/apikeys/${credentials.key}?email=client-revoked@example.com`, undefined, 'DELETE')).status, 200);
    const refused = (await until(() => revoked.refusal, (refusal) => refusal !== null, 'the revoked key refused'))!;
    assert.equal(refused.code, 'INVALID_KEY');
    await assert.rejects(revoked.place({ market: 'BTC-USDT', side: 'buy', type: 'limit', price: '20000.00', quantity: '0.0100' }), (error: unknown) => error === refused);
    // Twenty reconnect pauses later, neither feed has tried again.
    await new Promise((resolve) => setTimeout(resolve, 800));
    assert.deepEqual(refusals, [{ feed: 'wrong', code: 'INVALID_SIGNATURE' }, { feed: 'revoked', code: 'INVALID_KEY' }]);
    // A single wrong signature did not lock the address out: the REST API still answers it.
    const other = await venue.trader('client-revoked-2@example.com', { USDT: '10' });
    assert.equal((await venue.signed(other, 'GET', '/api/v1/balances')).status, 200);
  } finally {
    revoked.close();
    wrong.close();
    await venue.stop();
  }
});

test('an account feed locked out at sign-in waits the retry_after the server gives before signing in again', async () => {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  const signIns: number[] = [];
  server.on('connection', (socket) => {
    socket.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { op: string; id?: number; channel?: string };
      if (message.op === 'auth') {
        signIns.push(performance.now());
        if (signIns.length === 1) return socket.send(JSON.stringify({ event: 'error', id: message.id, error: { code: 'LOCKED_OUT', message: 'too many invalid signatures; try later', retry_after: 1 } }));
        socket.send(JSON.stringify({ event: 'authenticated', account: 7, permissions: ['read'] }));
      }
      if (message.op === 'subscribe' && message.channel === 'orders') socket.send(JSON.stringify({ channel: 'orders', type: 'snapshot', seq: 1, orders: [], complete: true }));
      if (message.op === 'subscribe' && message.channel === 'balances') socket.send(JSON.stringify({ channel: 'balances', type: 'snapshot', seq: 1, balances: [] }));
    });
  });
  await new Promise((resolve) => server.once('listening', resolve));
  const feed = new AccountFeed({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, credentials: { key: 'k', secret: 's' }, reconnectMs: 10 });
  try {
    await until(() => feed.ready, (ready) => ready, 'signed in at the second try');
    assert.equal(signIns.length, 2);
    assert.ok(signIns[1]! - signIns[0]! >= 990, `the second sign-in came ${Math.round(signIns[1]! - signIns[0]!)} ms after the lockout`);
    assert.equal(feed.refusal, null);
  } finally {
    feed.close();
    server.close();
  }
});

test('an account feed on a machine whose clock is 30 s behind the server\'s measures the offset after one stale sign-in and signs in', async () => {
  const venue = await Venue.start({ clock: () => Date.now() + 30_000 });
  const credentials = await venue.trader('client-clock@example.com', { USDT: '10' });
  const feed = new AccountFeed({ url: venue.url, credentials, reconnectMs: 20 });
  const refusals: string[] = [];
  feed.on('server-error', (error: { code: string }) => refusals.push(error.code));
  try {
    await until(() => feed.ready, (ready) => ready, 'signed in');
    assert.deepEqual(refusals, ['STALE_REQUEST']);
    assert.ok(Math.abs(feed.clockOffsetMs - 30_000) < 1_000, `the measured offset ${feed.clockOffsetMs} ms`);
    assert.equal(feed.balances().get('USDT')?.available, '10.000000');
  } finally {
    feed.close();
    await venue.stop();
  }
});

test('a book feed for a market the venue does not have stops at the refusal instead of asking every second', async () => {
  const venue = await Venue.start();
  const feed = new BookFeed({ url: venue.url, market: 'NOPE-USDT', reconnectMs: 20 });
  const errors: string[] = [];
  feed.on('server-error', (error: { code: string }) => errors.push(error.code));
  try {
    const refusals: BourseApiError[] = [];
    feed.on('refused', (refusal: BourseApiError) => refusals.push(refusal));
    const refused = await until(() => feed.refusal, (refusal) => refusal !== null, 'the refusal');
    assert.equal(refused!.code, 'UNKNOWN_MARKET');
    assert.deepEqual(refusals, [refused]);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    assert.deepEqual(errors, ['UNKNOWN_MARKET'], 'asked once');
  } finally {
    feed.close();
    await venue.stop();
  }
});

test('a REST client knows its budget from each answer, sends a request refused 429 again after its Retry-After when told to wait, and raises it when not', async () => {
  // A copy of up to 5,000 orders a side weighs 250: two within a second are over this budget.
  const venue = await Venue.start({ server: { ipWeightPerSecond: 300 } });
  try {
    const patient = new RestClient({ url: venue.url, waitOnRefusalSeconds: 2 });
    const budget = (): RequestBudget | null => patient.budget;
    assert.equal(budget(), null, 'nothing known before the first answer');
    const started = performance.now();
    await patient.get('/api/v1/markets/BTC-USDT/book?limit=5000');
    assert.equal(budget()?.perSecond, 300);
    assert.ok(budget()!.remaining <= 50, `the answer says the copy spent 250 of 300: ${JSON.stringify(budget())}`);
    const second = await patient.get<{ seq: number }>('/api/v1/markets/BTC-USDT/book?limit=5000');
    assert.equal(typeof second.seq, 'number');
    assert.ok(performance.now() - started >= 900, 'the second waited for the budget to refill');
    await assert.rejects(new RestClient({ url: venue.url }).get('/api/v1/markets/BTC-USDT/book?limit=5000'),
      (error: unknown) => error instanceof BourseApiError && error.status === 429 && error.code === 'RATE_LIMITED' && error.retryAfterSeconds! >= 1);
  } finally {
    await venue.stop();
  }
});

test('a feed whose socket is refused at the upgrade (here, a banned address) waits the refusal\'s Retry-After before it tries again, instead of its short reconnect pause', async () => {
  const venue = await Venue.start({ server: { ipWeightPerSecond: 20, rateBans: { ignoredRefusalsBeforeBan: 10, graceMs: 100, banMs: 3_000 }, rateBanExempt: [] } });
  const errors: { at: number; error: BourseApiError }[] = [];
  let feed: BookFeed | undefined;
  try {
    let code = '';
    for (let i = 0; i < 5_000 && code !== 'BANNED'; i++) code = (await call(venue.url, 'GET', '/api/v1/time')).body.error?.code ?? '';
    assert.equal(code, 'BANNED', 'this address is banned for 3 s');
    const started = Date.now();
    feed = new BookFeed({ url: venue.url, market: 'BTC-USDT', kind: 'depth', reconnectMs: 20, maxReconnectMs: 100 });
    feed.on('connection-error', (error: BourseApiError) => errors.push({ at: Date.now() - started, error }));
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(errors.length, 1, `one attempt in 1.5 s, not one every 20-100 ms: ${JSON.stringify(errors)}`);
    assert.ok(errors[0]!.error instanceof BourseApiError);
    assert.deepEqual([errors[0]!.error.status, errors[0]!.error.code], [429, 'BANNED']);
    assert.ok(errors[0]!.error.retryAfterSeconds! >= 2);
    await until(() => feed!.ready, (ready) => ready, 'the feed, once the ban is over');
    assert.ok(Date.now() - started >= 2_000, 'not before the Retry-After');
  } finally {
    feed?.close();
    await venue.stop();
  }
});

test('an error page that is not the API\'s JSON (a proxy\'s 502) raises a BourseApiError with its status, for the REST client and for a refused socket alike', async () => {
  const proxy = createServer((_request, response) => {
    response.writeHead(502, { 'content-type': 'text/html', 'retry-after': '3' });
    response.end('<html><body>Bad Gateway</body></html>');
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
  const feed = new BookFeed({ url, market: 'BTC-USDT', reconnectMs: 20 });
  try {
    await assert.rejects(new RestClient({ url }).get('/api/v1/time'),
      (error: unknown) => error instanceof BourseApiError && error.status === 502 && error.code === 'HTTP_ERROR' && error.retryAfterSeconds === 3);
    const refused = await new Promise<BourseApiError>((resolve) => feed.once('connection-error', resolve));
    assert.ok(refused instanceof BourseApiError);
    assert.deepEqual([refused.status, refused.code, refused.retryAfterSeconds], [502, 'HTTP_ERROR', 3]);
  } finally {
    feed.close();
    await new Promise((resolve) => proxy.close(resolve));
  }
});
