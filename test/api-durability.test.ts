import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { call } from './support/api-client.js';
import type { Credentials } from './support/api-client.js';
import { admin, startServer } from './support/server-process.js';

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

test('SIGKILL during a burst of orders: every order that got a 2xx is there after restart', () => inDataDir('bourse-kill-', async (dataDir, start) => {
  let { child, url } = await start();
  const credentials = await trader(url, dataDir, 'burst@example.com');
  const basePrice = await restingBidPrice(url);
  const acknowledged = new Map<string, string>();
  let sent = 0;
  let stop = false;
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !stop; i++) {
      const clientOrderId = `w${w}-${i}`;
      sent += 1;
      try {
        const response = await call(url, 'POST', '/api/v1/orders', {
          credentials, body: { market: 'BTC-USDT', side: 'buy', type: 'limit', price: String(basePrice + (i % 50)), quantity: '0.0010', client_order_id: clientOrderId },
        });
        if (response.status === 201) acknowledged.set(clientOrderId, response.body.id);
      } catch {
        return; // connection refused or reset: the server is gone
      }
    }
  };
  const workers = Array.from({ length: 16 }, (_, w) => worker(w));
  // Kill once enough orders are acknowledged, whatever the host's speed, while the workers keep sending.
  const deadline = Date.now() + 20_000;
  while (acknowledged.size < 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  child.kill('SIGKILL');
  stop = true;
  await Promise.all(workers);
  assert.ok(acknowledged.size >= 100, `only ${acknowledged.size} orders acknowledged of ${sent} in 20 s`);

  ({ child, url } = await start());
  for (const [clientOrderId, id] of acknowledged) {
    const response = await call(url, 'GET', `/api/v1/orders/${id}`, { credentials });
    assert.equal(response.status, 200, `order ${id} (${clientOrderId}) after restart`);
    assert.equal(response.body.client_order_id, clientOrderId);
    assert.equal(response.body.status, 'NEW');
  }
  console.log(`durability: ${acknowledged.size} acknowledged of ${sent} sent, all present after SIGKILL and restart`);
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
