/**
 * Recovery: newest valid snapshot, then the journal tail, every row checked against the hash
 * chain before it is applied. A snapshot that fails its checks is skipped (an older one, or
 * genesis, is used instead); a journal row that fails them stops recovery with an error.
 */
import { Engine, encodeSnapshot } from '../core/index.js';
import type { EngineEvent, Envelope, EngineSnapshot } from '../core/index.js';
import { chainLink, GENESIS_CHAIN, JournalCorruptError, sha256, SqliteJournal } from './sqlite-journal.js';

export interface RecoveryReport {
  /** Seq of the snapshot recovery started from (0 = genesis). */
  snapshotSeq: number;
  /** Snapshots passed over, newest first, with the reason. */
  skippedSnapshots: { seq: number; reason: string }[];
  replayed: number;
  lastSeq: number;
  seconds: number;
}

export interface RecoveryOptions {
  /** Called for every replayed command, e.g. to rebuild projections. */
  onEvents?: (envelope: Envelope, events: EngineEvent[]) => void;
  /** Start from genesis, ignoring snapshots. */
  ignoreSnapshots?: boolean;
  /** Replay no further than this seq. */
  untilSeq?: number;
  /** Start from exactly this snapshot (it must be valid). */
  fromSnapshot?: number;
}

export function recover(journal: SqliteJournal, options: RecoveryOptions = {}): { engine: Engine; report: RecoveryReport } {
  const started = process.hrtime.bigint();
  const skippedSnapshots: { seq: number; reason: string }[] = [];
  let engine = new Engine();
  let chain = GENESIS_CHAIN;
  let snapshotSeq = 0;
  if (!options.ignoreSnapshots) {
    for (const candidate of journal.snapshotList()) {
      if (options.untilSeq !== undefined && candidate.seq > options.untilSeq) continue;
      if (options.fromSnapshot !== undefined && candidate.seq !== options.fromSnapshot) continue;
      const loaded = loadSnapshot(journal, candidate.seq);
      if (typeof loaded === 'string') {
        skippedSnapshots.push({ seq: candidate.seq, reason: loaded });
        continue;
      }
      engine = loaded;
      chain = candidate.chain;
      snapshotSeq = candidate.seq;
      break;
    }
  }
  if (options.fromSnapshot !== undefined && snapshotSeq !== options.fromSnapshot) {
    throw new Error(`snapshot ${options.fromSnapshot} is not usable: ${JSON.stringify(skippedSnapshots)}`);
  }
  let expected = snapshotSeq + 1;
  let replayed = 0;
  for (const row of journal.rowsAfter(snapshotSeq)) {
    if (options.untilSeq !== undefined && row.seq > options.untilSeq) break;
    if (row.seq !== expected) throw new JournalCorruptError(expected, `row ${expected} is missing (next is ${row.seq})`);
    const link = chainLink(chain, row.seq, row.ts, row.command);
    if (link !== row.chain) throw new JournalCorruptError(row.seq, 'hash chain does not match: the row or one before it was altered');
    let cmd: Envelope['cmd'];
    try {
      cmd = JSON.parse(row.command) as Envelope['cmd'];
    } catch {
      throw new JournalCorruptError(row.seq, 'command is not valid JSON');
    }
    const envelope = { seq: row.seq, ts: row.ts, cmd };
    const events = engine.apply(envelope);
    options.onEvents?.(envelope, events);
    chain = link;
    expected += 1;
    replayed += 1;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { engine, report: { snapshotSeq, skippedSnapshots, replayed, lastSeq: expected - 1, seconds } };
}

/** The engine of a stored snapshot, or why it cannot be used. */
function loadSnapshot(journal: SqliteJournal, seq: number): Engine | string {
  const row = journal.snapshot(seq);
  if (row === undefined) return 'vanished';
  if (sha256(row.body) !== row.bodySha256) return 'body checksum mismatch';
  const journalRow = journal.row(seq);
  if (journalRow === undefined) return 'the journal does not reach this snapshot';
  if (journalRow.chain !== row.chain) return 'snapshot does not belong to this journal';
  let engine: Engine;
  try {
    const json = SqliteJournal.decodeSnapshotBody(row.body);
    if (sha256(json) !== row.stateHash) return 'state hash mismatch';
    engine = Engine.restore(JSON.parse(json) as EngineSnapshot);
  } catch (error) {
    return `unreadable: ${(error as Error).message}`;
  }
  if (engine.lastSeq !== seq) return `snapshot claims seq ${engine.lastSeq}`;
  // Restoring must reproduce the exact state that was hashed.
  if (sha256(encodeSnapshot(engine.snapshot())) !== row.stateHash) return 'restored state differs from the snapshot';
  return engine;
}
