import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { call } from './support/api-client.js';
import { Venue } from './support/venue.js';
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { SocketClient, tryConnect } from './support/ws-client.js';
import { until } from './support/until.js';

test('over the request-weight limit: 429 with Retry-After, for keys and for IPs', async () => {
  const venue = await Venue.start({ server: { keyWeightPerSecond: 20, ipWeightPerSecond: 1_000 } });
  try {
    const trader = await venue.trader('rate@example.com', {});
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 30; i++) {
      const response = await venue.signed(trader, 'GET', '/api/v1/balances');
      statuses.push(response.status);
      if (response.status === 429) retryAfter = response.headers.get('retry-after');
    }
    assert.ok(statuses.slice(0, 9).every((s) => s === 200), `first requests pass: ${statuses}`);
    assert.ok(statuses.includes(429), `the limit bites: ${statuses}`);
    assert.ok(retryAfter !== null && Number(retryAfter) >= 1);
  } finally {
    await venue.stop();
  }
  const byIp = await Venue.start({ server: { ipWeightPerSecond: 10 } });
  try {
    const statuses = await Promise.all(Array.from({ length: 20 }, () => call(byIp.url, 'GET', '/api/v1/time').then((r) => r.status)));
    assert.ok(statuses.includes(429), `public routes are limited per IP: ${statuses}`);
  } finally {
    await byIp.stop();
  }
  // Requests that fail count too: unsigned, malformed or for no route, they draw on the address's budget first.
  for (const path of ['/api/v1/balances', '/api/v1/markets/BTC-USDT/candles?interval=7m', '/api/v1/nowhere']) {
    const failing = await Venue.start({ server: { ipWeightPerSecond: 10 } });
    try {
      const answers = await Promise.all(Array.from({ length: 20 }, () => call(failing.url, 'GET', path)));
      const codes = new Set(answers.map((r) => r.body.error?.code));
      assert.ok(codes.has('RATE_LIMITED'), `${path}: ${[...codes]}`);
      assert.ok(answers.filter((r) => r.status === 429).every((r) => Number(r.headers.get('retry-after')) >= 1));
      assert.ok(answers.filter((r) => r.status !== 429).length <= 10, `${path}: at most the budget gets through`);
    } finally {
      await failing.stop();
    }
  }
  // Weights: the budget counts weight, not requests (the open-orders listing weighs 5).
  const weighted = await Venue.start({ server: { keyWeightPerSecond: 12, ipWeightPerSecond: 1_000 } });
  try {
    const trader = await weighted.trader('weights@example.com', {});
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await weighted.signed(trader, 'GET', '/api/v1/orders')).status);
    assert.deepEqual(statuses.slice(0, 2), [200, 200]);
    assert.ok(statuses.slice(2).includes(429), `a third request of weight 5 does not fit in 12: ${statuses}`);
  } finally {
    await weighted.stop();
  }
});

test('repeated bad signatures lock the key and the address out for a while', async () => {
  const venue = await Venue.start({ auth: { failuresBeforeLockout: 5, lockoutMs: 60_000 } });
  try {
    const trader = await venue.trader('lock@example.com', {});
    for (let i = 0; i < 5; i++) {
      const bad = await call(venue.url, 'GET', '/api/v1/balances', { credentials: { key: trader.key, secret: 'wrong' } });
      assert.equal(bad.body.error.code, 'INVALID_SIGNATURE');
    }
    const locked = await venue.signed(trader, 'GET', '/api/v1/balances');
    assert.equal(locked.status, 429);
    assert.equal(locked.body.error.code, 'LOCKED_OUT');
    assert.ok(Number(locked.headers.get('retry-after')) > 0);
  } finally {
    await venue.stop();
  }
});

test('an Ed25519 key signs the same string, its signature is refused when replayed, and a revoked key stops working at once', async () => {
  const venue = await Venue.start();
  try {
    const trader = await venue.trader('ed@example.com', { USDT: '100' });
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const user = venue.exchange.identity.userByEmail('ed@example.com')!;
    const registered = await venue.admin('/apikeys', { email: 'ed@example.com', permissions: ['read'], public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    assert.equal(registered.body.secret, undefined, 'nothing secret is issued for an Ed25519 key');
    const record = { key: registered.body.key as string };
    const notEd = await venue.admin('/apikeys', { email: 'ed@example.com', permissions: ['read'], public_key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    assert.equal(notEd.body.error.code, 'INVALID_PUBLIC_KEY');
    const signEd = (payload: string) => sign(null, Buffer.from(payload), privateKey).toString('hex');
    const ok = await call(venue.url, 'GET', '/api/v1/balances', { credentials: { key: record.key, secret: '' }, sign: signEd });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.balances[0].available, '100.000000');
    const forged = await call(venue.url, 'GET', '/api/v1/balances', { credentials: { key: record.key, secret: 'x' } });
    assert.equal(forged.status, 401);
    // An Ed25519 signature (128 hex digits) is remembered like an HMAC one: the same request again is a replay.
    const timestamp = String(Date.now());
    const headers = { 'x-bourse-key': record.key, 'x-bourse-timestamp': timestamp, 'x-bourse-signature': signEd(`${timestamp}GET/api/v1/balances`) };
    assert.equal((await call(venue.url, 'GET', '/api/v1/balances', { headers })).status, 200);
    const replayed = await call(venue.url, 'GET', '/api/v1/balances', { headers: { ...headers, 'x-bourse-signature': headers['x-bourse-signature'].toUpperCase() } });
    assert.equal(replayed.status, 401);
    assert.equal(replayed.body.error.code, 'REPLAYED_REQUEST');

    assert.equal(venue.exchange.revokeApiKey(user.id, trader.key), true);
    const revoked = await venue.signed(trader, 'GET', '/api/v1/balances');
    assert.equal(revoked.status, 401);
    assert.equal(revoked.body.error.code, 'INVALID_KEY');
  } finally {
    await venue.stop();
  }
});

test('a withdraw key needs an IP allow-list, and allow-list entries must be addresses or CIDR blocks', async () => {
  const venue = await Venue.start();
  try {
    await venue.admin('/users', { email: 'w@example.com', password: 'correct horse battery' });
    const unbound = await venue.admin('/apikeys', { email: 'w@example.com', permissions: ['read', 'withdraw'] });
    assert.equal(unbound.status, 400);
    assert.equal(unbound.body.error.code, 'IP_ALLOW_LIST_REQUIRED');
    const bad = await venue.admin('/apikeys', { email: 'w@example.com', permissions: ['read'], ip: ['10.0.0.0/99x'] });
    assert.equal(bad.body.error.code, 'INVALID_IP');
    const bound = await venue.admin('/apikeys', { email: 'w@example.com', permissions: ['read', 'withdraw'], ip: ['127.0.0.1', '::1', '10.0.0.0/8'] });
    assert.equal(bound.status, 201);
    assert.equal((await venue.signed(bound.body, 'GET', '/api/v1/balances')).status, 200);
  } finally {
    await venue.stop();
  }
});

test('permission matrix: every private route against read-only, trade-only and read+trade keys', async () => {
  const venue = await Venue.start();
  try {
    const owner = await venue.trader('matrix@example.com', { USDT: '10000' });
    const readOnly = await venue.admin('/apikeys', { email: 'matrix@example.com', permissions: ['read'] });
    const tradeOnly = await venue.admin('/apikeys', { email: 'matrix@example.com', permissions: ['trade'] });
    const order = await venue.signed(owner, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '100.00', quantity: '0.0100' });
    const routes: [string, string, unknown, 'read' | 'trade'][] = [
      ['GET', '/api/v1/account', undefined, 'read'],
      ['GET', '/api/v1/balances', undefined, 'read'],
      ['GET', '/api/v1/orders', undefined, 'read'],
      ['GET', `/api/v1/orders/${order.body.id}`, undefined, 'read'],
      ['GET', '/api/v1/trades', undefined, 'read'],
      ['GET', '/api/v1/ledger', undefined, 'read'],
      ['POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '100.00', quantity: '0.0100' }, 'trade'],
      ['PATCH', `/api/v1/orders/${order.body.id}`, { quantity: '0.0200' }, 'trade'],
      ['DELETE', '/api/v1/orders?market=ETH-USDT', undefined, 'trade'],
    ];
    for (const [method, path, body, needs] of routes) {
      for (const [name, key] of [['read', readOnly.body], ['trade', tradeOnly.body]] as const) {
        const response = await venue.signed(key, method, path, body);
        if (name === needs) assert.ok(response.status < 300, `${name} key may ${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
        else assert.equal(response.status, 403, `${name} key may not ${method} ${path}`);
      }
    }
  } finally {
    await venue.stop();
  }
});

/** Sends `text` on a raw connection and resolves with what the server answers before it closes. */
function trickle(url: string, text: string): Promise<{ answer: string; afterMs: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect({ host: hostname, port: Number(port) }, () => socket.write(text));
    let answer = '';
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString(); });
    socket.on('close', () => resolve({ answer, afterMs: performance.now() - started }));
    socket.on('error', reject);
    socket.setTimeout(8_000, () => socket.destroy()); // a server that never cuts it off fails the test, not hangs it
  });
}

test('a request that trickles in, or a connection that sends nothing, is cut off with 408 once the request timeout has passed', async () => {
  const venue = await Venue.start({ server: { requestTimeoutMs: 600 } });
  try {
    const body = await trickle(venue.url, 'POST /api/v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mar');
    assert.match(body.answer, /^HTTP\/1\.1 408/);
    assert.ok(body.afterMs >= 500 && body.afterMs < 5_000, `cut off after ${body.afterMs} ms`);
    const headers = await trickle(venue.url, 'GET /api/v1/time HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    assert.match(headers.answer, /^HTTP\/1\.1 408/);
    assert.ok(headers.afterMs < 5_000);
    const silent = await trickle(venue.url, '');
    assert.match(silent.answer, /^HTTP\/1\.1 408/, 'a connection that never sends a byte is not held for ever');
    assert.ok(silent.afterMs >= 500 && silent.afterMs < 5_000, `cut off after ${silent.afterMs} ms`);
    assert.equal((await call(venue.url, 'GET', '/api/v1/time')).status, 200, 'prompt requests are served as ever');
  } finally {
    await venue.stop();
  }
});

/** Raw connections to the venue, held open until closed; `send` writes and resolves with all it got back once the server closes. */
function rawConnection(url: string) {
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1'); });
  socket.on('error', () => undefined);
  socket.setTimeout(8_000, () => socket.destroy()); // a server that never closes it fails the test, not hangs it
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(received)));
  const connected = new Promise((resolve) => socket.once('connect', resolve));
  return { socket, connected, closed, send: async (text: string) => { await connected; socket.write(text); return closed; } };
}

/** Resolves once the venue holds exactly n connections. */
async function connectionsReach(venue: Venue, n: number): Promise<void> {
  const count = () => new Promise<number>((resolve, reject) => venue.app.server.getConnections((error, c) => (error ? reject(error) : resolve(c))));
  for (const deadline = Date.now() + 5_000; Date.now() < deadline;) {
    if (await count() === n) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`the venue holds ${await count()} connections, not ${n}`);
}

test('an address holds a bounded number of connections: over the cap a request gets 429 TOO_MANY_CONNECTIONS and is not carried out, a silent one is closed, a socket upgrade is refused; a freed slot serves again', async () => {
  const venue = await Venue.start({ server: { connectionsPerAddress: 3 } });
  try {
    const trader = await venue.trader('capped@example.com', { USDT: '100000' });
    const signedOrder = (clientOrderId: string): string => {
      const body = JSON.stringify({ market: 'BTC-USDT', side: 'buy', type: 'limit', price: '30000.00', quantity: '0.0100', client_order_id: clientOrderId });
      const timestamp = String(Date.now());
      const signature = createHmac('sha256', trader.secret).update(`${timestamp}POST/api/v1/orders${body}`).digest('hex');
      return `POST /api/v1/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n`
        + `x-bourse-key: ${trader.key}\r\nx-bourse-timestamp: ${timestamp}\r\nx-bourse-signature: ${signature}\r\n\r\n${body}`;
    };
    venue.app.server.closeIdleConnections(); // the setup's kept-alive connections
    await connectionsReach(venue, 0);
    const held = [rawConnection(venue.url), rawConnection(venue.url), rawConnection(venue.url)];
    await connectionsReach(venue, 3);

    const over = await rawConnection(venue.url).send(signedOrder('over-the-cap'));
    assert.match(over, /^HTTP\/1\.1 429 /);
    assert.match(over, /\r\nconnection: close\r\n/i);
    assert.equal(JSON.parse(over.slice(over.indexOf('\r\n\r\n') + 4)).error.code, 'TOO_MANY_CONNECTIONS');
    const started = Date.now();
    const silentOver = await rawConnection(venue.url).closed;
    assert.equal(silentOver, '');
    assert.ok(Date.now() - started < 4_000, `a silent connection over the cap was held ${Date.now() - started} ms`);
    const upgrade = await rawConnection(venue.url).send('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    assert.match(upgrade, /^HTTP\/1\.1 429 [^]*TOO_MANY_CONNECTIONS/);

    held[0]!.socket.destroy();
    await connectionsReach(venue, 2);
    const placed = await rawConnection(venue.url).send(signedOrder('in-a-freed-slot'));
    assert.match(placed, /^HTTP\/1\.1 201 /);
    for (const connection of held) connection.socket.destroy();
    await connectionsReach(venue, 0);
    const refused = await venue.signed(trader, 'GET', '/api/v1/orders?client_order_id=over-the-cap');
    assert.deepEqual(refused.body.orders, [], 'the order refused at the door was not placed');
    assert.equal((await venue.signed(trader, 'GET', '/api/v1/orders?client_order_id=in-a-freed-slot')).body.orders.length, 1);
  } finally {
    await venue.stop();
  }
});

test('a request that arrives while the server stops gets 503 UNAVAILABLE in this API\'s format and closes its connection', async () => {
  const venue = await Venue.start();
  try {
    const connection = rawConnection(venue.url);
    await connection.connected;
    // A request still coming in keeps its connection busy, so the stop neither closes it nor
    // finishes before it: the next request on it arrives while the server stops.
    connection.socket.write('POST /api/v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{');
    await new Promise((r) => setTimeout(r, 100));
    const stopped = venue.app.close();
    await new Promise((r) => setTimeout(r, 100));
    connection.socket.write('}GET /api/v1/time HTTP/1.1\r\nHost: x\r\n\r\n');
    const answers = (await connection.closed).split(/(?=HTTP\/1\.1 )/);
    await stopped;
    assert.equal(answers.length, 2, answers.join('|'));
    assert.match(answers[0]!, /^HTTP\/1\.1 401 /, 'the request taken before the stop is answered as ever');
    assert.match(answers[1]!, /^HTTP\/1\.1 503 /);
    assert.match(answers[1]!, /\r\nconnection: close\r\n/i);
    assert.match(answers[1]!, /\r\nretry-after: 1\r\n/i);
    assert.equal(JSON.parse(answers[1]!.slice(answers[1]!.indexOf('\r\n\r\n') + 4)).error.code, 'UNAVAILABLE');
  } finally {
    venue.exchange.close();
    rmSync(venue.dataDir, { recursive: true, force: true });
  }
});

test('connections from a trusted reverse proxy are not capped: it carries many clients', async () => {
  const venue = await Venue.start({ server: { connectionsPerAddress: 2, trustProxy: ['127.0.0.1'] } });
  try {
    venue.app.server.closeIdleConnections();
    await connectionsReach(venue, 0);
    const held = Array.from({ length: 4 }, () => rawConnection(venue.url));
    await connectionsReach(venue, 4);
    const answer = await rawConnection(venue.url).send('GET /api/v1/time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 200 /);
    await new Promise((r) => setTimeout(r, 1_500));
    await connectionsReach(venue, 4); // none of the held ones was closed as over a cap
    for (const connection of held) connection.socket.destroy();
  } finally {
    await venue.stop();
  }
});

test('behind a trusted proxy, budgets, allow-lists and socket caps see the client from X-Forwarded-For; otherwise the header is ignored', async () => {
  const forwarded = (ip: string) => ({ 'x-forwarded-for': ip });
  const proxied = await Venue.start({ server: { trustProxy: ['127.0.0.1'], ipWeightPerSecond: 10, ws: { socketsPerAddress: 1 } } });
  try {
    const fenced = await proxied.trader('proxied@example.com', {}, ['read'], ['10.1.2.0/24']);
    const balances = (headers: Record<string, string>) => call(proxied.url, 'GET', '/api/v1/balances', { credentials: fenced, headers });
    assert.equal((await balances(forwarded('10.1.2.3'))).status, 200, 'the client behind the proxy is inside the allow-list');
    assert.equal((await balances({})).body.error.code, 'IP_NOT_ALLOWED', 'the proxy itself is not');
    // Budgets are the client's: one client's burst does not spend another's.
    const burst = await Promise.all(Array.from({ length: 15 }, () => call(proxied.url, 'GET', '/api/v1/time', { headers: forwarded('198.51.100.1') })));
    assert.ok(burst.some((r) => r.status === 429));
    assert.equal((await call(proxied.url, 'GET', '/api/v1/time', { headers: forwarded('198.51.100.2') })).status, 200);
    // Socket caps too: one socket per client here.
    const open = (ip: string) => new Promise<{ socket?: WebSocket; status?: number }>((resolve) => {
      const socket = new WebSocket(`${proxied.url.replace('http', 'ws')}/ws`, { headers: forwarded(ip) });
      socket.once('open', () => resolve({ socket }));
      socket.once('unexpected-response', (_request, response) => resolve({ status: response.statusCode }));
    });
    const a = await open('192.0.2.10');
    const b = await open('192.0.2.11');
    assert.ok(a.socket !== undefined && b.socket !== undefined, 'two clients, one socket each');
    assert.equal((await open('192.0.2.10')).status, 429, 'a second socket of one client is refused');
    a.socket.close();
    b.socket.close();
  } finally {
    await proxied.stop();
  }
  const direct = await Venue.start();
  try {
    const fenced = await direct.trader('direct@example.com', {}, ['read'], ['10.1.2.0/24']);
    const spoofed = await call(direct.url, 'GET', '/api/v1/balances', { credentials: fenced, headers: forwarded('10.1.2.3') });
    assert.equal(spoofed.body.error.code, 'IP_NOT_ALLOWED', 'without a trusted proxy the header proves nothing');
  } finally {
    await direct.stop();
  }
});

test('the admin API answers only the addresses it is opened to (loopback by default)', async () => {
  const closed = await Venue.start({ server: { adminAllow: ['10.0.0.0/8'] } });
  try {
    const refused = await closed.admin('/users', { email: 'nobody@example.com', password: 'correct horse battery' });
    assert.deepEqual([refused.status, refused.body.error.code], [403, 'ADMIN_NOT_ALLOWED'], 'even with the right token');
  } finally {
    await closed.stop();
  }
  const open = await Venue.start();
  try {
    assert.equal((await open.admin('/users', { email: 'somebody@example.com', password: 'correct horse battery' })).status, 201, 'from loopback, by default');
  } finally {
    await open.stop();
  }
});

test('an address the operator blocks is refused 403 ADDRESS_BLOCKED on every route and socket, its open sockets close, others and the admin API are untouched, a timed block lapses, and blocks survive a restart', async () => {
  let now = Date.now();
  const forwarded = (ip: string) => ({ 'x-forwarded-for': ip });
  const venue = await Venue.start({ clock: () => now, server: { trustProxy: ['127.0.0.1'] } });
  let restarted: Venue | undefined;
  try {
    const open = (ip: string) => new Promise<{ socket?: WebSocket; status?: number; closed?: Promise<[number, string]> }>((resolve) => {
      const socket = new WebSocket(`${venue.url.replace('http', 'ws')}/ws`, { headers: forwarded(ip) });
      const closed = new Promise<[number, string]>((done) => socket.once('close', (code, reason) => done([code, reason.toString()])));
      socket.once('open', () => resolve({ socket, closed }));
      socket.once('unexpected-response', (_request, response) => resolve({ status: response.statusCode }));
    });
    const scraper = await open('203.0.113.7');
    const blocked = await venue.admin('/blocks', { cidr: '203.0.113.0/24', reason: 'scraping the book 500 times a second' });
    assert.deepEqual([blocked.status, blocked.body.cidr, blocked.body.until], [201, '203.0.113.0/24', null]);
    assert.deepEqual(await scraper.closed, [1008, 'address blocked'], 'a socket already open from the block closes');
    for (const path of ['/api/v1/time', '/api/v1/markets', '/api/v1/nowhere']) {
      const refused = await call(venue.url, 'GET', path, { headers: forwarded('203.0.113.99') });
      assert.deepEqual([refused.status, refused.body.error.code], [403, 'ADDRESS_BLOCKED'], path);
    }
    assert.equal((await open('203.0.113.8')).status, 403);
    assert.equal((await call(venue.url, 'GET', '/api/v1/time', { headers: forwarded('203.0.114.1') })).status, 200, 'the next block is not covered');
    assert.equal((await venue.admin('/blocks', { cidr: '127.0.0.1', reason: 'a slip of the finger' })).status, 201);
    assert.equal((await venue.admin('/blocks', undefined, 'GET')).status, 200, 'the admin API stays open to the operator');
    assert.equal((await call(venue.url, 'GET', '/api/v1/time')).status, 403);
    assert.equal((await venue.admin('/blocks?cidr=127.0.0.1', undefined, 'DELETE')).body.blocked, false);
    assert.equal((await venue.admin('/blocks', { cidr: 'not-an-address', reason: 'typo here' })).body.error.code, 'INVALID_IP');

    assert.equal((await venue.admin('/blocks', { cidr: '198.51.100.5', reason: 'cool off', minutes: 10 })).body.until, now + 600_000);
    assert.equal((await call(venue.url, 'GET', '/api/v1/time', { headers: forwarded('198.51.100.5') })).status, 403);
    now += 600_000;
    assert.equal((await call(venue.url, 'GET', '/api/v1/time', { headers: forwarded('198.51.100.5') })).status, 200, 'a timed block lapses');
    assert.deepEqual((await venue.admin('/blocks', undefined, 'GET')).body.blocks.map((b: { cidr: string }) => b.cidr), ['203.0.113.0/24']);

    const dataDir = venue.dataDir;
    await venue.stop(true);
    restarted = await Venue.start({ clock: () => now, dataDir, server: { trustProxy: ['127.0.0.1'] } });
    assert.equal((await call(restarted.url, 'GET', '/api/v1/time', { headers: forwarded('203.0.113.99') })).status, 403, 'blocks are kept');
  } finally {
    if (restarted !== undefined) await restarted.stop();
    else await venue.stop();
  }
});

test('a bot reads what its key and address may still spend and what each route weighs, and the figures follow what it spends', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now, server: { keyWeightPerSecond: 50, ipWeightPerSecond: 1_000 } });
  try {
    const bot = await venue.trader('pacer@example.com', {});
    // Signed at the venue's own clock, which this test moves.
    const signed = (path: string) => call(venue.url, 'GET', path, { credentials: bot, timestamp: ++now });
    const limits = async () => (await signed('/api/v1/account/rate-limits')).body;
    const first = await limits();
    assert.deepEqual(first.key, { per_second: 50, available: 49 }, 'this request itself weighed 1');
    assert.equal(first.address.per_second, 1_000);
    assert.deepEqual([first.weights['POST /api/v1/orders'], first.weights['GET /api/v1/orders'], first.weights['POST /api/v1/auth/login'], first.weights['POST /api/v1/orders/batch']], [1, 5, 20, 1]);
    assert.equal(Object.keys(first.weights).some((route) => route.includes('/admin/')), false);
    await signed('/api/v1/orders');
    assert.equal((await limits()).key.available, 43, 'a listing weighs 5, the look 1');
    now += 1_000;
    assert.equal((await limits()).key.available, 49, 'a second later the budget has refilled');
  } finally {
    await venue.stop();
  }
});

test('an address that keeps sending after 429s is banned: 429 BANNED with the ban\'s Retry-After for its requests and sockets, its open sockets closed, other addresses untouched, loopback never banned by default, and the operator lists and lifts bans', async () => {
  const venue = await Venue.start({ server: { trustProxy: ['127.0.0.1'], ipWeightPerSecond: 20, rateBans: { ignoredRefusalsBeforeBan: 20, graceMs: 100, banMs: 30_000 } } });
  const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
  try {
    const watcher = await tryConnect(venue.url, { 'x-forwarded-for': '198.51.100.7' });
    assert.ok('socket' in watcher);
    const closed = new Promise<number>((resolve) => {
      watcher.socket.once('close', (code) => resolve(code));
      setTimeout(() => resolve(0), 5_000).unref();
    });
    // A bot that ignores Retry-After: it sends as fast as answers come.
    const codes: string[] = [];
    let banned: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 5_000 && banned === undefined; i++) {
      const response = await call(venue.url, 'GET', '/api/v1/time', from('198.51.100.7'));
      codes.push(response.status === 200 ? 'ok' : response.body.error.code);
      if (response.body.error?.code === 'BANNED') banned = response;
    }
    assert.ok(banned !== undefined, `banned at last: ${codes.length} requests`);
    assert.equal(banned.status, 429);
    assert.ok(Number(banned.headers.get('retry-after')) >= 29 && Number(banned.headers.get('retry-after')) <= 30, `the ban's length: ${banned.headers.get('retry-after')}`);
    assert.ok(codes.indexOf('RATE_LIMITED') >= 1 && codes.indexOf('RATE_LIMITED') < codes.indexOf('BANNED'), 'refused for the budget first');
    assert.equal(await closed, 1008, 'the banned address\'s open socket is closed');
    const again = await call(venue.url, 'GET', '/api/v1/markets', from('198.51.100.7'));
    assert.deepEqual([again.status, again.body.error.code], [429, 'BANNED'], 'every route, whatever its budget, while the ban lasts');
    const socket = await tryConnect(venue.url, { 'x-forwarded-for': '198.51.100.7' });
    assert.ok('status' in socket && socket.status === 429 && socket.code === 'BANNED' && socket.retryAfter! >= 29, JSON.stringify(socket));
    assert.equal((await call(venue.url, 'GET', '/api/v1/time', from('198.51.100.8'))).status, 200, 'another address is not banned');

    const listed = await venue.admin('/rate-bans', undefined, 'GET');
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.bans.map((b: { subject: string; bans: number }) => [b.subject, b.bans]), [['ip:198.51.100.7', 1]]);
    assert.ok(listed.body.bans[0].seconds_left >= 29);
    const metrics = await (await fetch(`${venue.url}/metrics`)).text();
    assert.match(metrics, /^bourse_rate_bans_total 1$/m);
    assert.match(metrics, /^bourse_rate_bans 1$/m);
    assert.equal((await venue.admin('/rate-bans?subject=ip%3A198.51.100.8', undefined, 'DELETE')).body.error.code, 'NOT_BANNED');
    const lifted = await venue.admin('/rate-bans?subject=ip%3A198.51.100.7', undefined, 'DELETE');
    assert.deepEqual(lifted.body, { subject: 'ip:198.51.100.7', banned: false });
    await new Promise((r) => setTimeout(r, 1_100)); // the address's budget refills
    assert.equal((await call(venue.url, 'GET', '/api/v1/time', from('198.51.100.7'))).status, 200, 'lifted: served again');
    assert.deepEqual((await venue.admin('/rate-bans', undefined, 'GET')).body.bans, []);

    // Loopback is never banned by default (a proxy on this host, an operator's own tools): refused for its budget, no more.
    const local: string[] = [];
    for (let i = 0; i < 300; i++) local.push((await call(venue.url, 'GET', '/api/v1/time')).body.error?.code ?? 'ok');
    assert.ok(local.includes('RATE_LIMITED') && !local.includes('BANNED'), `${new Set(local)}`);
  } finally {
    await venue.stop();
  }
});

test('a client that waits out each Retry-After is never banned, however hard it pushes its budget', async () => {
  const venue = await Venue.start({ server: { ipWeightPerSecond: 30, rateBans: { ignoredRefusalsBeforeBan: 3, graceMs: 200 }, rateBanExempt: [] } });
  try {
    // Four workers, each sending again at once after an answer, and after a 429 waiting as long as it says.
    const seen = new Map<string, number>();
    const until = Date.now() + 3_500;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (Date.now() < until) {
        const response = await call(venue.url, 'GET', '/api/v1/time');
        const code = response.status === 200 ? 'ok' : response.body.error.code as string;
        seen.set(code, (seen.get(code) ?? 0) + 1);
        if (code === 'BANNED') return;
        if (response.status === 429) await new Promise((r) => setTimeout(r, Number(response.headers.get('retry-after')) * 1_000));
      }
    }));
    assert.ok((seen.get('RATE_LIMITED') ?? 0) >= 4, `the budget bit: ${JSON.stringify([...seen])}`);
    assert.equal(seen.get('BANNED'), undefined, JSON.stringify([...seen]));
    assert.deepEqual((await venue.admin('/rate-bans', undefined, 'GET')).body.bans, []);
  } finally {
    await venue.stop();
  }
});

test('a key that keeps sending after 429s is banned on its own: its signed requests and its sockets are refused, while its address and the user\'s other key go on', async () => {
  const venue = await Venue.start({ server: { keyWeightPerSecond: 10, ipWeightPerSecond: 100_000, rateBans: { ignoredRefusalsBeforeBan: 10, graceMs: 100, banMs: 60_000 } } });
  try {
    const flooder = await venue.trader('flood@example.com', {});
    const other = await venue.admin('/apikeys', { email: 'flood@example.com', permissions: ['read'] });
    const feed = await SocketClient.connect(venue.url);
    await feed.login(flooder);
    let last = '';
    for (let i = 0; i < 5_000 && last !== 'BANNED'; i++) {
      const response = await venue.signed(flooder, 'GET', '/api/v1/balances');
      last = response.status === 200 ? 'ok' : response.body.error.code;
    }
    assert.equal(last, 'BANNED');
    await until(() => feed.closed, (closed) => closed !== null, 'the socket to close');
    assert.equal(feed.closed!.code, 1008, "the key's authenticated socket is closed");
    const banned = await venue.signed(flooder, 'GET', '/api/v1/orders');
    assert.deepEqual([banned.status, banned.body.error.code], [429, 'BANNED']);
    assert.ok(Number(banned.headers.get('retry-after')) >= 59);
    assert.equal((await venue.signed({ key: other.body.key, secret: other.body.secret }, 'GET', '/api/v1/balances')).status, 200, 'the other key');
    assert.equal((await call(venue.url, 'GET', '/api/v1/time')).status, 200, 'the address');
    const again = await SocketClient.connect(venue.url);
    await assert.rejects(again.login(flooder), /BANNED/, 'nor can the key sign in on a new socket');
    again.close();
    assert.deepEqual((await venue.admin('/rate-bans', undefined, 'GET')).body.bans.map((b: { subject: string }) => b.subject), [`key:${flooder.key}`]);
  } finally {
    await venue.stop();
  }
});

test('every answer tells what its budget has left: X-RateLimit-Limit and X-RateLimit-Remaining of the address, or of the key when that has less, after a batch\'s extra weight, on refusals and errors too', async () => {
  // The exchange's clock stands still while the budgets are read, so that nothing refills between requests.
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now, server: { keyWeightPerSecond: 200, ipWeightPerSecond: 1_000 } });
  const budget = (r: { headers: Headers }) => [Number(r.headers.get('x-ratelimit-limit')), Number(r.headers.get('x-ratelimit-remaining'))];
  try {
    const trader = await venue.trader('headers@example.com', { USDT: '1000' });
    now = Date.now() + 1_000; // the address's budget refills after the set-up; the clock stands still from here
    const time = await call(venue.url, 'GET', '/api/v1/time');
    assert.deepEqual(budget(time), [1_000, 999], 'a public route: the address\'s budget, less its weight');
    const balances = await venue.signed(trader, 'GET', '/api/v1/balances');
    assert.deepEqual(budget(balances), [200, 198], 'a signed route: the key\'s, which has less left, less the weight of 2');
    const bid = { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '20000.00', quantity: '0.0010' };
    const batch = await venue.signed(trader, 'POST', '/api/v1/orders/batch', { orders: [bid, bid, bid, bid, bid] });
    assert.equal(batch.status, 200);
    const [, left] = budget(batch);
    assert.equal(left, 193, 'five orders weigh five');
    const missing = await call(venue.url, 'GET', '/api/v1/nowhere');
    assert.equal(missing.status, 404);
    assert.equal(budget(missing)[0], 1_000, 'an unknown route too');
    const unsigned = await call(venue.url, 'GET', '/api/v1/balances');
    assert.equal(unsigned.status, 401);
    assert.equal(budget(unsigned)[0], 1_000, 'a refused signature: the address\'s budget');
    const statuses: number[] = [];
    let refused: { headers: Headers } | undefined;
    for (let i = 0; i < 250 && refused === undefined; i++) {
      const response = await venue.signed(trader, 'GET', '/api/v1/balances');
      statuses.push(response.status);
      if (response.status === 429) refused = response;
    }
    assert.ok(refused !== undefined, 'the key\'s budget runs out');
    assert.deepEqual(budget(refused), [200, 0]);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  } finally {
    await venue.stop();
  }
});

test('new orders are limited per user across all their keys and accounts (429 TOO_MANY_ORDERS with Retry-After), placed or amended, over HTTP and the socket; cancels never are, and other users are not touched', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now, server: { ordersPerSecondPerUser: 6 } });
  try {
    const first = await venue.trader('orders-a@example.com', { USDT: '10000' });
    const second = await venue.admin('/apikeys', { email: 'orders-a@example.com', permissions: ['read', 'trade'] });
    const sameUser = { key: second.body.key as string, secret: second.body.secret as string };
    const other = await venue.trader('orders-b@example.com', { USDT: '10000' });
    now = Date.now(); // the clock stands still from here, after the set-up's password hashing
    const bid = { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '20000.00', quantity: '0.0010' };
    const placed: string[] = [];
    for (const credentials of [first, sameUser, first]) {
      const answer = await venue.signed(credentials, 'POST', '/api/v1/orders', bid);
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      placed.push(answer.body.id);
    }
    assert.equal((await venue.signed(sameUser, 'PATCH', `/api/v1/orders/${placed[0]}`, { price: '20001.00' })).status, 200, 'an amend is a new order: the fourth');
    const socket = await SocketClient.connect(venue.url);
    await socket.login(sameUser);
    socket.send({ op: 'place', id: 1, order: bid });
    assert.equal((await socket.next((m) => m.id === 1)).event, 'placed', 'the fifth, over the socket');
    const batch = await venue.signed(first, 'POST', '/api/v1/orders/batch', { orders: [bid, bid] });
    assert.deepEqual([batch.status, batch.body.error.code], [429, 'TOO_MANY_ORDERS'], 'two more would be eight: the batch is refused whole');
    const one = await venue.signed(first, 'POST', '/api/v1/orders', bid);
    assert.equal(one.status, 201, 'the sixth');
    const refused = await venue.signed(sameUser, 'POST', '/api/v1/orders', bid);
    assert.deepEqual([refused.status, refused.body.error.code], [429, 'TOO_MANY_ORDERS'], 'the other key shares the budget');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    socket.send({ op: 'place', id: 2, order: bid });
    const told = await socket.next((m) => m.id === 2);
    assert.deepEqual([told.event, told.error.code], ['error', 'TOO_MANY_ORDERS']);
    assert.equal((await venue.signed(other, 'POST', '/api/v1/orders', bid)).status, 201, 'another user has a budget of their own');
    assert.equal((await venue.signed(sameUser, 'DELETE', `/api/v1/orders/${placed[1]}`)).status, 200, 'a cancel is never limited');
    assert.equal((await venue.signed(first, 'DELETE', '/api/v1/orders?market=BTC-USDT')).status, 200);
    const limits = await venue.signed(first, 'GET', '/api/v1/account/rate-limits');
    assert.deepEqual(limits.body.orders, { per_second: 6, available: 0 });
    now += 1_000;
    assert.equal((await venue.signed(sameUser, 'POST', '/api/v1/orders', bid)).status, 201, 'a second later the budget has refilled');
    socket.close();
  } finally {
    await venue.stop();
  }
});

test('a ban outlives a restart, and so does the count that doubles the next one; a lifted ban stays lifted', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-bans-'));
  const options = { dataDir, server: { trustProxy: ['127.0.0.1'], ipWeightPerSecond: 20, rateBans: { ignoredRefusalsBeforeBan: 20, graceMs: 100, banMs: 3_000 } } };
  const from = { headers: { 'x-forwarded-for': '198.51.100.9' } };
  const floodUntilBanned = async (venue: Venue): Promise<number> => {
    for (let i = 0; i < 5_000; i++) {
      const response = await call(venue.url, 'GET', '/api/v1/time', from);
      if (response.body.error?.code === 'BANNED') return Number(response.headers.get('retry-after'));
    }
    throw new Error('never banned');
  };
  const bans = async (venue: Venue) => (await venue.admin('/rate-bans', undefined, 'GET')).body.bans.map((b: { subject: string; bans: number }) => [b.subject, b.bans]);
  let venue: Venue | undefined;
  try {
    venue = await Venue.start(options);
    assert.equal(await floodUntilBanned(venue), 3, 'the first ban: 3 s');
    await venue.stop(true);
    venue = undefined;
    venue = await Venue.start(options);
    const still = await call(venue.url, 'GET', '/api/v1/time', from);
    if (still.status === 429) assert.equal(still.body.error.code, 'BANNED', 'still banned after the restart, if it has not ended meanwhile');
    await new Promise((r) => setTimeout(r, 3_100));
    assert.equal((await call(venue.url, 'GET', '/api/v1/time', from)).status, 200, 'over');
    assert.deepEqual(await bans(venue), []);
    assert.equal(await floodUntilBanned(venue), 6, 'the second ban within the day doubles, though a restart came between');
    assert.deepEqual(await bans(venue), [['ip:198.51.100.9', 2]]);
    await venue.stop(true);
    venue = undefined;
    venue = await Venue.start(options);
    const banned = await call(venue.url, 'GET', '/api/v1/time', from);
    assert.deepEqual([banned.status, banned.body.error.code], [429, 'BANNED']);
    assert.deepEqual(await bans(venue), [['ip:198.51.100.9', 2]], 'listed after the restart');
    assert.equal((await venue.admin('/rate-bans?subject=ip%3A198.51.100.9', undefined, 'DELETE')).status, 200);
    await venue.stop(true);
    venue = undefined;
    venue = await Venue.start(options);
    assert.deepEqual(await bans(venue), [], 'a lifted ban stays lifted');
    assert.equal((await call(venue.url, 'GET', '/api/v1/time', from)).status, 200);
  } finally {
    await venue?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
