import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { call } from './support/api-client.js';
import type { Credentials } from './support/api-client.js';
import Database from 'better-sqlite3';
import { Venue } from './support/venue.js';
import { Engine } from '../src/core/index.js';
import type { Command } from '../src/core/index.js';
import { LiabilityReports } from '../src/funding/liabilities.js';
import { openFundingDb } from '../src/funding/store.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Proof {
  report: { id: string; root_hash: string; totals: Record<string, string> };
  assets: { asset: string; precision: number }[];
  root: { hash: string; sums: string[] };
  leaf: { salt: string; balances: string[] };
  path: { side: 'left' | 'right'; hash: string; sums: string[] }[];
}

/** A proof checked as the README tells a user to, written here rather than imported from the server. */
function readmeVerify(proof: Proof): { hash: string; sums: bigint[] } {
  const units = (amount: string, i: number): bigint => {
    assert.match(amount, new RegExp(`^(0|[1-9][0-9]*)\\.[0-9]{${proof.assets[i]!.precision}}$`), 'a non-negative amount with all its decimals');
    return BigInt(amount.replace('.', ''));
  };
  const text = (sums: bigint[]): string => sums.map((s, i) => {
    const p = proof.assets[i]!.precision;
    const digits = s.toString().padStart(p + 1, '0');
    return `${digits.slice(0, -p)}.${digits.slice(-p)}`;
  }).join(',');
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  let sums = proof.leaf.balances.map(units);
  let hash = sha(`leaf:${proof.leaf.salt}:${text(sums)}`);
  for (const step of proof.path) {
    const sibling = step.sums.map(units);
    sums = sums.map((s, i) => s + sibling[i]!);
    hash = step.side === 'left' ? sha(`node:${step.hash}:${hash}:${text(sums)}`) : sha(`node:${hash}:${step.hash}:${text(sums)}`);
  }
  return { hash, sums };
}

/** What the user holds in every asset over all their accounts: available + reserved + locked. */
async function holdings(venue: Venue, who: Credentials): Promise<Map<string, bigint>> {
  const accounts = await venue.signed(who, 'GET', '/api/v1/accounts');
  const held = new Map<string, bigint>();
  for (const { account } of accounts.body.accounts as { account: number }[]) {
    const balances = await venue.signed(who, 'GET', `/api/v1/balances?account=${account}`);
    for (const b of balances.body.balances as Record<string, string>[]) {
      const units = (a: string) => BigInt(a.replace('.', ''));
      held.set(b.asset!, (held.get(b.asset!) ?? 0n) + units(b.available!) + units(b.reserved!) + units(b.locked!));
    }
  }
  return held;
}

test("each user's proof of liabilities leads from their balances, sub-accounts and orders included, to the published root, whose totals are what the ledger owes users", async () => {
  const venue = await Venue.start();
  const folder = mkdtempSync(join(tmpdir(), 'bourse-proof-'));
  try {
    const traders: Credentials[] = [];
    for (let i = 0; i < 7; i++) traders.push(await venue.trader(`pol-${i}@example.com`, { USDT: `${1000 + i * 37}.25`, BTC: `0.${i + 1}` }, ['read', 'trade', 'withdraw'], ['127.0.0.1']));
    // Orders hold funds (reserved), a trade moves them, a sub-account holds some.
    await venue.signed(traders[0]!, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'sell', type: 'limit', price: '30000.00', quantity: '0.0500' });
    await venue.signed(traders[1]!, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '30000.00', quantity: '0.0200' });
    await venue.signed(traders[2]!, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '20000.00', quantity: '0.0100' });
    const sub = await venue.signed(traders[3]!, 'POST', '/api/v1/accounts', { label: 'savings' });
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    const moved = await venue.signed(traders[3]!, 'POST', '/api/v1/transfers', { to_account: sub.body.account, asset: 'USDT', amount: '500.00', request_id: 'to-savings' });
    assert.equal(moved.status, 201, JSON.stringify(moved.body));

    const published = await venue.admin('/liabilities', {});
    assert.equal(published.status, 201, JSON.stringify(published.body));
    const ledger = await venue.admin('/ledger', undefined, 'GET');
    for (const row of ledger.body.assets as Record<string, string>[]) {
      assert.equal(published.body.totals[row.asset!], row.users_total, `${row.asset}: the report owes what the ledger says users hold`);
    }
    const listed = await call(venue.url, 'GET', '/api/v1/liabilities');
    assert.deepEqual(listed.body.reports[0], published.body, 'the report is public');
    const metrics = await (await fetch(`${venue.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`bourse_liability_report_last_timestamp_seconds ${published.body.time / 1000}\\b`), 'the operator can alert on a stale report');

    for (const trader of traders) {
      const answer = await venue.signed(trader, 'GET', '/api/v1/account/liabilities');
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const proof = answer.body as Proof;
      const folded = readmeVerify(proof);
      assert.equal(folded.hash, published.body.root_hash, 'the path leads to the published root');
      assert.deepEqual(proof.assets.map((a, i) => [a.asset, folded.sums[i]]), proof.assets.map((a) => [a.asset, BigInt(published.body.totals[a.asset].replace('.', ''))]));
      const held = await holdings(venue, trader);
      proof.assets.forEach((a, i) => assert.equal(BigInt(proof.leaf.balances[i]!.replace('.', '')), held.get(a.asset) ?? 0n, `${a.asset}: the leaf holds what the user holds`));
      assert.ok(proof.path.length >= 2, 'a path up a tree of 7 leaves (one carried up where a level is odd)');
    }

    // The CLI checks a saved proof offline, and refuses one whose balance was changed.
    const saved = (await venue.signed(traders[3]!, 'GET', '/api/v1/account/liabilities')).body as Proof;
    const good = join(folder, 'proof.json');
    writeFileSync(good, JSON.stringify(saved));
    const checked = spawnSync(process.execPath, [CLI, 'verify-liabilities', '--file', good]);
    assert.equal(checked.status, 0, checked.stderr.toString());
    const verdict = JSON.parse(checked.stdout.toString());
    assert.equal(verdict.verified, true);
    assert.equal(verdict.balances.USDT, saved.leaf.balances[saved.assets.findIndex((a) => a.asset === 'USDT')]);
    const usdt = saved.assets.findIndex((a) => a.asset === 'USDT');
    const shrunk = structuredClone(saved);
    shrunk.leaf.balances[usdt] = '1.000000';
    const bad = join(folder, 'shrunk.json');
    writeFileSync(bad, JSON.stringify(shrunk));
    const refused = spawnSync(process.execPath, [CLI, 'verify-liabilities', '--file', bad]);
    assert.equal(refused.status, 1);
    assert.equal(JSON.parse(refused.stdout.toString()).verified, false);

    // A later report counts later users and balances; the earlier one stays as published.
    const late = await venue.trader('pol-late@example.com', { USDT: '5' });
    assert.equal((await venue.signed(late, 'GET', '/api/v1/account/liabilities')).body.error.code, 'NOT_IN_REPORT');
    const second = await venue.admin('/liabilities', {});
    assert.notEqual(second.body.id, published.body.id);
    assert.equal(readmeVerify((await venue.signed(late, 'GET', '/api/v1/account/liabilities')).body).hash, second.body.root_hash);
    const earlier = await venue.signed(traders[0]!, 'GET', `/api/v1/account/liabilities?report=${published.body.id}`);
    assert.equal(readmeVerify(earlier.body).hash, published.body.root_hash);
    assert.equal((await venue.signed(late, 'GET', `/api/v1/account/liabilities?report=${published.body.id}`)).status, 404);
  } finally {
    await venue.stop();
    rmSync(folder, { recursive: true, force: true });
  }
});

test('a proof cannot hide a liability: a sibling with smaller or negative sums, or a swapped side, no longer leads to the root', async () => {
  const venue = await Venue.start();
  try {
    const traders: Credentials[] = [];
    for (let i = 0; i < 5; i++) traders.push(await venue.trader(`pol-tamper-${i}@example.com`, { USDT: `${100 * (i + 1)}` }));
    const report = (await venue.admin('/liabilities', {})).body;
    const proof = (await venue.signed(traders[0]!, 'GET', '/api/v1/account/liabilities')).body as Proof;
    assert.equal(readmeVerify(proof).hash, report.root_hash);
    const usdt = proof.assets.findIndex((a) => a.asset === 'USDT');
    const smaller = structuredClone(proof);
    smaller.path[0]!.sums[usdt] = '0.000000';
    assert.notEqual(readmeVerify(smaller).hash, report.root_hash, 'a sibling that owes less changes the root');
    const negative = structuredClone(proof);
    negative.path[0]!.sums[usdt] = '-100.000000';
    assert.throws(() => readmeVerify(negative), 'a negative amount is refused outright');
    const swapped = structuredClone(proof);
    swapped.path[0]!.side = swapped.path[0]!.side === 'left' ? 'right' : 'left';
    assert.notEqual(readmeVerify(swapped).hash, report.root_hash);
    // The salt is the user's: another user's leaf with this user's salt leads nowhere.
    const other = (await venue.signed(traders[1]!, 'GET', '/api/v1/account/liabilities')).body as Proof;
    assert.notEqual(other.leaf.salt, proof.leaf.salt);
    assert.notEqual(readmeVerify({ ...other, leaf: { ...other.leaf, salt: proof.leaf.salt } }).hash, report.root_hash);
    // Publishing is the operator's: the admin API only.
    assert.equal((await venue.signed(traders[0]!, 'POST', '/api/v1/liabilities', {})).status, 404);
  } finally {
    await venue.stop();
  }
});

test('a report whose building a stop interrupted is never shown: the next start clears it, and publishing goes on', async () => {
  const venue = await Venue.start();
  const dataDir = venue.dataDir;
  try {
    await venue.trader('pol-crash@example.com', { USDT: '10' });
    const first = await venue.admin('/liabilities', {});
    assert.equal(first.status, 201);
    await venue.stop(true);
    // What a stop in the middle of publishing leaves: the report row and part of its tree.
    const db = new Database(join(dataDir, 'funding.db'));
    db.prepare("INSERT INTO liability_reports (seq, taken_at, assets, users, actor, state) VALUES (1, 1, '[]', 1, 'x', 'building')").run();
    const interrupted = (db.prepare('SELECT MAX(id) AS id FROM liability_reports').get() as { id: number }).id;
    db.prepare("INSERT INTO liability_nodes (report, level, position, hash, sums) VALUES (?, 0, 0, 'h', '0')").run(interrupted);
    db.close();
    const again = await Venue.start({ dataDir });
    try {
      const reports = (await call(again.url, 'GET', '/api/v1/liabilities')).body.reports as { id: string }[];
      assert.deepEqual(reports.map((r) => r.id), [first.body.id]);
      const check = new Database(join(dataDir, 'funding.db'), { readonly: true });
      assert.equal((check.prepare('SELECT COUNT(*) AS n FROM liability_nodes WHERE report = ?').get(interrupted) as { n: number }).n, 0, 'its nodes went with it');
      check.close();
      assert.equal((await again.admin('/liabilities', {})).status, 201);
    } finally {
      await again.stop();
    }
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
});

test('a report reads the balances on the read-model thread, waiting for it to reach the exchange\'s seq, and on the serving thread if that thread has failed', async () => {
  // The read model lags 300 ms a batch: a report that did not wait would miss the last deposits.
  const lagging = await Venue.start({ projectionDelayMs: 300 });
  try {
    const trader = await lagging.trader('pol-lag@example.com', { USDT: '100.50' });
    // Acknowledged, so journaled, while the read-model thread is still behind.
    for (let i = 0; i < 4; i++) await lagging.exchange.submit({ type: 'deposit', account: trader.account, asset: 'USDT', amount: 1_000_000, key: `lag-${i}` });
    const seq = lagging.exchange.sequencer.lastSeq;
    const published = await lagging.admin('/liabilities', {});
    assert.equal(published.status, 201, JSON.stringify(published.body));
    assert.equal(published.body.seq, seq, 'the report is at the seq the exchange had reached when asked');
    const ledger = await lagging.admin('/ledger', undefined, 'GET');
    for (const row of ledger.body.assets as Record<string, string>[]) assert.equal(published.body.totals[row.asset!], row.users_total, row.asset);
  } finally {
    await lagging.stop();
  }
  // A read model that fails on the first command after the demo venue's (and is not restarted for a
  // minute): the report reads the engine here.
  const probe = await Venue.start();
  const started = probe.exchange.sequencer.lastSeq;
  await probe.stop();
  const failing = await Venue.start({ projectionFailAtSeq: started + 1, projectionRestartMs: 60_000 });
  try {
    const trader = await failing.trader('pol-failing@example.com', { USDT: '7.25' });
    assert.match((await call(failing.url, 'GET', '/health')).body.read_model, /^failed: /);
    const published = await failing.admin('/liabilities', {});
    assert.equal(published.status, 201, JSON.stringify(published.body));
    assert.equal(published.body.users, 1);
    const proof = (await failing.signed(trader, 'GET', '/api/v1/account/liabilities')).body as Proof;
    assert.equal(readmeVerify(proof).sums[proof.assets.findIndex((a) => a.asset === 'USDT')], 7_250_000n);
  } finally {
    await failing.stop();
  }
});

test('a user\'s holdings cannot pass 2^53 minor units, since an asset\'s supply cannot: at the bound, over two accounts, the report counts them exactly', async () => {
  const engine = new Engine();
  let seq = 0;
  const run = (cmd: Command) => engine.apply({ seq: ++seq, ts: 1, cmd });
  run({ type: 'create_asset', code: 'SAT', precision: 8 });
  run({ type: 'create_user', user: 1 });
  for (const account of [1, 2]) run({ type: 'create_account', account, user: 1 });
  run({ type: 'deposit', account: 1, asset: 'SAT', amount: 2 ** 52, key: 'd1' });
  run({ type: 'deposit', account: 2, asset: 'SAT', amount: 2 ** 52 - 1, key: 'd2' });
  const refused = run({ type: 'deposit', account: 2, asset: 'SAT', amount: 1, key: 'd3' });
  assert.ok(refused.some((e) => e.type === 'command_rejected' && e.reason === 'OUT_OF_RANGE'), 'the supply stops at 2^53 − 1');
  assert.deepEqual([...engine.userHoldings(['SAT']).sums], [Number.MAX_SAFE_INTEGER]);
  const folder = mkdtempSync(join(tmpdir(), 'bourse-pol-bound-'));
  try {
    const reports = new LiabilityReports(openFundingDb(join(folder, 'funding.db')), () => engine, Buffer.alloc(32, 1), () => 1);
    const report = await reports.publish('test');
    assert.deepEqual(report.totals, ['90071992.54740991']);
    assert.deepEqual(reports.proof(1, report.id)!.proof.leaf.balances, ['90071992.54740991']);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});

test('a report does not wait longer than holdingsWaitMs for a read-model thread far behind: it reads the balances here, at the exchange\'s seq', async () => {
  const venue = await Venue.start({ projectionDelayMs: 3_000, holdingsWaitMs: 200 });
  try {
    // One command the read-model thread will take three seconds to reach.
    await venue.exchange.submit({ type: 'create_user', user: 900_001 });
    const seq = venue.exchange.sequencer.lastSeq;
    const started = performance.now();
    const published = await venue.admin('/liabilities', {});
    assert.equal(published.status, 201, JSON.stringify(published.body));
    assert.equal(published.body.seq, seq);
    assert.ok(performance.now() - started < 2_000, `published after ${Math.round(performance.now() - started)} ms, not after the thread caught up`);
  } finally {
    await venue.stop();
  }
});
