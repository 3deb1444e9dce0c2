/**
 * Backups of a running exchange (`POST /admin/v1/backups`, `bourse admin backup`): taken while
 * orders flow, restored into a fresh folder with the master key, they give exactly what was
 * acknowledged at the backup's instant. They go only where the operator's configuration says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './support/server-process.js';
import { Venue } from './support/venue.js';

const order = (price: string, side = 'buy'): Record<string, string> => ({ market: 'BTC-USDT', side, type: 'limit', price, quantity: '0.0010' });

test('a backup taken while orders flow, restored with bourse restore (into a new folder only, verified), gives exactly what was acknowledged at its instant: same seq and open orders, keys still sign, read model rebuilt', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'bourse-backup-'));
  const venue = await Venue.start({ backupDir: join(scratch, 'backups') });
  const backupDir = join(scratch, 'backups', 'before-the-burst-ends');
  const restoredDir = join(scratch, 'restored');
  let restored: Venue | null = null;
  try {
    const alice = await venue.trader('backup-alice@example.com', { USDT: '100000' });
    const bob = await venue.trader('backup-bob@example.com', { BTC: '1' });
    assert.equal((await venue.signed(alice, 'POST', '/api/v1/orders', order('30000.00'))).status, 201);
    const sold = await venue.signed(bob, 'POST', '/api/v1/orders', order('30000.00', 'sell'));
    assert.equal(sold.body.status, 'FILLED');

    const burst = Array.from({ length: 80 }, (_, i) => venue.signed(alice, 'POST', '/api/v1/orders', order(`${20000 + i}.00`)));
    const backup = await venue.admin('/backups', { name: 'before-the-burst-ends' });
    const placed = await Promise.all(burst);
    assert.equal(backup.status, 201, JSON.stringify(backup.body));
    assert.equal(backup.body.path, backupDir);
    assert.ok(placed.every((p) => p.status === 201));
    const seq: number = backup.body.last_seq;
    assert.deepEqual(backup.body.files.map((f: { name: string }) => f.name), ['journal.db', 'identity.db', 'funding.db']);
    assert.deepEqual(readdirSync(backupDir).sort(), ['backup.json', 'funding.db', 'identity.db', 'journal.db'], 'no master key, no read model');
    assert.equal(statSync(backupDir).mode & 0o777, 0o700);

    const liveOpen = (await venue.signed(alice, 'GET', '/api/v1/orders?status=open&limit=500')).body.orders.map((o: { id: string }) => o.id);
    // An order's id is the seq of the command that placed it.
    const acknowledgedByThen = liveOpen.filter((id: string) => Number(id) <= seq);

    const intoUsed = await runCli(['restore', '--from', backupDir, '--data', venue.dataDir]);
    assert.equal(intoUsed.code, 1);
    assert.match(intoUsed.stderr, /is not empty .*restore into a new folder/);
    // The master key is kept apart from backups: the operator puts it in the new folder first.
    mkdirSync(restoredDir);
    copyFileSync(join(venue.dataDir, 'master.key'), join(restoredDir, 'master.key'));
    const restore = await runCli(['restore', '--from', backupDir, '--data', restoredDir]);
    assert.equal(restore.code, 0, restore.stderr);
    const restoredReport = JSON.parse(restore.stdout) as { event: string; lastSeq: number; verified: { lastSeq: number; violations: string[]; snapshotAgrees: boolean } };
    assert.equal(restoredReport.event, 'restored');
    assert.equal(restoredReport.lastSeq, seq);
    assert.equal(restoredReport.verified.lastSeq, seq);
    assert.deepEqual(restoredReport.verified.violations, []);
    restored = await Venue.start({ dataDir: restoredDir });
    assert.equal(restored.exchange.sequencer.lastSeq, seq);
    const restoredOpen = await restored.signed(alice, 'GET', '/api/v1/orders?status=open&limit=500');
    assert.equal(restoredOpen.status, 200, 'the key made before the backup still signs');
    assert.deepEqual(new Set(restoredOpen.body.orders.map((o: { id: string }) => o.id)), new Set(acknowledgedByThen));
    const fills = await restored.signed(bob, 'GET', '/api/v1/trades');
    assert.equal(fills.body.trades.length, 1, 'the read model was rebuilt from the journal');
    const balance = await restored.signed(bob, 'GET', '/api/v1/balances');
    assert.equal(balance.body.balances.find((b: { asset: string }) => b.asset === 'BTC').total, '0.99900000');
  } finally {
    await restored?.stop(true);
    await venue.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('a backup is refused a name that is not a plain folder name, a name already taken, or while another runs; bourse admin backup names it by the time unless told', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'bourse-backup-'));
  const backupDir = join(scratch, 'backups');
  const venue = await Venue.start({ backupDir });
  try {
    for (const name of ['../escape', '/etc', '.hidden', 'a/b', '', 'x'.repeat(101)]) {
      const refused = await venue.admin('/backups', { name });
      assert.equal(refused.status, 400, `${name}: ${JSON.stringify(refused.body)}`);
    }
    assert.equal((await venue.admin('/backups', { path: join(scratch, 'elsewhere') })).status, 400, 'no path from the API');
    assert.ok(!existsSync(join(scratch, 'elsewhere')) && !existsSync(join(scratch, 'escape')));

    const [first, second] = await Promise.all([venue.admin('/backups', { name: 'one' }), venue.admin('/backups', { name: 'two' })]);
    assert.deepEqual([first.status, second.status].sort(), [201, 409]);
    assert.equal((first.status === 409 ? first : second).body.error.code, 'BACKUP_RUNNING');
    const taken = first.status === 201 ? 'one' : 'two';
    const again = await venue.admin('/backups', { name: taken });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'BACKUP_EXISTS');
    assert.ok(existsSync(join(backupDir, taken, 'backup.json')), 'the first backup is untouched');

    const cli = await runCli(['admin', 'backup', '--url', venue.url, '--data', venue.dataDir]);
    assert.equal(cli.code, 0, cli.stderr);
    const answer = JSON.parse(cli.stdout) as { path: string; last_seq: number };
    assert.match(answer.path, new RegExp(`^${backupDir}/\\d{8}T\\d{6}Z$`));
    assert.equal(answer.last_seq, venue.exchange.sequencer.lastSeq);
    assert.deepEqual(readdirSync(backupDir).sort(), [taken, answer.path.slice(backupDir.length + 1)].sort());
  } finally {
    await venue.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('/metrics shows when the newest backup was taken and what seq it holds, also after a restart, so that an operator can alert on a stale one', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'bourse-backup-'));
  const backupDir = join(scratch, 'backups');
  let venue = await Venue.start({ backupDir });
  try {
    const metric = async (name: string): Promise<number> => {
      const text = await (await fetch(`${venue.url}/metrics`)).text();
      return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    };
    assert.equal(await metric('bourse_backup_last_timestamp_seconds'), 0);
    assert.equal(await metric('bourse_backup_last_seq'), 0);
    const before = Date.now();
    const backup = await venue.admin('/backups', { name: 'first' });
    assert.equal(backup.status, 201);
    const takenAt = await metric('bourse_backup_last_timestamp_seconds');
    assert.ok(takenAt * 1000 >= before - 1 && takenAt * 1000 <= Date.now(), `${takenAt}`);
    assert.equal(await metric('bourse_backup_last_seq'), backup.body.last_seq);
    assert.equal(await metric('bourse_backup_failures_total'), 0);
    await venue.stop(true);
    venue = await Venue.start({ dataDir: venue.dataDir, backupDir });
    assert.equal(await metric('bourse_backup_last_seq'), backup.body.last_seq, 'read back from the backup folder');
    assert.equal(await metric('bourse_backup_last_timestamp_seconds'), takenAt);
  } finally {
    await venue.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('a backups.dir that cannot be made gets a quick 500 BACKUP_DIR_UNUSABLE naming it, and the exchange trades on (a recursive mkdir under /proc never returned); missing parents are made', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'bourse-backup-'));
  writeFileSync(join(scratch, 'a-file'), '');
  const places = [join(scratch, 'a-file', 'backups'), ...(existsSync('/proc/self') ? ['/proc/bourse-backups'] : [])];
  try {
    for (const backupDir of places) {
      const venue = await Venue.start({ backupDir });
      try {
        const started = Date.now();
        const backup = await venue.admin('/backups', { name: 'b' });
        assert.equal(backup.status, 500, `${backupDir}: ${JSON.stringify(backup.body)}`);
        assert.equal(backup.body.error.code, 'BACKUP_DIR_UNUSABLE');
        assert.ok(backup.body.error.message.includes(backupDir));
        assert.ok(Date.now() - started < 5_000);
        const trader = await venue.trader(`after-${places.indexOf(backupDir)}@example.com`, { USDT: '1000' });
        assert.equal((await venue.signed(trader, 'POST', '/api/v1/orders', order('2000.00'))).status, 201, 'trading goes on');
        assert.equal((await (await fetch(`${venue.url}/metrics`)).text()).match(/^bourse_backup_failures_total (\d+)$/m)?.[1], '0', 'a refused target is not a failed backup');
      } finally {
        await venue.stop();
      }
    }
    const nested = await Venue.start({ backupDir: join(scratch, 'missing', 'parents', 'backups') });
    try {
      assert.equal((await nested.admin('/backups', { name: 'b' })).status, 201);
      assert.ok(existsSync(join(scratch, 'missing', 'parents', 'backups', 'b', 'backup.json')));
    } finally {
      await nested.stop();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
