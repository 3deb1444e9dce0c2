import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../src/core/index.js';
import type { Command } from '../src/core/index.js';
import type { Committed } from '../src/journal/index.js';
import { Projector } from '../src/store/projector.js';

/** Commands through a fresh engine, as the committed batches the read model projects. */
function committed(commands: Command[]): Committed[] {
  const engine = new Engine();
  return commands.map((cmd, i) => {
    const envelope = { seq: i + 1, ts: Date.UTC(2026, 10, 21) + i, cmd };
    return { envelope, events: engine.apply(envelope) };
  });
}

const SETUP: Command[] = [
  { type: 'create_asset', code: 'USDT', precision: 6 },
  { type: 'create_asset', code: 'BTC', precision: 8 },
  { type: 'create_market', market: 'BTC-USDT', base: 'BTC', quote: 'USDT', tick: 10_000, lot: 10_000, makerFeePpm: 1_000, takerFeePpm: 2_000 },
  { type: 'create_user', user: 1 },
  { type: 'create_account', account: 1, user: 1 },
  { type: 'deposit', account: 1, asset: 'USDT', amount: 1_000_000_000, key: 'usdt' },
];

function buy(clientOrderId?: string): Command {
  return { type: 'place_order', account: 1, market: 'BTC-USDT', side: 'buy', orderType: 'limit', price: 100_000_000, quantity: 100_000, ...(clientOrderId === undefined ? {} : { clientOrderId }) };
}

test('a read model made before the partial client-id index is migrated on open, and orders are still found by client id', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bourse-read-model-'));
  try {
    const path = join(dir, 'store.db');
    const batches = committed([...SETUP, buy('first'), buy(), buy('second')]);
    const old = new Projector(path);
    old.apply(batches.slice(0, SETUP.length + 2));
    // What earlier versions created: an index over every order, client id or not.
    old.db.exec('DROP INDEX orders_by_set_client_id; CREATE INDEX orders_by_client_id ON orders (account, client_order_id)');
    old.close();

    const projector = new Projector(path);
    projector.apply(batches.slice(SETUP.length + 2));
    const indexes = projector.db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'orders' AND sql LIKE '%client_order_id%'").all() as { name: string; sql: string }[];
    assert.deepEqual(indexes.map((i) => i.name), ['orders_by_set_client_id']);
    assert.match(indexes[0]!.sql, /WHERE client_order_id IS NOT NULL/);
    const plan = projector.db.prepare('EXPLAIN QUERY PLAN SELECT * FROM orders WHERE account = ? AND client_order_id = ? ORDER BY id DESC LIMIT 1').all(1, 'x') as { detail: string }[];
    assert.match(plan.map((p) => p.detail).join(' '), /USING INDEX orders_by_set_client_id/);
    assert.equal(projector.orderByClientId(1, 'first')?.id, SETUP.length + 1);
    assert.equal(projector.orderByClientId(1, 'second')?.id, SETUP.length + 3);
    assert.equal(projector.orderByClientId(1, 'absent'), undefined);
    projector.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
