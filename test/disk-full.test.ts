/**
 * What traders and the operator meet when the data folder's disk fills up, on a real full disk: a
 * small tmpfs mounted for the test (which needs root, as on CI; elsewhere the test is skipped and
 * says why). Order entry stops with 503 UNAVAILABLE over HTTP and the socket, never a 500;
 * `/health` answers 503 with the reason; reads go on; once space is freed, a restart serves again
 * with every acknowledged order there. `/metrics` shows the space left before it runs out, and a
 * backup that finds no room fails cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from './support/api-client.js';
import { Venue } from './support/venue.js';
import { SocketClient } from './support/ws-client.js';

const asRoot = process.getuid?.() === 0;

/** Writes a file until the file system has no byte left. */
function fillDisk(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const chunk = Buffer.alloc(size);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

test('a full disk stops order entry with 503 UNAVAILABLE (HTTP and socket, never 500), health answers 503 with the reason, reads go on, and a restart after freeing space has every acknowledged order', { skip: asRoot ? false : 'mounting a small tmpfs as the disk needs root' }, async () => {
  const mount = mkdtempSync(join(tmpdir(), 'bourse-full-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mount]);
  const dataDir = join(mount, 'data');
  const filler = join(mount, 'filler');
  let venue: Venue | null = null;
  try {
    venue = await Venue.start({ dataDir });
    const buyer = await venue.trader('full-disk@example.com', { USDT: '1000000' });
    const order = (i: number): Record<string, string> => ({ market: 'BTC-USDT', side: 'buy', type: 'limit', price: `${20000 + i}.00`, quantity: '0.0010' });
    const first = await venue.signed(buyer, 'POST', '/api/v1/orders', order(0));
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const acknowledged = [first.body.id as string];

    const freeBytes = async (): Promise<number> => Number(/^bourse_data_disk_free_bytes (\S+)$/m.exec(await (await fetch(`${venue!.url}/metrics`)).text())?.[1]);
    assert.ok(await freeBytes() > 1 << 20, 'metrics show the space left');
    fillDisk(filler);
    assert.ok(await freeBytes() < 1 << 16, 'and that it is gone');
    // SQLite may still reuse space it holds (a WAL it has checkpointed), so some orders can get
    // through; the first one the disk refuses stops order entry for good.
    let refusal = null;
    for (let i = 1; i <= 3_000 && refusal === null; i++) {
      const answer = await venue.signed(buyer, 'POST', '/api/v1/orders', order(i));
      if (answer.status === 201) acknowledged.push(answer.body.id);
      else refusal = answer;
    }
    assert.ok(refusal !== null, 'the full disk refused an order');
    assert.equal(refusal.status, 503, JSON.stringify(refusal.body));
    assert.equal(refusal.body.error.code, 'UNAVAILABLE');
    const again = await venue.signed(buyer, 'POST', '/api/v1/orders', order(9_999));
    assert.equal(again.status, 503);
    assert.equal(again.body.error.code, 'UNAVAILABLE');

    const health = await call(venue.url, 'GET', '/health');
    assert.equal(health.status, 503);
    assert.equal(health.body.status, 'failed');
    assert.match(health.body.error, /disk is full/);

    const socket = await SocketClient.connect(venue.url);
    try {
      await socket.login(buyer);
      socket.send({ op: 'place', id: 'full', order: order(10_000) });
      const answer = await socket.next((m) => m.id === 'full');
      assert.equal(answer.event, 'error');
      assert.equal(answer.error.code, 'UNAVAILABLE', JSON.stringify(answer));
    } finally {
      socket.close();
    }

    // The identity store may still have a free page for a new key, or may not: never a 500.
    const key = await venue.admin('/apikeys', { email: 'full-disk@example.com', permissions: ['read'] });
    assert.ok(key.status === 201 || (key.status === 503 && key.body.error.code === 'UNAVAILABLE'), JSON.stringify(key.body));
    // A backup on the full disk fails with its reason, leaves no partial copy, and is counted.
    const backup = await venue.admin('/backups', { name: 'no-room' });
    assert.equal(backup.status, 500);
    assert.equal(backup.body.error.code, 'BACKUP_FAILED');
    assert.match(backup.body.error.message, /full|ENOSPC|no space/i);
    assert.ok(!existsSync(join(dataDir, 'backups', 'no-room')), 'no partial backup left');
    assert.match(await (await fetch(`${venue.url}/metrics`)).text(), /^bourse_backup_failures_total 1$/m);
    const read = await venue.signed(buyer, 'GET', `/api/v1/orders/${first.body.id}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.status, 'NEW');

    rmSync(filler);
    await venue.stop(true);
    venue = await Venue.start({ dataDir });
    assert.equal((await call(venue.url, 'GET', '/health')).status, 200);
    const open = await venue.signed(buyer, 'GET', '/api/v1/orders?status=open&limit=500');
    assert.deepEqual(new Set(open.body.orders.map((o: { id: string }) => o.id)), new Set(acknowledged));
    assert.equal((await venue.signed(buyer, 'POST', '/api/v1/orders', order(10_001))).status, 201);
  } finally {
    await venue?.stop(true);
    execFileSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  }
});
