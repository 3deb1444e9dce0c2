/**
 * The durable journal: an append-only SQLite table of stamped commands, and the engine
 * snapshots taken from it.
 *
 * Every row carries a hash chain (SHA-256 of the previous link and the row), so that a row
 * that was altered, lost or reordered is detected on recovery instead of being applied.
 * WAL mode with synchronous=FULL: a committed batch survives a process crash and power loss.
 */
import { createHash, hash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import type { Envelope } from '../core/index.js';

export const GENESIS_CHAIN = '0'.repeat(64);

export interface JournalRow {
  seq: number;
  ts: number;
  command: string;
  chain: string;
}

/** A stamped command whose JSON text is what the journal stores. */
export interface SerializedEnvelope {
  seq: number;
  ts: number;
  command: string;
}

/**
 * A batch as the sequencer stamps it: consecutive seqs from firstSeq, one time for all, and each
 * command's JSON text. Batches cross threads in this form: an array of strings is cloned by
 * postMessage at a fraction of the cost of an array of objects.
 */
export interface StampedBatch {
  firstSeq: number;
  ts: number;
  commands: string[];
}

/** The batch's commands as stamped envelopes, one per command. */
export function batchEnvelopes(batch: StampedBatch): SerializedEnvelope[] {
  const { firstSeq, ts, commands } = batch;
  const envelopes: SerializedEnvelope[] = new Array(commands.length);
  for (let i = 0; i < commands.length; i++) envelopes[i] = { seq: firstSeq + i, ts, command: commands[i]! };
  return envelopes;
}

export interface SnapshotRow {
  seq: number;
  ts: number;
  stateHash: string;
  chain: string;
  body: Buffer;
  bodySha256: string;
}

export class JournalCorruptError extends Error {
  constructor(readonly seq: number, readonly detail: string) {
    super(`journal is corrupt at seq ${seq}: ${detail}`);
    this.name = 'JournalCorruptError';
  }
}

export function chainLink(previous: string, seq: number, ts: number, command: string): string {
  // One-shot hashing: about 2.5× faster than createHash().update().digest() for a row this size.
  return hash('sha256', `${previous}\n${seq}\n${ts}\n${command}`, 'hex');
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** An engine snapshot ready to store: its state hash, and its canonical JSON gzipped. */
export interface PackedSnapshot {
  seq: number;
  ts: number;
  stateHash: string;
  body: Uint8Array;
  bodySha256: string;
}

/**
 * Hashes and compresses a snapshot's JSON (encodeSnapshot), on whichever thread took it: with
 * a hundred thousand orders open that is tens of milliseconds, which the journal writer, whose
 * every batch an acknowledgement waits for, should not spend.
 */
export function packSnapshot(seq: number, ts: number, json: string): PackedSnapshot {
  const body = gzipSync(json, { level: 1 });
  return { seq, ts, stateHash: sha256(json), body, bodySha256: sha256(body) };
}

export interface JournalOptions {
  /** 'FULL' (default) survives power loss; 'NORMAL' survives process crashes only. */
  synchronous?: 'FULL' | 'NORMAL';
}

export class SqliteJournal {
  readonly db: Database.Database;
  private readonly insertRow: Database.Statement;
  private readonly appendBatch: (rows: JournalRow[]) => void;
  private lastSeqValue: number;
  private lastChainValue: string;
  private lastTsValue: number;

  constructor(readonly path: string, options: JournalOptions = {}) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS journal (
        seq INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        command TEXT NOT NULL,
        chain TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS snapshots (
        seq INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        state_hash TEXT NOT NULL,
        chain TEXT NOT NULL,
        body BLOB NOT NULL,
        body_sha256 TEXT NOT NULL
      );
      CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
      CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
        BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
    `);
    this.insertRow = this.db.prepare('INSERT INTO journal (seq, ts, command, chain) VALUES (?, ?, ?, ?)');
    this.appendBatch = this.db.transaction((rows: JournalRow[]) => {
      for (const row of rows) this.insertRow.run(row.seq, row.ts, row.command, row.chain);
    });
    const last = this.db.prepare('SELECT seq, ts, chain FROM journal ORDER BY seq DESC LIMIT 1').get() as
      | { seq: number; ts: number; chain: string }
      | undefined;
    this.lastSeqValue = last?.seq ?? 0;
    this.lastTsValue = last?.ts ?? 0;
    this.lastChainValue = last?.chain ?? GENESIS_CHAIN;
  }

  get lastSeq(): number {
    return this.lastSeqValue;
  }

  get lastTs(): number {
    return this.lastTsValue;
  }

  get lastChain(): string {
    return this.lastChainValue;
  }

  /**
   * Appends envelopes (consecutive, starting at lastSeq + 1) in one transaction and returns
   * once they are durable. Throws, appending nothing, on any inconsistency.
   */
  append(envelopes: readonly Envelope[]): JournalRow[] {
    const serialized: SerializedEnvelope[] = new Array(envelopes.length);
    for (let i = 0; i < envelopes.length; i++) {
      const { seq, ts, cmd } = envelopes[i]!;
      serialized[i] = { seq, ts, command: JSON.stringify(cmd) };
    }
    return this.appendSerialized(serialized);
  }

  /** As append, for a batch the sequencer stamped (the journal writer thread receives them so). */
  appendStamped(batch: StampedBatch): JournalRow[] {
    return this.appendSerialized(batchEnvelopes(batch));
  }

  /** As append, for commands already serialized. */
  appendSerialized(envelopes: readonly SerializedEnvelope[]): JournalRow[] {
    if (envelopes.length === 0) return [];
    const rows: JournalRow[] = new Array(envelopes.length);
    let chain = this.lastChainValue;
    let expected = this.lastSeqValue + 1;
    for (let i = 0; i < envelopes.length; i++) {
      const { seq, ts, command } = envelopes[i]!;
      if (seq !== expected) throw new Error(`journal: append of seq ${seq}, expected ${expected}`);
      chain = chainLink(chain, seq, ts, command);
      rows[i] = { seq, ts, command, chain };
      expected += 1;
    }
    this.appendBatch(rows);
    const last = rows[rows.length - 1]!;
    this.lastSeqValue = last.seq;
    this.lastTsValue = last.ts;
    this.lastChainValue = last.chain;
    return rows;
  }

  /** Rows with seq > after, in order, read lazily. */
  *rowsAfter(after: number): IterableIterator<JournalRow> {
    const statement = this.db.prepare('SELECT seq, ts, command, chain FROM journal WHERE seq > ? ORDER BY seq');
    yield* statement.iterate(after) as IterableIterator<JournalRow>;
  }

  row(seq: number): JournalRow | undefined {
    return this.db.prepare('SELECT seq, ts, command, chain FROM journal WHERE seq = ?').get(seq) as JournalRow | undefined;
  }

  /** Stores a snapshot taken right after applying its seq. `chain` is the journal link at that seq. */
  writeSnapshot(snapshot: PackedSnapshot, chain: string): void {
    const { seq, ts, stateHash, body, bodySha256 } = snapshot;
    // A body that crossed threads arrives as a plain Uint8Array, which SQLite binds only as a Buffer.
    const blob = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    this.db.prepare('INSERT OR REPLACE INTO snapshots (seq, ts, state_hash, chain, body, body_sha256) VALUES (?, ?, ?, ?, ?, ?)')
      .run(seq, ts, stateHash, chain, blob, bodySha256);
  }

  /** The newest snapshot's seq (0: none). */
  newestSnapshotSeq(): number {
    return (this.db.prepare('SELECT max(seq) AS seq FROM snapshots').get() as { seq: number | null }).seq ?? 0;
  }

  /** Snapshots, newest first, without their bodies. */
  snapshotList(): Omit<SnapshotRow, 'body'>[] {
    return (this.db.prepare('SELECT seq, ts, state_hash AS stateHash, chain, body_sha256 AS bodySha256 FROM snapshots ORDER BY seq DESC').all()) as Omit<SnapshotRow, 'body'>[];
  }

  snapshot(seq: number): SnapshotRow | undefined {
    return this.db.prepare('SELECT seq, ts, state_hash AS stateHash, chain, body, body_sha256 AS bodySha256 FROM snapshots WHERE seq = ?').get(seq) as SnapshotRow | undefined;
  }

  /** Keeps the newest `keep` snapshots. */
  pruneSnapshots(keep: number): void {
    this.db.prepare('DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT ?)').run(keep);
  }

  /** Writes a snapshot and keeps the newest `keep`, in one transaction: no reader sees keep + 1. */
  writeSnapshotKeeping(snapshot: PackedSnapshot, chain: string, keep: number): void {
    this.db.transaction(() => {
      this.writeSnapshot(snapshot, chain);
      this.pruneSnapshots(keep);
    })();
  }

  static decodeSnapshotBody(body: Buffer): string {
    return gunzipSync(body).toString('utf8');
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
