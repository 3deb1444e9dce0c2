import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from './support/api-client.js';
import { Venue } from './support/venue.js';

test('operations: health, Prometheus metrics, the OpenAPI document, and the docs page that the bare address leads to', async () => {
  const venue = await Venue.start();
  try {
    const trader = await venue.trader('ops@example.com', { USDT: '1000' });
    await venue.signed(trader, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '100.00', quantity: '0.0100' });
    const health = await call(venue.url, 'GET', '/health');
    assert.deepEqual(health.body, { status: 'ok', seq: venue.exchange.sequencer.lastSeq, read_model: 'ok' });

    assert.equal((await call(venue.url, 'GET', '/api/v1/nowhere')).status, 404);
    const metrics = await fetch(`${venue.url}/metrics`);
    const text = await metrics.text();
    assert.match(text, /bourse_http_request_duration_seconds_bucket\{[^}]*route="\/api\/v1\/orders"[^}]*status="201"/);
    assert.match(text, /bourse_http_request_duration_seconds_count\{method="GET",route="unknown",status="404"\} 1/);
    // Buckets are cumulative and end at +Inf with the count, as Prometheus expects of a histogram.
    const series = '{method="GET",route="/health",status="200"}';
    const buckets = [...text.matchAll(/bourse_http_request_duration_seconds_bucket\{le="([^"]+)",method="GET",route="\/health",status="200"\} (\d+)/g)].map((m) => [m[1], Number(m[2])] as const);
    assert.equal(buckets.at(-1)![0], '+Inf');
    assert.ok(buckets.every(([, count], i) => i === 0 || count >= buckets[i - 1]![1]));
    assert.ok(text.includes(`bourse_http_request_duration_seconds_count${series} ${buckets.at(-1)![1]}`));
    assert.match(text, /bourse_engine_queue_depth 0/);
    assert.match(text, new RegExp(`bourse_journal_last_seq ${venue.exchange.sequencer.lastSeq}`));
    assert.match(text, /bourse_engine_commands_total \d+/);

    const openapi = await call(venue.url, 'GET', '/openapi.json');
    assert.equal(openapi.body.openapi, '3.0.3');
    for (const path of ['/api/v1/orders', '/api/v1/orders/{id}', '/api/v1/markets/{market}/depth', '/api/v1/balances', '/api/v1/markets/{market}/candles']) {
      assert.ok(openapi.body.paths[path] !== undefined, `${path} is documented`);
    }
    assert.deepEqual(openapi.body.paths['/api/v1/orders'].post.requestBody.content['application/json'].schema.required, ['market', 'side', 'type']);
    // The docs page names and groups every operation and says how each is authenticated (signed
    // and session routes by the hook they carry); the table of lines holds no route that does not exist.
    const operations = Object.entries(openapi.body.paths as Record<string, Record<string, { summary?: string; tags?: string[]; security?: unknown[]; description?: string }>>)
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, ...op })));
    assert.deepEqual(operations.filter((op) => !op.summary || op.tags?.length !== 1).map((op) => op.key), [], 'every operation has a line and a group');
    const { DOCUMENTED_ROUTES } = await import('../src/gateway/route-docs.js');
    const documented = DOCUMENTED_ROUTES.map((route) => route.replace(/:(\w+)/g, '{$1}')).sort();
    assert.deepEqual(documented, operations.map((op) => op.key).sort());
    const op = (key: string) => operations.find((o) => o.key === key)!;
    assert.deepEqual(op('POST /api/v1/orders').security, [{ key: [], timestamp: [], signature: [] }]);
    assert.match(op('POST /api/v1/orders').description!, /`trade` permission/);
    assert.match(op('POST /api/v1/withdrawals').description!, /`withdraw` permission/);
    assert.deepEqual(op('GET /api/v1/markets/{market}/depth').security, []);
    assert.deepEqual(op('GET /api/v1/auth/me').security, [{ session: [] }]);
    assert.deepEqual(op('POST /admin/v1/deposits').security, [{ admin: [] }]);
    // Every API answer documents the rate-limit headers, and every API request the 429 it may get.
    const placing = openapi.body.paths['/api/v1/orders'].post.responses;
    assert.deepEqual(Object.keys(placing['201'].headers), ['X-RateLimit-Limit', 'X-RateLimit-Remaining']);
    assert.deepEqual(Object.keys(placing['429'].headers), ['Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining']);
    assert.match(placing['429'].description, /RATE_LIMITED.*BANNED.*TOO_MANY_ORDERS/);
    assert.ok(openapi.body.paths['/api/v1/account/rate-limits'].get.responses['429'] !== undefined);
    assert.equal(openapi.body.paths['/admin/v1/deposits'].post.responses['429'], undefined, 'the admin API has no budget to document');
    // Market data and the account's reads show what they answer.
    const answer = (path: string) => openapi.body.paths[path].get.responses['200'].content['application/json'].schema.properties;
    assert.deepEqual(Object.keys(answer('/api/v1/markets/{market}/depth')), ['market', 'seq', 'bids', 'asks']);
    assert.ok('best_bid' in answer('/api/v1/markets/{market}/ticker') && 'next_before' in answer('/api/v1/markets/{market}/trades'));
    assert.ok('fills' in answer('/api/v1/orders/{id}') && 'pending' in answer('/api/v1/balances').balances.items.properties);
    // A route serialises with its declared response, which drops any field it does not list: every
    // field the views produce must come through.
    const { marketOut, tickerOf } = await import('../src/gateway/market-views.js');
    const { findOrder } = await import('../src/gateway/wire.js');
    const markets = await call(venue.url, 'GET', '/api/v1/markets');
    assert.deepEqual(Object.keys(markets.body.markets[0]), Object.keys(marketOut(venue.exchange.engine.marketList[0]!)));
    const ticker = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/ticker');
    assert.deepEqual(Object.keys(ticker.body), Object.keys(tickerOf(venue.exchange, 'BTC-USDT')));
    const placedId = (await venue.signed(trader, 'GET', '/api/v1/orders')).body.orders[0].id as string;
    const fetched = await venue.signed(trader, 'GET', `/api/v1/orders/${placedId}`);
    assert.deepEqual(Object.keys(fetched.body), [...Object.keys(findOrder(venue.exchange, Number(placedId), trader.account)!), 'fills']);
    const root = await fetch(`${venue.url}/`, { redirect: 'manual' });
    assert.equal(root.status, 302, 'the bare address leads to the docs page');
    assert.equal(root.headers.get('location'), '/docs/');
    const docs = await fetch(`${venue.url}/docs/`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger/i);
  } finally {
    await venue.stop();
  }
});

test('the read-model thread runs at a lower priority than the engine thread (Linux)', { skip: process.platform !== 'linux' }, async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  // Field 19 of /proc/<pid>/task/<tid>/stat is the thread's nice value.
  const nice = (tid: string): number => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
  const venue = await Venue.start();
  try {
    const own = nice(String(process.pid));
    const lowered = readdirSync('/proc/self/task').filter((tid) => nice(tid) === Math.min(19, own + 10));
    assert.equal(lowered.length, 1, 'one thread, the projection thread, yields to the others');
  } finally {
    await venue.stop();
  }
});

test('the read model rebuilt from the journal equals the one kept live', async () => {
  const { rebuildReadModel } = await import('../src/exchange.js');
  const Database = (await import('better-sqlite3')).default;
  const { join } = await import('node:path');
  const { rmSync } = await import('node:fs');
  const venue = await Venue.start();
  const alice = await venue.trader('rb-alice@example.com', { USDT: '100000' });
  const bob = await venue.trader('rb-bob@example.com', { BTC: '2' });
  for (let i = 0; i < 10; i++) {
    await venue.signed(alice, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: `${30_000 + i * 10}.00`, quantity: '0.0100' });
  }
  await venue.signed(bob, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'sell', type: 'market', quantity: '0.0550' });
  await venue.signed(alice, 'DELETE', '/api/v1/orders?market=BTC-USDT');
  await venue.stop(true);
  const dump = (): string => {
    const db = new Database(join(venue.dataDir, 'store.db'), { readonly: true });
    const tables = ['orders', 'fills', 'trades', 'candles'].map((t) => db.prepare(`SELECT * FROM ${t} ORDER BY 1, 2, 3`).all());
    db.close();
    return JSON.stringify(tables);
  };
  try {
    const live = dump();
    assert.match(live, /FILLED/);
    rmSync(join(venue.dataDir, 'store.db'), { force: true });
    rmSync(join(venue.dataDir, 'store.db-wal'), { force: true });
    rmSync(join(venue.dataDir, 'store.db-shm'), { force: true });
    rebuildReadModel(venue.dataDir);
    assert.equal(dump(), live);
  } finally {
    rmSync(venue.dataDir, { recursive: true, force: true });
  }
});

test('an invariant broken in the replica of the engine halts trading: health answers 503 and says why, new orders get 503, acknowledged ones stay', async () => {
  const first = await Venue.start();
  const buyer = await first.trader('audit@example.com', { USDT: '10000' });
  const breakAt = first.exchange.sequencer.lastSeq + 1;
  await first.stop(true);
  // The read-model thread's replica gains one unit of money after seq breakAt; its audit must notice,
  // and the replica, which would otherwise snapshot after every batch, must not snapshot it.
  const venue = await Venue.start({ dataDir: first.dataDir, projectionBreakAtSeq: breakAt, snapshotEvery: 1 });
  try {
    const order = { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '30000.00', quantity: '0.0010' };
    const placed = await venue.signed(buyer, 'POST', '/api/v1/orders', order);
    assert.equal(placed.status, 201);
    assert.equal(venue.exchange.sequencer.lastSeq, breakAt);
    let health = await call(venue.url, 'GET', '/health');
    const deadline = Date.now() + 10_000;
    while (health.body.status === 'ok' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      health = await call(venue.url, 'GET', '/health');
    }
    assert.equal(health.body.status, 'failed');
    assert.equal(health.status, 503, 'a probe or load balancer reading the status takes the venue out');
    assert.equal((await call(venue.url, 'GET', '/api/v1/status')).body.status, 'halted', 'bots read it too');
    assert.match(health.body.error, new RegExp(`engine invariants broken at seq ${breakAt}: `));
    const refused = await venue.signed(buyer, 'POST', '/api/v1/orders', { ...order, price: '29000.00' });
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, 'UNAVAILABLE');
    assert.equal(venue.exchange.sequencer.lastSeq, breakAt, 'nothing was journaled after the halt');
    const read = await venue.signed(buyer, 'GET', `/api/v1/orders/${placed.body.id}`);
    assert.equal(read.body.status, 'NEW');
    assert.ok((await snapshotSeqs(venue.dataDir)).every((seq) => seq < breakAt), 'no snapshot of the broken books');
  } finally {
    await venue.stop();
  }
});

test('a failed read-model thread is restarted, catches up from the journal, and health recovers (200 throughout: trading goes on)', async () => {
  const first = await Venue.start();
  const buyer = await first.trader('restart-buyer@example.com', { USDT: '10000' });
  const seller = await first.trader('restart-seller@example.com', { BTC: '1' });
  const failAt = first.exchange.sequencer.lastSeq + 2;
  await first.stop(true);
  // The projection thread fails on the sell that fills the buy (seq failAt), then restarts.
  const venue = await Venue.start({ dataDir: first.dataDir, projectionFailAtSeq: failAt, projectionRestartMs: 1_000 });
  try {
    const order = { market: 'BTC-USDT', type: 'limit', price: '30000.00', quantity: '0.0010' };
    const buy = await venue.signed(buyer, 'POST', '/api/v1/orders', { ...order, side: 'buy' });
    const sell = await venue.signed(seller, 'POST', '/api/v1/orders', { ...order, side: 'sell' });
    assert.equal(sell.body.status, 'FILLED');
    assert.equal(venue.exchange.sequencer.lastSeq, failAt);
    let health = await call(venue.url, 'GET', '/health');
    // The thread reports its failure asynchronously and is restarted a second later: poll by time,
    // not by count, so that a loaded machine (the whole suite at once) still sees the failure.
    const failedBy = Date.now() + 5_000;
    while (!String(health.body.read_model).startsWith('failed') && Date.now() < failedBy) {
      await new Promise((r) => setTimeout(r, 5));
      health = await call(venue.url, 'GET', '/health');
    }
    assert.match(health.body.read_model, /^failed: test hook: projection fails at seq/);
    assert.equal(health.status, 200, 'trading goes on, so probes keep the venue in');
    // Trading goes on while the read model is down.
    const another = await venue.signed(buyer, 'POST', '/api/v1/orders', { ...order, side: 'buy', price: '29000.00' });
    assert.equal(another.status, 201);
    const deadline = Date.now() + 10_000;
    while (health.body.read_model !== 'ok' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      health = await call(venue.url, 'GET', '/health');
    }
    assert.equal(health.body.read_model, 'ok');
    // The batch that failed and the one after it are in the read model now.
    const read = await venue.signed(buyer, 'GET', `/api/v1/orders/${buy.body.id}`);
    assert.equal(read.body.status, 'FILLED', JSON.stringify(read.body));
    assert.equal(read.body.fills.length, 1);
    const open = await venue.signed(buyer, 'GET', '/api/v1/orders?status=open');
    assert.deepEqual(open.body.orders.map((o: { id: string }) => o.id), [another.body.id]);
  } finally {
    await venue.stop();
  }
});

/** Seqs of the snapshots in a venue's journal, oldest first (a read-only connection beside the writer's). */
async function snapshotSeqs(dataDir: string): Promise<number[]> {
  const Database = (await import('better-sqlite3')).default;
  const { join } = await import('node:path');
  const db = new Database(join(dataDir, 'journal.db'), { readonly: true });
  try {
    return (db.prepare('SELECT seq FROM snapshots ORDER BY seq').all() as { seq: number }[]).map((row) => row.seq);
  } finally {
    db.close();
  }
}

test('snapshots are taken by the read-model thread from its replica, never on the engine thread, and a restart starts from one with the same state', async () => {
  const every = 10;
  const venue = await Venue.start({ snapshotEvery: every });
  let stateHash = '';
  let lastSeq = 0;
  try {
    const trader = await venue.trader('snapshots@example.com', { USDT: '100000' });
    for (let i = 0; i < 40; i++) {
      const placed = await venue.signed(trader, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: `${20_000 + i}.00`, quantity: '0.0010' });
      assert.equal(placed.status, 201);
    }
    lastSeq = venue.exchange.sequencer.lastSeq;
    // The replica takes the snapshot after projecting the batch, and the writer stores it between batches.
    let seqs = await snapshotSeqs(venue.dataDir);
    const deadline = Date.now() + 5_000;
    while ((seqs.at(-1) ?? 0) <= lastSeq - every && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      seqs = await snapshotSeqs(venue.dataDir);
    }
    assert.ok(seqs.length > 0 && seqs.at(-1)! > lastSeq - every, `a snapshot within the last ${every} commands (have ${seqs.join(', ')}; last seq ${lastSeq})`);
    assert.ok(lastSeq >= 4 * every, 'enough commands for more snapshots than are kept');
    assert.equal(seqs.length, 3, 'only the newest three are kept');
    assert.equal(venue.exchange.sequencer.stats.snapshots, 0, 'the engine thread took none');
    const metrics = await (await fetch(`${venue.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`^bourse_journal_last_snapshot_seq ${seqs.at(-1)}$`, 'm'), 'operators see how far the newest snapshot is');
    stateHash = venue.exchange.engine.stateHash();
  } finally {
    await venue.stop(true);
  }
  const newest = (await snapshotSeqs(venue.dataDir)).at(-1)!;
  const again = await Venue.start({ dataDir: venue.dataDir });
  try {
    assert.equal(again.exchange.sequencer.recovery.snapshotSeq, newest, 'recovery starts from the replica\'s newest snapshot');
    assert.equal(again.exchange.sequencer.recovery.lastSeq, lastSeq);
    assert.equal(again.exchange.engine.stateHash(), stateHash);
  } finally {
    await again.stop();
  }
});

test('GET /api/v1/status tells a bot before it acts: online, each market\'s state, the assets whose deposits or withdrawals are suspended and why, and the operator\'s notice until it ends or is cleared', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now });
  try {
    const status = async () => (await call(venue.url, 'GET', '/api/v1/status')).body;
    const first = await status();
    assert.deepEqual([first.status, first.server_time, first.markets.trading, first.markets.halted, first.deposits_suspended, first.withdrawals_suspended, first.notice],
      ['online', now, ['BTC-USDT', 'ETH-USDT', 'ETH-BTC', 'BTC-EUR'], [], [], [], null]);

    assert.equal((await venue.admin('/markets/BTC-EUR/state', { state: 'halted' })).status, 200);
    assert.equal((await venue.admin('/markets/ETH-BTC/state', { state: 'cancel_only' })).status, 200);
    assert.equal((await venue.admin('/withdrawals/suspend', { asset: 'BTC', reason: 'Bitcoin node upgrade', operator: 'olivia' })).status, 200);
    const set = await call(venue.url, 'POST', '/admin/v1/notice', {
      headers: { authorization: `Bearer ${venue.exchange.adminToken}`, 'x-bourse-operator': 'olivia' }, body: { text: 'Maintenance 14:00–14:30 UTC: BTC-EUR halted', until: now + 3_600_000 },
    });
    assert.deepEqual(set.body, { text: 'Maintenance 14:00–14:30 UTC: BTC-EUR halted', actor: 'olivia', since: now, until: now + 3_600_000 });
    const during = await status();
    assert.deepEqual([during.markets.trading, during.markets.halted, during.markets.cancel_only], [['BTC-USDT', 'ETH-USDT'], ['BTC-EUR'], ['ETH-BTC']]);
    assert.deepEqual(during.withdrawals_suspended, [{ asset: 'BTC', reason: 'Bitcoin node upgrade', since: now }]);
    assert.deepEqual(during.notice, { text: 'Maintenance 14:00–14:30 UTC: BTC-EUR halted', since: now, until: now + 3_600_000 });

    now += 3_600_000;
    assert.equal((await status()).notice, null, 'a notice ends at its time');
    assert.equal((await venue.admin('/notice', { text: 'already over', until: now - 1 })).status, 400);
    assert.equal((await venue.admin('/notice', { text: '' })).status, 400);
    assert.equal((await venue.admin('/notice', { text: 'Incident: deposits delayed' })).status, 200);
    assert.equal((await status()).notice.until, null, 'until cleared');
    assert.deepEqual((await venue.admin('/notice', undefined, 'DELETE')).body, { cleared: true });
    assert.equal((await status()).notice, null);
    const audit = (await venue.admin('/audit?limit=10', undefined, 'GET')).body.actions.filter((a: { path: string }) => a.path === '/admin/v1/notice');
    assert.equal(audit.at(-1).subject.text, 'Maintenance 14:00–14:30 UTC: BTC-EUR halted', 'the audit trail keeps what was said');
  } finally {
    await venue.stop();
  }
});
