import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { call } from './support/api-client.js';
import type { Credentials } from './support/api-client.js';
import { admin, CLI, startServer } from './support/server-process.js';

/** A user with 1,000,000 USDT and a read+trade key, made over the admin API. */
async function trader(url: string, dataDir: string, email: string): Promise<Credentials> {
  await admin(url, dataDir, '/users', { email, password: 'correct horse battery' });
  await admin(url, dataDir, '/deposits', { email, asset: 'USDT', amount: '1000000' });
  const key = await admin(url, dataDir, '/apikeys', { email, permissions: ['read', 'trade'] });
  return { key: key.key, secret: key.secret };
}

/**
 * A whole BTC-USDT price 0.6 × the demo maker's best bid: never filled, yet inside the market's
 * price band (0.4–2.5 × the last price). The maker trades from the start, so a fixed price is refused.
 */
async function restingBidPrice(url: string): Promise<number> {
  let bids: [string, string][] = [];
  for (const deadline = Date.now() + 10_000; bids.length === 0 && Date.now() < deadline;) {
    bids = (await call(url, 'GET', '/api/v1/markets/BTC-USDT/depth')).body.bids;
    if (bids.length === 0) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(bids.length > 0, 'the demo maker quotes BTC-USDT');
  return Math.floor((Number(bids[0]![0].split('.')[0]) * 6) / 10);
}

type Started = { child: ChildProcess; url: string };

/**
 * Runs `body` with a fresh data folder and a way to start `bourse start` on it; afterwards every
 * server it started that still runs is killed, and the folder removed.
 */
async function inDataDir(prefix: string, body: (dataDir: string, start: (args?: string[]) => Promise<Started>) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const children: ChildProcess[] = [];
  try {
    await body(dataDir, async (args) => {
      const started = await startServer(dataDir, args);
      children.push(started.child);
      return started;
    });
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Stops a server gracefully and waits for it to exit. */
async function stopGracefully(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

/**
 * 16 clients placing resting buys, each waiting for its answer before the next, until stopped or
 * the server is gone: which client order ids were acknowledged (201, with the order id), which
 * were answered otherwise (with the status and error code), and which got no answer.
 */
function orderBurst(url: string, credentials: Credentials, basePrice: number) {
  const acknowledged = new Map<string, string>();
  const refused = new Map<string, string>();
  /** Sent, but the connection failed before an answer came. */
  const unanswered = new Set<string>();
  let stopped = false;
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !stopped; i++) {
      const clientOrderId = `w${w}-${i}`;
      try {
        const response = await call(url, 'POST', '/api/v1/orders', {
          credentials, body: { market: 'BTC-USDT', side: 'buy', type: 'limit', price: String(basePrice + (i % 50)), quantity: '0.0010', client_order_id: clientOrderId },
        });
        if (response.status === 201) acknowledged.set(clientOrderId, response.body.id);
        else refused.set(clientOrderId, `${response.status} ${response.body?.error?.code}`);
      } catch {
        unanswered.add(clientOrderId);
        return; // connection refused or reset: the server is gone
      }
    }
  };
  const workers = Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));
  return {
    acknowledged,
    refused,
    unanswered,
    /** Resolves once every client has found the server gone. */
    ended: workers,
    /** Resolves once n orders are acknowledged (whatever the host's speed), or after 20 s. */
    async acknowledgedAtLeast(n: number): Promise<void> {
      const deadline = Date.now() + 20_000;
      while (acknowledged.size < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.ok(acknowledged.size >= n, `only ${acknowledged.size} orders acknowledged in 20 s`);
    },
    /** Lets each client finish the order it is waiting on, or find the server gone. */
    async stop(): Promise<void> {
      stopped = true;
      await workers;
    },
  };
}

/** Every acknowledged order is on the (restarted) server, open, under its client order id. */
async function assertAllPresent(url: string, credentials: Credentials, acknowledged: Map<string, string>): Promise<void> {
  for (const [clientOrderId, id] of acknowledged) {
    const response = await call(url, 'GET', `/api/v1/orders/${id}`, { credentials });
    assert.equal(response.status, 200, `order ${id} (${clientOrderId}) after restart`);
    assert.equal(response.body.client_order_id, clientOrderId);
    assert.equal(response.body.status, 'NEW');
  }
}

test('SIGKILL during a burst of orders: every order that got a 2xx is there after restart', () => inDataDir('bourse-kill-', async (dataDir, start) => {
  let { child, url } = await start();
  const credentials = await trader(url, dataDir, 'burst@example.com');
  const burst = orderBurst(url, credentials, await restingBidPrice(url));
  await burst.acknowledgedAtLeast(100);
  child.kill('SIGKILL');
  await burst.stop();

  ({ child, url } = await start());
  await assertAllPresent(url, credentials, burst.acknowledged);
  console.log(`durability: ${burst.acknowledged.size} acknowledged, all present after SIGKILL and restart`);
  await stopGracefully(child);
}));

test('SIGTERM during a burst of orders: every order is answered 201 and kept, or refused with 503 UNAVAILABLE or left unanswered and not placed; the stop journals and snapshots it all and exits 0 at once', () => inDataDir('bourse-term-', async (dataDir, start) => {
  let { child, url } = await start();
  const credentials = await trader(url, dataDir, 'drain@example.com');
  await admin(url, dataDir, '/markets/BTC-USDT/limits', { max_open_orders: 0 });
  let printed = '';
  child.stdout!.on('data', (chunk: Buffer) => { printed += chunk.toString(); });
  const burst = orderBurst(url, credentials, await restingBidPrice(url));
  await burst.acknowledgedAtLeast(100);
  const terminated = child;
  const exited = new Promise<number | null>((resolve) => terminated.once('exit', (code) => resolve(code)));
  const signalled = Date.now();
  terminated.kill('SIGTERM');
  await burst.ended; // the clients keep sending until the server is gone
  assert.equal(await exited, 0, 'a graceful stop exits 0');
  // Before, connections busy at the signal were kept alive after their answer for Node's
  // keepAliveTimeout (72 s), and the stop waited for them.
  assert.ok(Date.now() - signalled < 15_000, `the stop took ${Date.now() - signalled} ms`);
  for (const [clientOrderId, refusal] of burst.refused) assert.equal(refusal, '503 UNAVAILABLE', clientOrderId);
  const stopped = JSON.parse(printed.split('\n').find((line) => line.includes('"stopped"'))!) as { lastSeq: number; stateHash: string };
  const verify = JSON.parse(execFileSync(process.execPath, [CLI, 'verify', '--data', dataDir]).toString()) as { lastSeq: number; stateHash: string; snapshotAgrees: boolean; snapshotSeq: number };
  assert.deepEqual([verify.lastSeq, verify.stateHash], [stopped.lastSeq, stopped.stateHash], 'the journal holds exactly the state the server stopped with');
  assert.equal(verify.snapshotSeq, stopped.lastSeq, 'the stop wrote a snapshot at its last seq');
  assert.equal(verify.snapshotAgrees, true);

  ({ child, url } = await start());
  await assertAllPresent(url, credentials, burst.acknowledged);
  for (const clientOrderId of [...burst.refused.keys(), ...burst.unanswered]) {
    const found = await call(url, 'GET', `/api/v1/orders?client_order_id=${clientOrderId}`, { credentials });
    assert.deepEqual(found.body.orders, [], `${clientOrderId} got no 201, so it was not placed`);
  }
  console.log(`graceful stop after ${Date.now() - signalled} ms: ${burst.acknowledged.size} acknowledged and present, ${burst.refused.size} refused and ${burst.unanswered.size} unanswered, none placed`);
  await stopGracefully(child);
}));

test('an acknowledged dead man\'s switch survives a crash: after the restart the server\'s own tick cancels the orders of the bot that never came back', () => inDataDir('bourse-switch-', async (dataDir, start) => {
  let { child, url } = await start();
  const credentials = await trader(url, dataDir, 'bot@example.com');
  const price = String(await restingBidPrice(url));
  const placed = await call(url, 'POST', '/api/v1/orders', { credentials, body: { market: 'BTC-USDT', side: 'buy', type: 'limit', price, quantity: '0.0010' } });
  assert.equal(placed.status, 201, JSON.stringify(placed.body));
  const armed = await call(url, 'POST', '/api/v1/orders/cancel-after', { credentials, body: { timeout_ms: 1_500 } });
  assert.equal(armed.status, 200);
  const crashed = child;
  crashed.kill('SIGKILL');
  await new Promise((r) => crashed.once('exit', r));
  await new Promise((r) => setTimeout(r, Math.max(0, armed.body.trigger_time - Date.now()) + 200));

  // Without --demo no market maker sends commands: only the server's deadline tick can fire the switch.
  ({ child, url } = await start([]));
  let order: { status: string; reason: string | null } = { status: '', reason: null };
  for (const deadline = Date.now() + 5_000; Date.now() < deadline;) {
    order = (await call(url, 'GET', `/api/v1/orders/${placed.body.id}`, { credentials })).body;
    if (order.status !== 'NEW') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual([order.status, order.reason], ['CANCELLED', 'CANCEL_AFTER']);
  assert.equal((await call(url, 'GET', '/api/v1/orders/cancel-after', { credentials })).body.trigger_time, null);
  await stopGracefully(child);
}));
