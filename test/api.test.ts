import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { call } from './support/api-client.js';
import type { Credentials } from './support/api-client.js';
import { Venue } from './support/venue.js';

let venue: Venue;
let alice: Credentials & { account: number };
let bob: Credentials & { account: number };
let reader: Credentials & { account: number };
let fenced: Credentials & { account: number };

before(async () => {
  venue = await Venue.start();
  alice = await venue.trader('alice@example.com', { USDT: '100000', BTC: '2' });
  bob = await venue.trader('bob@example.com', { USDT: '100000', BTC: '2' });
  reader = await venue.trader('reader@example.com', {}, ['read']);
  fenced = await venue.trader('fenced@example.com', {}, ['read', 'trade'], ['10.1.2.0/24']);
});

after(async () => {
  await venue.stop();
});

const order = (extra: Record<string, unknown> = {}) => ({ market: 'BTC-USDT', side: 'buy', type: 'limit', price: '30000.00', quantity: '0.0100', ...extra });

test('a correctly signed request is accepted', async () => {
  const response = await venue.signed(alice, 'GET', '/api/v1/account');
  assert.equal(response.status, 200);
  assert.equal(response.body.email, 'alice@example.com');
  assert.deepEqual(response.body.permissions, ['read', 'trade']);
});

test('a signature with one byte changed is refused', async () => {
  const response = await call(venue.url, 'GET', '/api/v1/balances', {
    credentials: alice,
    sign: (payload) => {
      const good = createHmac('sha256', alice.secret).update(payload).digest('hex');
      return (good[0] === 'a' ? 'b' : 'a') + good.slice(1);
    },
  });
  assert.equal(response.status, 401);
  assert.equal(response.body.error.code, 'INVALID_SIGNATURE');
});

test('a body changed after signing is refused', async () => {
  const timestamp = Date.now();
  const body = JSON.stringify(order({ client_order_id: 'tamper-1' }));
  const signature = createHmac('sha256', alice.secret).update(`${timestamp}POST/api/v1/orders${body}`).digest('hex');
  const response = await call(venue.url, 'POST', '/api/v1/orders', {
    rawBody: body.replace('0.0100', '0.0200'),
    headers: { 'x-bourse-key': alice.key, 'x-bourse-timestamp': String(timestamp), 'x-bourse-signature': signature },
  });
  assert.equal(response.status, 401);
  assert.equal((await venue.signed(alice, 'GET', '/api/v1/orders?client_order_id=tamper-1')).body.orders.length, 0);
});

test('a request the previous run received is refused after a restart, even inside its receive window', async () => {
  const first = await Venue.start();
  const dataDir = first.dataDir;
  const carol = await first.trader('carol@example.com', { USDT: '100000' });
  const timestamp = Date.now();
  // No client order id: nothing but replay protection stands between a replay and a second order.
  const body = JSON.stringify(order({ price: '20000.00' }));
  const signature = createHmac('sha256', carol.secret).update(`${timestamp}POST/api/v1/orders${body}`).digest('hex');
  const headers = { 'x-bourse-key': carol.key, 'x-bourse-timestamp': String(timestamp), 'x-bourse-recv-window': '60000', 'x-bourse-signature': signature };
  assert.equal((await call(first.url, 'POST', '/api/v1/orders', { rawBody: body, headers })).status, 201);
  await first.stop(true);

  const second = await Venue.start({ dataDir });
  try {
    const replayed = await call(second.url, 'POST', '/api/v1/orders', { rawBody: body, headers });
    assert.equal(replayed.status, 401);
    assert.equal(replayed.body.error.code, 'STALE_REQUEST');
    assert.match(replayed.body.error.message, /signed before the server started/);
    assert.equal((await second.signed(carol, 'GET', '/api/v1/orders')).body.orders.length, 1);
    // The same order signed now goes through.
    assert.equal((await second.signed(carol, 'POST', '/api/v1/orders', JSON.parse(body))).status, 201);
    assert.equal((await second.signed(carol, 'GET', '/api/v1/orders')).body.orders.length, 2);
  } finally {
    await second.stop();
  }
});

test('a request the bounded replay cache had to forget inside its window is refused, not carried out twice', async () => {
  const small = await Venue.start({ auth: { replayCacheMax: 2 } });
  try {
    const dave = await small.trader('dave@example.com', { USDT: '100000' });
    const t = Date.now();
    const body = JSON.stringify(order({ price: '20000.00' }));
    const signature = createHmac('sha256', dave.secret).update(`${t - 3}POST/api/v1/orders${body}`).digest('hex');
    const headers = { 'x-bourse-key': dave.key, 'x-bourse-timestamp': String(t - 3), 'x-bourse-signature': signature };
    assert.equal((await call(small.url, 'POST', '/api/v1/orders', { rawBody: body, headers })).status, 201);
    // Two more signatures: the cache holds two, so the order's leaves it while still inside its window.
    for (const timestamp of [t - 2, t - 1]) assert.equal((await call(small.url, 'GET', '/api/v1/account', { credentials: dave, timestamp })).status, 200);
    const replayed = await call(small.url, 'POST', '/api/v1/orders', { rawBody: body, headers });
    assert.equal(replayed.status, 401);
    assert.equal(replayed.body.error.code, 'STALE_REQUEST');
    assert.match(replayed.body.error.message, /sign the request again/);
    assert.equal((await small.signed(dave, 'GET', '/api/v1/orders')).body.orders.length, 1);
    assert.equal((await small.signed(dave, 'POST', '/api/v1/orders', JSON.parse(body))).status, 201, 'signed anew, it goes through');
  } finally {
    await small.stop();
  }
});

test('a stale or future timestamp is refused', async () => {
  const stale = await call(venue.url, 'GET', '/api/v1/balances', { credentials: alice, timestamp: Date.now() - 6_000 });
  assert.equal(stale.status, 401);
  assert.equal(stale.body.error.code, 'STALE_REQUEST');
  const future = await call(venue.url, 'GET', '/api/v1/balances', { credentials: alice, timestamp: Date.now() + 5_000 });
  assert.equal(future.body.error.code, 'STALE_REQUEST');
});

test('a replayed request is refused and does not place a second order', async () => {
  const timestamp = Date.now();
  const body = JSON.stringify(order({ client_order_id: 'replay-1', price: '20000.00' }));
  const signature = createHmac('sha256', alice.secret).update(`${timestamp}POST/api/v1/orders${body}`).digest('hex');
  const send = () => call(venue.url, 'POST', '/api/v1/orders', {
    rawBody: body, headers: { 'x-bourse-key': alice.key, 'x-bourse-timestamp': String(timestamp), 'x-bourse-signature': signature },
  });
  assert.equal((await send()).status, 201);
  const again = await send();
  assert.equal(again.status, 401);
  assert.equal(again.body.error.code, 'REPLAYED_REQUEST');
  const open = await venue.signed(alice, 'GET', '/api/v1/orders?client_order_id=replay-1');
  assert.equal(open.body.orders.length, 1);
  await venue.signed(alice, 'DELETE', `/api/v1/orders/${open.body.orders[0].id}`);
});

test('a signature in upper-case hex is accepted, and the same signature again in lower case is refused as a replay', async () => {
  const timestamp = Date.now();
  const body = JSON.stringify(order({ client_order_id: 'replay-case-1', price: '20000.00' }));
  const signature = createHmac('sha256', alice.secret).update(`${timestamp}POST/api/v1/orders${body}`).digest('hex');
  const send = (hex: string) => call(venue.url, 'POST', '/api/v1/orders', {
    rawBody: body, headers: { 'x-bourse-key': alice.key, 'x-bourse-timestamp': String(timestamp), 'x-bourse-signature': hex },
  });
  assert.equal((await send(signature.toUpperCase())).status, 201);
  const again = await send(signature);
  assert.equal(again.status, 401);
  assert.equal(again.body.error.code, 'REPLAYED_REQUEST');
  const open = await venue.signed(alice, 'GET', '/api/v1/orders?client_order_id=replay-case-1');
  assert.equal(open.body.orders.length, 1);
  await venue.signed(alice, 'DELETE', `/api/v1/orders/${open.body.orders[0].id}`);
});

test('a key without the trade permission cannot place orders', async () => {
  const response = await venue.signed(reader, 'POST', '/api/v1/orders', order());
  assert.equal(response.status, 403);
  assert.equal(response.body.error.code, 'PERMISSION_DENIED');
  assert.equal((await venue.signed(reader, 'GET', '/api/v1/balances')).status, 200);
});

test('a key used from an address outside its allow-list is refused', async () => {
  const response = await venue.signed(fenced, 'GET', '/api/v1/balances');
  assert.equal(response.status, 403);
  assert.equal(response.body.error.code, 'IP_NOT_ALLOWED');
});

test('an unsigned private request is refused', async () => {
  const response = await call(venue.url, 'GET', '/api/v1/balances');
  assert.equal(response.status, 401);
  assert.equal(response.body.error.code, 'MISSING_CREDENTIALS');
});

test('order lifecycle: place, read, amend, trade, fills and balances', async () => {
  const placed = await venue.signed(alice, 'POST', '/api/v1/orders', order({ client_order_id: 'life-1' }));
  assert.equal(placed.status, 201, JSON.stringify(placed.body));
  assert.equal(placed.body.status, 'NEW');
  assert.equal(placed.body.price, '30000.000000');
  assert.equal(placed.body.remaining_quantity, '0.01000000');
  const id = placed.body.id;
  const balances = await venue.signed(alice, 'GET', '/api/v1/balances');
  const usdt = balances.body.balances.find((b: { asset: string }) => b.asset === 'USDT');
  assert.equal(usdt.reserved, '300.000000');

  const amended = await venue.signed(alice, 'PATCH', `/api/v1/orders/${id}`, { quantity: '0.0050' });
  assert.equal(amended.status, 200, JSON.stringify(amended.body));
  assert.equal(amended.body.quantity, '0.00500000');

  const taken = await venue.signed(bob, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'sell', type: 'market', quantity: '0.0050' });
  assert.equal(taken.status, 201, JSON.stringify(taken.body));
  assert.equal(taken.body.status, 'FILLED');
  assert.equal(taken.body.average_price, '30000.000000');

  const filled = await venue.signed(alice, 'GET', `/api/v1/orders/${id}`);
  assert.equal(filled.body.status, 'FILLED');
  assert.equal(filled.body.fills.length, 1);
  assert.equal(filled.body.fills[0].liquidity, 'maker');
  assert.equal(filled.body.fills[0].fee, '0.00000500', 'maker fee 0.1 % of 0.005 BTC, in BTC');
  const history = await venue.signed(alice, 'GET', '/api/v1/orders?status=all');
  assert.ok(history.body.orders.some((o: { id: string }) => o.id === id));
  const trades = await venue.signed(bob, 'GET', '/api/v1/trades');
  assert.equal(trades.body.trades[0].liquidity, 'taker');
  const tape = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/trades');
  assert.equal(tape.body.trades[0].price, '30000.000000');
});

test('the public trade tape pages backwards: before a trade id, with next_before until the start', async () => {
  for (let i = 0; i < 3; i++) {
    await venue.signed(alice, 'POST', '/api/v1/orders', order({ price: '29000.00', quantity: '0.0010' }));
    const taken = await venue.signed(bob, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'sell', type: 'market', quantity: '0.0010' });
    assert.equal(taken.body.status, 'FILLED');
  }
  const tape = (await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/trades?limit=1000')).body;
  const ids: string[] = tape.trades.map((t: { id: string }) => t.id);
  assert.ok(ids.length >= 3);
  assert.equal(tape.next_before, null, 'the whole tape fits in one page');
  const paged: string[] = [];
  let before: string | null = String(Number(ids[0]) + 1);
  while (before !== null) {
    const page: { trades: { id: string }[]; next_before: string | null } = (await call(venue.url, 'GET', `/api/v1/markets/BTC-USDT/trades?limit=2&before=${before}`)).body;
    paged.push(...page.trades.map((t: { id: string }) => t.id));
    before = page.next_before;
  }
  assert.deepEqual(paged, ids, 'pages of two, newest first, join into the tape');
});

test('open orders page backwards: before an order id, with next_before until the oldest', async () => {
  for (let i = 0; i < 5; i++) {
    const placed = await venue.signed(alice, 'POST', '/api/v1/orders', order({ price: `2${i}000.00`, quantity: '0.0010' }));
    assert.equal(placed.status, 201, JSON.stringify(placed.body));
  }
  const whole = (await venue.signed(alice, 'GET', '/api/v1/orders?status=open&limit=500')).body;
  const ids: string[] = whole.orders.map((o: { id: string }) => o.id);
  assert.ok(ids.length >= 5);
  assert.equal(whole.next_before, null, 'every open order fits in one page');
  assert.deepEqual(ids, [...ids].sort((a, b) => Number(b) - Number(a)), 'newest first');
  const paged: string[] = [];
  let before: string | null = null;
  do {
    const query: string = before === null ? '' : `&before=${before}`;
    const page: { orders: { id: string; status: string }[]; next_before: string | null } = (await venue.signed(alice, 'GET', `/api/v1/orders?limit=2${query}`)).body;
    assert.ok(page.orders.length <= 2);
    assert.ok(page.orders.every((o) => o.status === 'NEW' || o.status === 'PARTIALLY_FILLED'));
    paged.push(...page.orders.map((o) => o.id));
    before = page.next_before ?? null;
    assert.ok(paged.length <= ids.length, 'the pages end: no order comes twice');
  } while (before !== null);
  assert.deepEqual(paged, ids, 'pages of two join into the open orders');
  await venue.signed(alice, 'DELETE', '/api/v1/orders?market=BTC-USDT');
});

test('history lists page oldest first after an id and narrow to a time range: fills, the ledger, order history and the public tape', async () => {
  const maker = await venue.trader('pager-maker@example.com', { USDT: '10000' });
  const taker = await venue.trader('pager-taker@example.com', { BTC: '1' });
  for (let i = 0; i < 6; i++) {
    assert.equal((await venue.signed(maker, 'POST', '/api/v1/orders', order({ price: '25000.00', quantity: '0.0010' }))).status, 201);
    const taken = await venue.signed(taker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'sell', type: 'limit', price: '25000.00', time_in_force: 'IOC', quantity: '0.0010' });
    assert.equal(taken.body.status, 'FILLED');
    await new Promise((resolve) => setTimeout(resolve, 3));
  }
  type Listing = { path: string; rows: string; id: string; time: string; signed: boolean };
  const listings: Listing[] = [
    { path: '/api/v1/trades?market=BTC-USDT', rows: 'trades', id: 'trade_id', time: 'time', signed: true },
    { path: '/api/v1/ledger?asset=USDT', rows: 'entries', id: 'id', time: 'time', signed: true },
    { path: '/api/v1/orders?status=all', rows: 'orders', id: 'id', time: 'created_at', signed: true },
    { path: '/api/v1/markets/BTC-USDT/trades', rows: 'trades', id: 'id', time: 'time', signed: false },
  ];
  const get = async (listing: Listing, query: string) => {
    const path = `${listing.path}${listing.path.includes('?') ? '&' : '?'}${query.slice(1)}`;
    return listing.signed ? venue.signed(maker, 'GET', path) : call(venue.url, 'GET', path);
  };
  for (const listing of listings) {
    const whole = (await get(listing, '&limit=500')).body;
    const rows: { time: number }[] = whole[listing.rows].map((r: Record<string, unknown>) => ({ ...r, time: r[listing.time] }));
    const ids = rows.map((r) => String((r as Record<string, unknown>)[listing.id]));
    assert.ok(ids.length >= 6, listing.path);
    assert.equal(whole.next_before, null);
    assert.equal(whole.next_after, null);

    // Oldest first: pages of two after an id join into the whole list, reversed.
    const oldest = Number(ids.at(-1));
    const ascending: string[] = [];
    let after: string | null = String(oldest - 1);
    while (after !== null) {
      const page: Record<string, any> = (await get(listing, `&limit=2&after=${after}`)).body;
      assert.equal(page.next_before, null, 'an oldest-first page points onward with next_after');
      ascending.push(...page[listing.rows].map((r: Record<string, unknown>) => String(r[listing.id])));
      after = page.next_after;
      assert.ok(ascending.length <= ids.length, 'the pages end');
    }
    assert.deepEqual(ascending, [...ids].reverse(), `${listing.path}: oldest first after an id`);

    // A time range: exactly the rows stamped within it, both ends included, in either order.
    const from = rows[Math.floor(rows.length / 2)]!.time;
    const to = rows[1]!.time;
    const idOf = (r: object) => String((r as Record<string, unknown>)[listing.id]);
    const inRange = rows.filter((r) => r.time >= from && r.time <= to).map(idOf);
    assert.ok(inRange.length >= 1 && inRange.length < ids.length, 'the range holds some rows, not all');
    const ranged = (await get(listing, `&limit=500&from=${from}&to=${to}`)).body;
    assert.deepEqual(ranged[listing.rows].map((r: Record<string, unknown>) => String(r[listing.id])), inRange, `${listing.path}: from ${from} to ${to}`);
    const rangedUp = (await get(listing, `&limit=500&after=0&from=${from}&to=${to}`)).body;
    assert.deepEqual(rangedUp[listing.rows].map((r: Record<string, unknown>) => String(r[listing.id])), [...inRange].reverse());
    assert.deepEqual((await get(listing, `&from=${rows[0]!.time + 1}`)).body[listing.rows], [], 'nothing after the newest row');

    for (const [query, message] of [['&before=9&after=1', /before and after/], [`&from=${to + 1}&to=${to}`, /from must not be later than to/]] as const) {
      const refused = await get(listing, query);
      assert.equal(refused.status, 400, `${listing.path}${query}`);
      assert.equal(refused.body.error.code, 'INVALID_REQUEST');
      assert.match(refused.body.error.message, message);
    }
    assert.equal((await get(listing, '&from=yesterday')).status, 400);
  }
  const open = await venue.signed(maker, 'GET', '/api/v1/orders?from=0');
  assert.equal(open.status, 400, 'open orders page by id only');
  assert.match(open.body.error.message, /status=all/);
});

test('an open order is amended and cancelled by its client order id, within the key\'s account only', async () => {
  const placed = await venue.signed(alice, 'POST', '/api/v1/orders', order({ price: '21000.00', client_order_id: 'bot/leg-1' }));
  assert.equal(placed.status, 201);
  const path = `/api/v1/orders/client/${encodeURIComponent('bot/leg-1')}`;
  for (const [method, body] of [['PATCH', { quantity: '0.0050' }], ['DELETE', undefined]] as const) {
    const foreign = await venue.signed(bob, method, path, body);
    assert.deepEqual([foreign.status, foreign.body.error.code], [404, 'UNKNOWN_ORDER'], `${method}: another user's client ids are not looked at`);
  }
  const amended = await venue.signed(alice, 'PATCH', path, { quantity: '0.0050' });
  assert.deepEqual([amended.status, amended.body.id, amended.body.quantity], [200, placed.body.id, '0.00500000']);
  const cancelled = await venue.signed(alice, 'DELETE', path);
  assert.deepEqual([cancelled.status, cancelled.body.id, cancelled.body.status, cancelled.body.client_order_id], [200, placed.body.id, 'CANCELLED', 'bot/leg-1']);
  const again = await venue.signed(alice, 'DELETE', path);
  assert.deepEqual([again.status, again.body.error.code], [404, 'UNKNOWN_ORDER'], 'only open orders are cancelled');
  assert.equal((await venue.signed(alice, 'DELETE', `/api/v1/orders/client/${'x'.repeat(65)}`)).status, 400);
  assert.equal((await venue.signed(alice, 'DELETE', `${path}?account=${bob.account}`)).body.error.code, 'ACCOUNT_NOT_ALLOWED');
});

test('cancel by id and cancel all in a market', async () => {
  const a = await venue.signed(alice, 'POST', '/api/v1/orders', order({ price: '25000.00' }));
  const b = await venue.signed(alice, 'POST', '/api/v1/orders', order({ price: '25001.00' }));
  const cancelled = await venue.signed(alice, 'DELETE', `/api/v1/orders/${a.body.id}`);
  assert.equal(cancelled.body.status, 'CANCELLED');
  const all = await venue.signed(alice, 'DELETE', '/api/v1/orders?market=BTC-USDT');
  assert.deepEqual(all.body.cancelled.map((o: { id: string }) => o.id), [b.body.id]);
  const depth = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/depth');
  assert.equal(depth.body.bids.length, 0);
});

test('one user can never read, amend or cancel another user\'s order', async () => {
  const mine = await venue.signed(alice, 'POST', '/api/v1/orders', order({ price: '21000.00' }));
  for (const [method, body] of [['GET', undefined], ['DELETE', undefined], ['PATCH', { quantity: '0.0200' }]] as const) {
    const response = await venue.signed(bob, method, `/api/v1/orders/${mine.body.id}`, body);
    assert.equal(response.status, 404, `${method} by another user`);
  }
  assert.equal((await venue.signed(alice, 'GET', `/api/v1/orders/${mine.body.id}`)).body.status, 'NEW');
  const bobs = await venue.signed(bob, 'GET', '/api/v1/orders?status=all&limit=500');
  assert.ok(!bobs.body.orders.some((o: { id: string }) => o.id === mine.body.id));
  await venue.signed(alice, 'DELETE', `/api/v1/orders/${mine.body.id}`);
});

test('a main-account key trades and reads on the user\'s sub-accounts by naming them; a sub-account key and other users cannot reach beyond their own', async () => {
  const carol = await venue.trader('carol@example.com', { USDT: '1000' }, ['read', 'trade', 'withdraw'], ['127.0.0.1']);
  const sub = (await venue.signed(carol, 'POST', '/api/v1/accounts', { label: 'portfolio 2' })).body.account as number;
  assert.equal((await venue.signed(carol, 'POST', '/api/v1/transfers', { to_account: sub, asset: 'USDT', amount: '400', request_id: 'fund' })).status, 201);

  const placed = await venue.signed(carol, 'POST', '/api/v1/orders', order({ price: '20000.00', account: sub }));
  assert.equal(placed.status, 201, JSON.stringify(placed.body));
  assert.equal(placed.body.account, sub);
  const usdt = async (path: string) => (await venue.signed(carol, 'GET', path)).body.balances.find((b: { asset: string }) => b.asset === 'USDT');
  assert.equal((await usdt(`/api/v1/balances?account=${sub}`)).reserved, '200.000000', 'the order holds the sub-account\'s funds');
  assert.equal((await usdt('/api/v1/balances')).reserved, '0.000000', 'and not the main account\'s');
  assert.equal((await venue.signed(carol, 'GET', `/api/v1/orders/${placed.body.id}`)).body.account, sub);
  assert.deepEqual((await venue.signed(carol, 'GET', `/api/v1/orders?account=${sub}`)).body.orders.map((o: { id: string }) => o.id), [placed.body.id]);
  assert.deepEqual((await venue.signed(carol, 'GET', '/api/v1/orders')).body.orders, [], 'listings default to the key\'s own account');
  assert.equal((await venue.signed(carol, 'GET', `/api/v1/ledger?account=${sub}`)).body.entries[0].reserved_change, '200.000000');
  const amended = await venue.signed(carol, 'PATCH', `/api/v1/orders/${placed.body.id}`, { quantity: '0.0050' });
  assert.equal(amended.body.quantity, '0.00500000', JSON.stringify(amended.body));

  const subKey = await venue.admin('/apikeys', { email: 'carol@example.com', permissions: ['read', 'trade'], account: sub });
  const bot = { key: subKey.body.key, secret: subKey.body.secret };
  assert.equal((await venue.signed(bot, 'GET', `/api/v1/orders/${placed.body.id}`)).body.account, sub, 'the sub-account\'s own key sees its order');
  const main = (await venue.signed(carol, 'GET', '/api/v1/account')).body.account as number;
  const outward = await venue.signed(bot, 'POST', '/api/v1/orders', order({ price: '20000.00', account: main }));
  assert.deepEqual([outward.status, outward.body.error.code], [403, 'ACCOUNT_NOT_ALLOWED'], 'a sub-account key cannot trade the main account');
  assert.equal((await venue.signed(bot, 'GET', `/api/v1/balances?account=${main}`)).status, 403);

  for (const [method, path, body] of [
    ['POST', '/api/v1/orders', order({ account: sub })], ['GET', `/api/v1/orders?account=${sub}`, undefined],
    ['GET', `/api/v1/balances?account=${sub}`, undefined], ['GET', `/api/v1/trades?account=${sub}`, undefined],
    ['GET', `/api/v1/ledger?account=${sub}`, undefined], ['DELETE', `/api/v1/orders?account=${sub}`, undefined],
  ] as const) {
    const response = await venue.signed(bob, method, path, body);
    assert.deepEqual([response.status, response.body.error?.code], [403, 'ACCOUNT_NOT_ALLOWED'], `${method} ${path} by another user`);
  }
  for (const method of ['GET', 'DELETE'] as const) assert.equal((await venue.signed(bob, method, `/api/v1/orders/${placed.body.id}`)).status, 404);
  assert.equal((await venue.signed(carol, 'GET', '/api/v1/balances?account=abc')).status, 400);
  assert.equal((await venue.signed(carol, 'POST', '/api/v1/orders', order({ account: '7' }))).status, 400, 'account is a number in a body');

  const cancelled = await venue.signed(carol, 'DELETE', `/api/v1/orders?account=${sub}`);
  assert.deepEqual(cancelled.body.cancelled.map((o: { id: string; status: string }) => [o.id, o.status]), [[placed.body.id, 'CANCELLED']]);
  assert.equal((await usdt(`/api/v1/balances?account=${sub}`)).available, '400.000000');
});

test('engine rejections come back as 4xx with the rule that refused them and the market figure the order missed', async () => {
  const cases: [Record<string, unknown>, number, string, RegExp?][] = [
    [order({ price: '30000.0000001' }), 400, 'INVALID_NUMBER'],
    [order({ price: '30000.005' }), 400, 'TICK_SIZE', /^prices must be multiples of the tick size 0\.01 USDT$/],
    [order({ quantity: '0.00001' }), 400, 'LOT_SIZE', /^quantity must be a multiple of the lot size 0\.0001 BTC$/],
    [order({ quantity: '1000' }), 400, 'INSUFFICIENT_BALANCE', /^not enough available USDT for this order$/],
    [order({ side: 'sell', quantity: '1000' }), 400, 'INSUFFICIENT_BALANCE', /^not enough available BTC for this order$/],
    [order({ market: 'DOGE-USDT' }), 404, 'UNKNOWN_MARKET'],
    [order({ post_only: true, time_in_force: 'FOK' }), 400, 'INVALID_COMMAND', /^post_only needs a limit order that may rest \(GTC, DAY or GTD\)$/],
    [order({ time_in_force: 'GTD' }), 400, 'INVALID_COMMAND', /^GTD needs expire_time$/],
    [order({ price: '0.01' }), 400, 'NOTIONAL_TOO_SMALL', /^the order's value is below the market's minimum of \d+(\.\d+)? USDT$/],
    [order({ price: 30000 }), 400, 'INVALID_REQUEST'],
    [order({ price: '3e4' }), 400, 'INVALID_REQUEST'],
    [order({ extra: 1 }), 400, 'INVALID_REQUEST'],
    [order({ side: 'up' }), 400, 'INVALID_REQUEST'],
  ];
  for (const [body, status, code, message] of cases) {
    const response = await venue.signed(alice, 'POST', '/api/v1/orders', body);
    assert.equal(response.status, status, `${JSON.stringify(body)} → ${JSON.stringify(response.body)}`);
    assert.equal(response.body.error.code, code, JSON.stringify(body));
    if (message !== undefined) assert.match(response.body.error.message, message, JSON.stringify(body));
  }
  const gone = await venue.signed(alice, 'DELETE', '/api/v1/orders/999999');
  assert.deepEqual([gone.status, gone.body.error.code, gone.body.error.message], [404, 'UNKNOWN_ORDER', 'no such open order'], 'a refusal reads as a sentence, not the bare rule name');
});

test('markets limit open orders per account: the operator sets the limit, GET /markets shows it, and an order over it is refused naming it', async () => {
  const dana = await venue.trader('dana@example.com', { USDT: '10000' });
  const markets = await call(venue.url, 'GET', '/api/v1/markets');
  const ethUsdt = () => markets.body.markets.find((m: { market: string }) => m.market === 'ETH-USDT');
  assert.equal(ethUsdt().max_open_orders, 500, 'markets made from the config have the default limit');
  const set = await venue.admin('/markets/ETH-USDT/limits', { max_open_orders: 2 });
  assert.deepEqual([set.status, set.body.market, set.body.max_open_orders], [200, 'ETH-USDT', 2]);
  const eth = (price: string, extra: Record<string, unknown> = {}) => order({ market: 'ETH-USDT', price, quantity: '0.0100', ...extra });
  for (const price of ['1000.00', '1001.00']) assert.equal((await venue.signed(dana, 'POST', '/api/v1/orders', eth(price))).status, 201);
  const refused = await venue.signed(dana, 'POST', '/api/v1/orders', eth('1002.00'));
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  assert.equal(refused.body.error.code, 'TOO_MANY_OPEN_ORDERS');
  assert.match(refused.body.error.message, /maximum of 2 open orders/);
  assert.equal((await venue.signed(dana, 'POST', '/api/v1/orders', eth('1003.00', { market: 'BTC-USDT', price: '30000.00' }))).status, 201, 'other markets keep their own limit');
  const open = await venue.signed(dana, 'GET', '/api/v1/orders?market=ETH-USDT');
  assert.equal(open.body.orders.length, 2, 'the refused order changed nothing');
  for (const [body, status, code] of [[{ max_open_orders: -1 }, 400, 'INVALID_REQUEST'], [{ max_open_orders: 'many' }, 400, 'INVALID_REQUEST'], [{}, 400, 'INVALID_REQUEST']] as const) {
    const bad = await venue.admin('/markets/ETH-USDT/limits', body);
    assert.deepEqual([bad.status, bad.body.error?.code], [status, code], JSON.stringify(body));
  }
  assert.equal((await venue.admin('/markets/DOGE-USDT/limits', { max_open_orders: 1 })).status, 404);
  await venue.admin('/markets/ETH-USDT/limits', { max_open_orders: 0 });
  assert.equal((await venue.signed(dana, 'POST', '/api/v1/orders', eth('1002.00'))).status, 201, '0 lifts the limit');
  const lifted = await call(venue.url, 'GET', '/api/v1/markets');
  assert.equal(lifted.body.markets.find((m: { market: string }) => m.market === 'ETH-USDT').max_open_orders, null);
  await venue.admin('/markets/ETH-USDT/limits', { max_open_orders: 500 });
});

test('a dead man\'s switch set over REST cancels the account\'s open orders when it is not set again in time', async () => {
  const erin = await venue.trader('erin@example.com', { USDT: '10000' });
  const kept = await venue.signed(erin, 'POST', '/api/v1/orders', order({ price: '20000.00' }));
  const armed = await venue.signed(erin, 'POST', '/api/v1/orders/cancel-after', { timeout_ms: 600 });
  assert.equal(armed.status, 200, JSON.stringify(armed.body));
  assert.equal(armed.body.account, erin.account);
  assert.equal(armed.body.trigger_time, armed.body.current_time + 600);
  assert.equal((await venue.signed(erin, 'GET', '/api/v1/orders/cancel-after')).body.trigger_time, armed.body.trigger_time);
  const armedGauge = async () => Number(/^bourse_cancel_after_armed (\d+)$/m.exec(await (await fetch(`${venue.url}/metrics`)).text())?.[1]);
  assert.equal(await armedGauge(), 1, 'operators see how many switches are armed');
  // Set again within the timeout, three times over: the order stays well past the first deadline.
  let lastTrigger = armed.body.trigger_time as number;
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const again = await venue.signed(erin, 'POST', '/api/v1/orders/cancel-after', { timeout_ms: 600 });
    assert.equal(again.status, 200);
    assert.ok(again.body.trigger_time > lastTrigger, 'each setting moves the deadline');
    lastTrigger = again.body.trigger_time;
  }
  assert.equal((await venue.signed(erin, 'GET', `/api/v1/orders/${kept.body.id}`)).body.status, 'NEW');
  // Then the bot "dies": with no other command coming, the server's own tick fires the switch.
  const deadline = Date.now() + 600;
  let status = '';
  while (Date.now() < deadline + 2_000) {
    status = (await venue.signed(erin, 'GET', `/api/v1/orders/${kept.body.id}`)).body.status;
    if (status !== 'NEW') break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const cancelled = await venue.signed(erin, 'GET', `/api/v1/orders/${kept.body.id}`);
  assert.deepEqual([cancelled.body.status, cancelled.body.reason], ['CANCELLED', 'CANCEL_AFTER']);
  assert.ok(cancelled.body.updated_at >= lastTrigger, `cancelled at ${cancelled.body.updated_at}, not before the deadline ${lastTrigger}`);
  assert.ok(cancelled.body.updated_at < lastTrigger + 1_000, 'and soon after it, with no other command coming');
  assert.equal((await venue.signed(erin, 'GET', '/api/v1/orders/cancel-after')).body.trigger_time, null, 'firing turns the switch off');
  assert.equal(await armedGauge(), 0);
  const balances = await venue.signed(erin, 'GET', '/api/v1/balances');
  assert.equal(balances.body.balances.find((b: { asset: string }) => b.asset === 'USDT').reserved, '0.000000');

  // 0 turns it off; bad values, read-only keys and other users' accounts are refused and change nothing.
  await venue.signed(erin, 'POST', '/api/v1/orders/cancel-after', { timeout_ms: 60_000 });
  const off = await venue.signed(erin, 'POST', '/api/v1/orders/cancel-after', { timeout_ms: 0 });
  assert.deepEqual([off.status, off.body.trigger_time], [200, null]);
  for (const body of [{ timeout_ms: -1 }, { timeout_ms: 86_400_001 }, { timeout_ms: 1.5 }, { timeout_ms: '60000' }, {}, { timeout_ms: 1_000, extra: 1 }]) {
    const bad = await venue.signed(erin, 'POST', '/api/v1/orders/cancel-after', body);
    assert.deepEqual([bad.status, bad.body.error?.code], [400, 'INVALID_REQUEST'], JSON.stringify(body));
  }
  assert.equal((await venue.signed(reader, 'POST', '/api/v1/orders/cancel-after', { timeout_ms: 1_000 })).status, 403);
  const foreign = await venue.signed(bob, 'POST', '/api/v1/orders/cancel-after', { timeout_ms: 1_000, account: erin.account });
  assert.deepEqual([foreign.status, foreign.body.error.code], [403, 'ACCOUNT_NOT_ALLOWED']);
  assert.equal((await venue.signed(erin, 'GET', '/api/v1/orders/cancel-after')).body.trigger_time, null);
});

test('malformed JSON, wrong content and huge bodies get 4xx, never 5xx', async () => {
  const timestamp = Date.now();
  const malformed = '{"market": "BTC-USDT",';
  const signature = createHmac('sha256', alice.secret).update(`${timestamp}POST/api/v1/orders${malformed}`).digest('hex');
  const bad = await call(venue.url, 'POST', '/api/v1/orders', { rawBody: malformed, headers: { 'x-bourse-key': alice.key, 'x-bourse-timestamp': String(timestamp), 'x-bourse-signature': signature } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'INVALID_JSON');
  for (const poisoned of ['{"market":"BTC-USDT","__proto__":{"admin":true}}', '{"market":"BTC-USDT","constructor":{"prototype":{"admin":true}}}']) {
    const at = Date.now();
    const signed = createHmac('sha256', alice.secret).update(`${at}POST/api/v1/orders${poisoned}`).digest('hex');
    const refused = await call(venue.url, 'POST', '/api/v1/orders', { rawBody: poisoned, headers: { 'x-bourse-key': alice.key, 'x-bourse-timestamp': String(at), 'x-bourse-signature': signed } });
    assert.deepEqual([refused.status, refused.body.error.code], [400, 'INVALID_JSON'], poisoned);
  }
  const huge = await call(venue.url, 'POST', '/api/v1/orders', { rawBody: JSON.stringify({ market: 'x'.repeat(200_000) }) });
  assert.equal(huge.status, 413);
  const xml = await call(venue.url, 'POST', '/api/v1/orders', { rawBody: '<order/>', headers: { 'content-type': 'application/xml' } });
  assert.equal(xml.status, 415);
  const text = await call(venue.url, 'POST', '/api/v1/orders', { rawBody: 'hello', headers: { 'content-type': 'text/plain' } });
  assert.equal(text.status, 401, 'unsigned, whatever the content');
  const garbage = ['[]', 'null', '"x"', '{"market":{"$gt":""}}', '{"market":"BTC-USDT","side":"buy","type":"limit","price":"1","quantity":"1","expire_time":1e400}'];
  for (const raw of garbage) {
    const response = await venue.signed(alice, 'POST', '/api/v1/orders', JSON.parse(raw.replace('1e400', '1')));
    assert.ok(response.status >= 400 && response.status < 500, `${raw} → ${response.status}`);
  }
  const notFound = await call(venue.url, 'GET', '/api/v1/nothing-here');
  assert.equal(notFound.status, 404);
});

test('the ledger lists every balance change with the balance after it, newest first, paginated', async () => {
  const page = await venue.signed(alice, 'GET', '/api/v1/ledger?asset=USDT&limit=2');
  assert.equal(page.status, 200);
  assert.equal(page.body.entries.length, 2);
  const balances = await venue.signed(alice, 'GET', '/api/v1/balances');
  const usdt = balances.body.balances.find((b: { asset: string }) => b.asset === 'USDT');
  assert.equal(page.body.entries[0].available, usdt.available, 'the newest entry ends at the current balance');
  const all = await venue.signed(alice, 'GET', '/api/v1/ledger?asset=USDT&limit=500');
  const kinds = new Set(all.body.entries.map((e: { kind: string }) => e.kind));
  assert.ok(kinds.has('deposit') && kinds.has('place_order') && kinds.has('cancel_order'), [...kinds].join());
  const next = await venue.signed(alice, 'GET', `/api/v1/ledger?asset=USDT&limit=2&before=${page.body.next_before}`);
  assert.equal(next.body.entries[0].id, all.body.entries[2].id);
  // Changes add up: the oldest entry starts from zero, each later one moves the previous balance.
  const oldestFirst = [...all.body.entries].reverse();
  let available = 0n;
  for (const entry of oldestFirst) {
    available += BigInt(entry.available_change.replace('.', ''));
    assert.equal(available, BigInt(entry.available.replace('.', '')));
  }
});

test('a read waits for a lagging read model to include every write acknowledged before it', async () => {
  // The projection thread stalls 300 ms before each batch: a read that did not wait would miss the fill.
  const lagging = await Venue.start({ projectionDelayMs: 300 });
  try {
    const buyer = await lagging.trader('lag-buyer@example.com', { USDT: '10000' });
    const seller = await lagging.trader('lag-seller@example.com', { BTC: '1' });
    const buy = await lagging.signed(buyer, 'POST', '/api/v1/orders', order({ price: '31000.00', quantity: '0.0010' }));
    const sell = await lagging.signed(seller, 'POST', '/api/v1/orders', order({ side: 'sell', price: '31000.00', quantity: '0.0010' }));
    assert.equal(sell.body.status, 'FILLED');
    const started = performance.now();
    const read = await lagging.signed(buyer, 'GET', `/api/v1/orders/${buy.body.id}`);
    assert.equal(read.body.status, 'FILLED', JSON.stringify(read.body));
    assert.equal(read.body.fills.length, 1);
    const trades = await lagging.signed(seller, 'GET', '/api/v1/trades?market=BTC-USDT');
    assert.equal(trades.body.trades.length, 1, JSON.stringify(trades.body));
    assert.ok(performance.now() - started >= 100, 'the read was held back until the read model caught up');
  } finally {
    await lagging.stop();
  }
});

test('reads see every acknowledged write at once, though the read model is projected on another thread', async () => {
  // 40 crossing pairs placed concurrently: each sell fills a buy as soon as it is acknowledged.
  const placed = await Promise.all(Array.from({ length: 40 }, (_, i) => Promise.all([
    venue.signed(alice, 'POST', '/api/v1/orders', order({ price: '31000.00', quantity: '0.0010', client_order_id: `ryw-b${i}` })),
    venue.signed(bob, 'POST', '/api/v1/orders', order({ side: 'sell', price: '31000.00', quantity: '0.0010', client_order_id: `ryw-s${i}` })),
  ])));
  for (const [buy, sell] of placed) {
    assert.equal(buy.status, 201);
    assert.equal(sell.status, 201);
    // Immediately after each 201: the closed order, its fills and the ledger are all there.
    const read = await venue.signed(bob, 'GET', `/api/v1/orders/${sell.body.id}`);
    assert.equal(read.body.status, 'FILLED', JSON.stringify(read.body));
    assert.equal(read.body.fills.length, 1);
  }
  const ledger = await venue.signed(alice, 'GET', '/api/v1/ledger?asset=BTC&limit=500');
  assert.ok(ledger.body.entries.length >= 40);
  const health = await call(venue.url, 'GET', '/health');
  assert.equal(health.body.read_model, 'ok');
});

test('an account holds at most 30 live API keys: the 31st is refused 409 TOO_MANY_KEYS and changes nothing, a revoked or expired key frees a place, and a sub-account has places of its own', async () => {
  const dana = await venue.trader('dana-keys@example.com', {});
  const sub = (await venue.signed(dana, 'POST', '/api/v1/accounts', { label: 'bots' })).body.account as number;
  const create = (extra: Record<string, unknown> = {}) => venue.admin('/apikeys', { email: 'dana-keys@example.com', permissions: ['read'], ...extra });
  const expiring = await create({ expires_at: Date.now() + 1_500 });
  assert.equal(expiring.status, 201);
  const made = [dana.key, expiring.body.key as string];
  for (let i = 0; i < 28; i++) {
    const key = await create();
    assert.equal(key.status, 201, JSON.stringify(key.body));
    made.push(key.body.key as string);
  }
  const over = await create();
  assert.deepEqual([over.status, over.body.error.code], [409, 'TOO_MANY_KEYS']);
  const listed = await venue.admin('/apikeys?email=dana-keys%40example.com', undefined, 'GET');
  assert.equal(listed.body.keys.length, 30, 'the refused key was not made');
  assert.equal((await create({ account: sub })).status, 201, 'the sub-account has its own thirty');
  assert.equal((await venue.admin(`/apikeys/${made[5]}?email=dana-keys%40example.com`, undefined, 'DELETE')).status, 200);
  assert.equal((await create()).status, 201, 'a revoked key frees its place');
  assert.equal((await create()).body.error.code, 'TOO_MANY_KEYS');
  await new Promise((r) => setTimeout(r, Math.max(0, expiring.body.expires_at - Date.now() + 50)));
  assert.equal((await create()).status, 201, 'so does an expired one');
});
