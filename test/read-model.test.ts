import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../src/core/index.js';
import type { Command } from '../src/core/index.js';
import type { Committed } from '../src/journal/index.js';
import fc from 'fast-check';
import { Projector } from '../src/store/projector.js';
import type { FillRow, LedgerRow, OrderRow, Page, TradeRow } from '../src/store/projector.js';

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

test('history pages by time and by id agree with filtering every row: bisection over ids finds the same rows as a scan', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bourse-read-model-'));
  const projector = new Projector(join(dir, 'store.db'));
  try {
    const commands: Command[] = [
      ...SETUP,
      { type: 'create_user', user: 2 },
      { type: 'create_account', account: 2, user: 2 },
      { type: 'deposit', account: 2, asset: 'BTC', amount: 100_000_000_000, key: 'btc' },
    ];
    // Orders that rest, cross and cancel, so that orders, fills, trades and ledger entries interleave.
    for (let i = 0; i < 120; i++) {
      const price = 100_000_000 + (i % 7) * 10_000;
      if (i % 3 === 2) commands.push({ type: 'place_order', account: 2, market: 'BTC-USDT', side: 'sell', orderType: 'market', quantity: 100_000 });
      else commands.push({ type: 'place_order', account: 1, market: 'BTC-USDT', side: 'buy', orderType: 'limit', price, quantity: 100_000 });
      if (i % 10 === 9) commands.push({ type: 'cancel_all', account: 1 });
    }
    // Times that repeat and jump, never going back, as the sequencer stamps them.
    const steps = fc.sample(fc.constantFrom(0, 0, 1, 3, 1_000), commands.length);
    let ts = Date.UTC(2026, 11, 1);
    const engine = new Engine();
    const batches = commands.map((cmd, i) => {
      ts += steps[i]!;
      const envelope = { seq: i + 1, ts, cmd };
      return { envelope, events: engine.apply(envelope) };
    });
    projector.apply(batches);
    const all = {
      orders: projector.db.prepare('SELECT * FROM orders ORDER BY id').all() as OrderRow[],
      fills: projector.db.prepare('SELECT * FROM fills ORDER BY trade_id').all() as FillRow[],
      trades: projector.db.prepare('SELECT * FROM trades ORDER BY id').all() as TradeRow[],
      ledger: projector.db.prepare('SELECT * FROM ledger ORDER BY id').all() as LedgerRow[],
    };
    assert.ok(all.fills.length > 50 && all.orders.length > 100 && all.ledger.length > 200, 'a history worth paging');
    const first = Date.UTC(2026, 11, 1);
    // Mostly a row's own time or next to it, where an off-by-one would show.
    const times = [...new Set(batches.map((b) => b.envelope.ts))];
    const near = fc.tuple(fc.constantFrom(...times), fc.constantFrom(-1, 0, 0, 0, 1)).map(([t, d]) => t + d);
    const time = fc.option(fc.oneof(near, near, fc.integer({ min: first - 5, max: ts + 5 })), { nil: undefined });
    const id = fc.option(fc.integer({ min: 0, max: all.ledger.length + 5 }), { nil: undefined });
    fc.assert(fc.property(time, time, id, fc.boolean(), fc.integer({ min: 1, max: 40 }), fc.constantFrom(1, 2), (from, to, cursor, ascending, limit, account) => {
      const page: Page = { limit, from, to, ...(cursor === undefined ? {} : ascending ? { afterId: cursor } : { beforeId: cursor }) };
      const expected = <T>(rows: T[], idOf: (row: T) => number, timeOf: (row: T) => number, mine: (row: T) => boolean): number[] => {
        const kept = rows.filter((row) => mine(row)
          && (from === undefined || timeOf(row) >= from) && (to === undefined || timeOf(row) <= to)
          && (page.afterId === undefined || idOf(row) > page.afterId) && (page.beforeId === undefined || idOf(row) < page.beforeId)).map(idOf);
        return (page.afterId === undefined ? kept.reverse() : kept).slice(0, limit);
      };
      assert.deepEqual(projector.orders(account, page).map((o) => o.id), expected(all.orders, (o) => o.id, (o) => o.created_at, (o) => o.account === account));
      assert.deepEqual(projector.fills(account, page).map((f) => f.trade_id), expected(all.fills, (f) => f.trade_id, (f) => f.ts, (f) => f.account === account));
      assert.deepEqual(projector.trades('BTC-USDT', page).map((t) => t.id), expected(all.trades, (t) => t.id, (t) => t.ts, () => true));
      assert.deepEqual(projector.ledger(account, page).map((l) => l.id), expected(all.ledger, (l) => l.id, (l) => l.ts, (l) => l.account === account));
    }), { numRuns: 400 });
  } finally {
    projector.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
