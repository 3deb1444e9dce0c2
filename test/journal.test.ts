import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Engine, RULES_VERSION } from '../src/core/index.js';
import { Exchange } from '../src/exchange.js';
import type { Command } from '../src/core/index.js';
import { JournalCorruptError, recover, Sequencer, SequencerOverloadedError, SqliteJournal } from '../src/journal/index.js';
import { concretize, genesis, MODEL_T0, templateArbitrary } from './support/model-workload.js';

/** Runs a test against a fresh journal path in a temporary folder, removed afterwards. */
async function withJournalPath(body: (path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bourse-journal-'));
  try {
    await body(join(dir, 'journal.db'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A seeded random workload of `count` commands after the model genesis. */
function workload(count: number, seed: number): (engine: Engine, ts: number) => Command {
  const templates = fc.sample(templateArbitrary, { numRuns: count, seed });
  let i = 0;
  const setup = genesis();
  return (engine, ts) => (i < setup.length ? setup[i++]! : concretize(templates[(i++ - setup.length) % count]!, engine, ts));
}

async function drive(sequencer: Sequencer, count: number, seed: number): Promise<void> {
  let clock = MODEL_T0;
  const next = workload(count, seed);
  for (let i = 0; i < count; i++) {
    clock += 100;
    await sequencer.submit(next(sequencer.engine, clock));
  }
}

test('acknowledged commands survive a restart with the same state hash', () => withJournalPath(async (path) => {
  const first = Sequencer.open({ path, checkInvariantsEvery: 1 });
  await drive(first, 300, 1);
  const hash = first.engine.stateHash();
  const lastSeq = first.lastSeq;
  first.close();
  const second = Sequencer.open({ path, checkInvariantsEvery: 1 });
  assert.equal(second.lastSeq, lastSeq);
  assert.equal(second.engine.stateHash(), hash);
  assert.equal(second.recovery.replayed, lastSeq);
  second.close();
}));

test('replay from genesis and from every snapshot gives the live state hash', () => withJournalPath(async (path) => {
  const sequencer = Sequencer.open({ path, snapshotEvery: 37, snapshotsKept: 1_000, checkInvariantsEvery: 1 });
  const liveHashes = new Map<number, string>();
  sequencer.onCommitted((envelope) => liveHashes.set(envelope.seq, sequencer.engine.stateHash()));
  await drive(sequencer, 1_500, 7);
  const live = sequencer.engine.stateHash();
  const journal = sequencer.journal;
  const snapshots = journal.snapshotList();
  assert.ok(snapshots.length >= 30, `${snapshots.length} snapshots`);
  assert.equal(recover(journal, { ignoreSnapshots: true }).engine.stateHash(), live, 'from genesis');
  for (const snapshot of snapshots) {
    assert.equal(snapshot.stateHash, liveHashes.get(snapshot.seq), `snapshot ${snapshot.seq} holds the live state of its seq`);
    const fromHere = recover(journal, { fromSnapshot: snapshot.seq });
    assert.equal(fromHere.report.snapshotSeq, snapshot.seq);
    assert.equal(fromHere.engine.stateHash(), live, `from snapshot ${snapshot.seq} to the end`);
    const partial = recover(journal, { untilSeq: snapshot.seq + 5 });
    assert.equal(partial.report.snapshotSeq, snapshot.seq, 'starts from the newest snapshot at or before the target');
    assert.equal(partial.engine.stateHash(), liveHashes.get(snapshot.seq + 5) ?? live, `from snapshot ${snapshot.seq}`);
  }
  sequencer.close();
}));

test('a row altered in the journal is detected and reported, never applied', () => withJournalPath(async (path) => {
  const sequencer = Sequencer.open({ path });
  await drive(sequencer, 100, 3);
  sequencer.close();
  const journal = new SqliteJournal(path);
  journal.db.exec('DROP TRIGGER journal_no_update');
  const tampered = journal.lastSeq - 10;
  assert.equal(journal.db.prepare('UPDATE journal SET ts = ts + 1 WHERE seq = ?').run(tampered).changes, 1);
  journal.close();
  assert.throws(() => Sequencer.open({ path }), (error: unknown) => error instanceof JournalCorruptError && error.seq === tampered);
}));

test('a missing row in the middle of the journal is reported as a gap', () => withJournalPath(async (path) => {
  const sequencer = Sequencer.open({ path });
  await drive(sequencer, 50, 4);
  sequencer.close();
  const journal = new SqliteJournal(path);
  journal.db.exec('DROP TRIGGER journal_no_delete');
  journal.db.prepare('DELETE FROM journal WHERE seq = 30').run();
  journal.close();
  assert.throws(() => Sequencer.open({ path }), (error: unknown) => error instanceof JournalCorruptError && error.seq === 30);
}));

test('a torn write at the end of the WAL is discarded: only committed batches come back', () => withJournalPath(async (path) => {
  const sequencer = Sequencer.open({ path });
  await drive(sequencer, 80, 5);
  const hash = sequencer.engine.stateHash();
  const lastSeq = sequencer.lastSeq;
  // Leave the WAL in place (no checkpoint on close) and append half a frame of garbage to it.
  sequencer.journal.db.pragma('wal_autocheckpoint = 0');
  const wal = `${path}-wal`;
  const size = statSync(wal).size;
  appendFileSync(wal, Buffer.alloc(2_000, 0xab));
  assert.ok(statSync(wal).size > size);
  const reopened = Sequencer.open({ path });
  assert.equal(reopened.lastSeq, lastSeq);
  assert.equal(reopened.engine.stateHash(), hash);
  reopened.close();
  sequencer.close();
}));

test('a damaged snapshot is skipped and recovery falls back to an older one', () => withJournalPath(async (path) => {
  const sequencer = Sequencer.open({ path, snapshotEvery: 40, snapshotsKept: 10 });
  await drive(sequencer, 200, 6);
  const hash = sequencer.engine.stateHash();
  const [newest, older] = sequencer.journal.snapshotList();
  sequencer.journal.db.prepare('UPDATE snapshots SET body = zeroblob(100) WHERE seq = ?').run(newest!.seq);
  sequencer.close();
  const reopened = Sequencer.open({ path });
  assert.equal(reopened.recovery.snapshotSeq, older!.seq);
  assert.deepEqual(reopened.recovery.skippedSnapshots, [{ seq: newest!.seq, reason: 'body checksum mismatch' }]);
  assert.equal(reopened.engine.stateHash(), hash);
  reopened.close();
}));

test('the journal is append-only', () => withJournalPath(async (path) => {
  const sequencer = Sequencer.open({ path });
  await sequencer.submit({ type: 'create_asset', code: 'BTC', precision: 8 });
  assert.throws(() => sequencer.journal.db.prepare("UPDATE journal SET command = '{}'").run(), /append-only/);
  assert.throws(() => sequencer.journal.db.prepare('DELETE FROM journal').run(), /append-only/);
  sequencer.close();
}));

test('group commit: a burst of concurrent commands shares a few transactions', () => withJournalPath(async (path) => {
  const sequencer = Sequencer.open({ path });
  await sequencer.submit({ type: 'create_asset', code: 'BTC', precision: 8 });
  await sequencer.submit({ type: 'create_user', user: 1 });
  await sequencer.submit({ type: 'create_account', account: 1, user: 1 });
  const before = sequencer.stats.batches;
  const acks = await Promise.all(Array.from({ length: 2_000 }, (_, i) => sequencer.submit({ type: 'deposit', account: 1, asset: 'BTC', amount: 1, key: `d${i}` })));
  assert.equal(sequencer.stats.batches - before, 1);
  assert.deepEqual(acks.map((a) => a.seq), Array.from({ length: 2_000 }, (_, i) => i + 4), 'acknowledged in submission order');
  assert.equal(sequencer.engine.balance(1, 'BTC').available, 2_000);
  sequencer.close();
}));

test('a BeforeApply reads the engine as the command finds it, after the commands queued ahead of it; a read that throws fails only its caller', () => withJournalPath(async (path) => {
  const sequencer = Sequencer.open({ path, checkInvariantsEvery: 1 });
  for (const cmd of genesis()) await sequencer.submit(cmd);
  const placed = await sequencer.submit({ type: 'place_order', account: 1, market: 'BASE-QUOTE', side: 'buy', orderType: 'limit', price: 1_000, quantity: 100 });
  const id = placed.seq;
  // Submitted together, so applied in one batch: the amendment lands between the caller's look and the cancel.
  const seenAtSubmit = sequencer.engine.openOrder(id)!;
  const amend = sequencer.submit({ type: 'amend_order', account: 1, orderId: id, price: 995 });
  const cancel = sequencer.submit({ type: 'cancel_order', account: 1, orderId: id }, (engine) => engine.openOrder(id));
  await amend;
  const ack = await cancel;
  assert.equal(seenAtSubmit.price, 1_000);
  assert.equal(ack.before?.price, 995, 'the cancel found the amended order');
  assert.equal(ack.events.filter((e) => e.type === 'order_cancelled').length, 1);
  assert.equal(sequencer.engine.openOrder(id), undefined);

  const other = await sequencer.submit({ type: 'place_order', account: 1, market: 'BASE-QUOTE', side: 'buy', orderType: 'limit', price: 1_000, quantity: 100 });
  const failing = sequencer.submit({ type: 'cancel_order', account: 1, orderId: other.seq }, () => { throw new Error('a broken read'); });
  const next = sequencer.submit({ type: 'tick' });
  await assert.rejects(failing, /a broken read/);
  await next;
  assert.equal(sequencer.engine.openOrder(other.seq), undefined, 'the durable cancel was still applied');
  assert.equal(sequencer.failed, null, 'and the sequencer goes on');
  sequencer.close();
}));

test('a command that cannot be journaled is refused, not acknowledged', () => withJournalPath(async (path) => {
  const sequencer = Sequencer.open({ path });
  await sequencer.submit({ type: 'create_asset', code: 'BTC', precision: 8 });
  sequencer.journal.db.close();
  await assert.rejects(sequencer.submit({ type: 'create_asset', code: 'ETH', precision: 8 }));
  assert.equal(sequencer.engine.assets.has('ETH'), false);
  await assert.rejects(sequencer.submit({ type: 'tick' }), /not accepting/);
}));

test('a full queue refuses new commands instead of growing without bound', () => withJournalPath(async (path) => {
  const sequencer = Sequencer.open({ path, queueMax: 10 });
  const accepted = Array.from({ length: 10 }, () => sequencer.submit({ type: 'tick' }));
  await assert.rejects(sequencer.submit({ type: 'tick' }), SequencerOverloadedError);
  await Promise.all(accepted);
  sequencer.close();
}));

test('stamped time never goes backwards even when the clock does', () => withJournalPath(async (path) => {
  let now = 2_000_000;
  const sequencer = Sequencer.open({ path, clock: () => now });
  const first = await sequencer.submit({ type: 'tick' });
  now = 1_000_000;
  const second = await sequencer.submit({ type: 'tick' });
  assert.equal(second.ts, first.ts);
  sequencer.close();
}));

test('on the writer thread, concurrent submits are batched, snapshots written in order, and close flushes what is queued', () => withJournalPath(async (path) => {
  const threaded = Sequencer.open({ path, snapshotEvery: 200, snapshotsKept: 1_000, checkInvariantsEvery: 1, writerThread: true });
  await threaded.submit({ type: 'create_asset', code: 'USD', precision: 2 });
  await threaded.submit({ type: 'create_user', user: 1 });
  await threaded.submit({ type: 'create_account', account: 1, user: 1 });
  const acks = await Promise.all(Array.from({ length: 1_000 }, (_, i) =>
    threaded.submit({ type: 'deposit', account: 1, asset: 'USD', amount: 1 + i, key: `d${i}` })));
  assert.deepEqual(acks.map((a) => a.seq), Array.from({ length: 1_000 }, (_, i) => 4 + i), 'acknowledged in submission order');
  assert.ok(threaded.stats.batches < 1_000 / 2, `group commit: ${threaded.stats.batches} batches`);
  // Queued but not yet acknowledged when close() runs: close must make them durable.
  const late = threaded.submit({ type: 'deposit', account: 1, asset: 'USD', amount: 7, key: 'late' });
  const hash = threaded.engine.stateHash();
  threaded.close();
  assert.equal((await late).seq, 1_004);
  assert.notEqual(threaded.engine.stateHash(), hash);
  const liveHash = threaded.engine.stateHash();

  const reopened = Sequencer.open({ path, checkInvariantsEvery: 1 });
  assert.equal(reopened.lastSeq, 1_004);
  assert.equal(reopened.engine.stateHash(), liveHash);
  assert.ok(reopened.recovery.snapshotSeq >= 1_000, `recovered from snapshot ${reopened.recovery.snapshotSeq}`);
  for (const snapshot of reopened.journal.snapshotList()) {
    assert.equal(recover(reopened.journal, { fromSnapshot: snapshot.seq, untilSeq: snapshot.seq }).engine.lastSeq, snapshot.seq);
  }
  reopened.close();
}));

test('a server journals the matching rules it plays once, at its first start, and refuses a journal whose rules are newer than it knows', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-rules-'));
  try {
    const first = await Exchange.open({ dataDir });
    assert.equal(first.engine.rulesVersion, RULES_VERSION);
    const adopted = first.sequencer.journal.row(1);
    assert.deepEqual(JSON.parse(adopted!.command), { type: 'adopt_rules', version: RULES_VERSION }, 'the first command of a new journal');
    first.close();
    const again = await Exchange.open({ dataDir });
    assert.equal(again.sequencer.lastSeq, 1, 'a restart under the same rules journals nothing');
    again.close();

    // What a newer build would have written: this one stops instead of replaying it under its own rules.
    const journal = new SqliteJournal(join(dataDir, 'journal.db'));
    journal.append([{ seq: journal.lastSeq + 1, ts: journal.lastTs + 1, cmd: { type: 'adopt_rules', version: RULES_VERSION + 1 } }]);
    journal.close();
    await assert.rejects(Exchange.open({ dataDir }), /adopts matching rules version 3; this build plays up to 2: run the newer Bourse/);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
