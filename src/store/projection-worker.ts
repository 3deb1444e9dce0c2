/**
 * The read-model projection thread (see ProjectionThread): a replica of the engine, recovered
 * from the journal up to the read model's last seq, catches up with the journal, then applies
 * each durable batch the journal writer forwards and projects the events into DATA/store.db.
 * The engine is deterministic, so the replica's events are the live engine's events; the engine
 * thread no longer spends time on SQL.
 *
 * The replica is also the auditor: every max(auditEvery, open orders) commands it checks every
 * engine invariant (DESIGN.md §3). Its state at a seq is the live engine's, so a violation here is
 * one there, and the engine thread never stalls for a check that is linear in the book.
 *
 * And it takes the snapshots, for the same reason: with a hundred thousand orders open, copying,
 * encoding, hashing and compressing the state takes a few hundred milliseconds, during which the
 * engine thread would answer no one. Every snapshotEvery commands it checks the invariants, takes
 * the snapshot and hands it to the journal writer, which stores it between two batches.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { encodeSnapshot, findViolations, invariantCheckDue } from '../core/index.js';
import type { Command, Envelope, UserHoldings } from '../core/index.js';
import { batchEnvelopes, packSnapshot, recover, SqliteJournal } from '../journal/index.js';
import type { Committed, ForwardStart, ReplicaSnapshot, SerializedEnvelope, StampedBatch } from '../journal/index.js';
import { Projector } from './projector.js';

/**
 * The read model may lag; the engine thread and the journal writer, which every acknowledgement
 * waits for, may not. On Linux a thread's nice value is its own, so this thread yields the core
 * to them when both want it (measured: about 5 % more signed orders per second over HTTP on two
 * cores). Elsewhere it keeps the process's priority.
 */
function lowerThreadPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, Math.min(19, getPriority(tid) + 10));
  } catch {
    // not Linux, or not allowed: run at the process's priority
  }
}

export interface ProjectionData {
  journalPath: string;
  storePath: string;
  /**
   * Durable batches from the journal writer, after a first `{ from }`: every seq after it comes
   * through here; the thread reads what the read model lacks up to it from the journal.
   */
  input: MessagePort;
  /** Int32 set to 1 once the read model is closed, for close() to wait on. */
  closedFlag: SharedArrayBuffer;
  /** Check every invariant on the replica after at least this many commands (0: never). */
  auditEvery: number;
  /** Snapshot the replica every this many commands (0: never), keeping the newest snapshotsKept. */
  snapshotEvery: number;
  snapshotsKept: number;
  /** Test hook: wait this long before each batch, as a lagging read model would. */
  delayMs: number;
  /** Test hook: break the replica's books (one unit of money appears) after applying this seq (0: never). */
  breakAtSeq: number;
  /** Test hook: fail on the batch holding this seq (0: never). */
  failAtSeq: number;
}

/**
 * `holdings`: every user's holdings on the replica, once it is at `atLeastSeq` or past it (for a
 * proof-of-liabilities report: read here, the serving thread does not stop for it).
 */
export type ProjectionControl = { op: 'close'; untilSeq: number } | { op: 'holdings'; id: number; atLeastSeq: number; assets: string[] };
export type ProjectionReport = { projected: number } | { failed: string } | { violated: string } | { holdings: UserHoldings; id: number };

const { journalPath, storePath, input, closedFlag, auditEvery, snapshotEvery, snapshotsKept, delayMs, failAtSeq, breakAtSeq } = workerData as ProjectionData;
const closed = new Int32Array(closedFlag);
lowerThreadPriority();
const projector = new Projector(storePath);
const journal = new SqliteJournal(journalPath);
// A replica of the engine as of the read model's last seq: the snapshot at or before it, then replay.
const engine = recover(journal, { untilSeq: projector.lastSeq }).engine;
let lastSnapshotSeq = journal.newestSnapshotSeq();
let journalOpen = true;
let failed = false;
let sinceAudit = 0;
let violated = false;
let closing = false;
/** Holdings asked for before the replica reached the seq they name. */
let holdingsWanted: Extract<ProjectionControl, { op: 'holdings' }>[] = [];

function answerHoldings(): void {
  if (holdingsWanted.length === 0) return;
  const due = holdingsWanted.filter((want) => engine.lastSeq >= want.atLeastSeq);
  holdingsWanted = holdingsWanted.filter((want) => engine.lastSeq < want.atLeastSeq);
  for (const want of due) {
    const holdings = engine.userHoldings(want.assets);
    parentPort!.postMessage({ holdings, id: want.id } satisfies ProjectionReport, [holdings.users.buffer as ArrayBuffer, holdings.sums.buffer as ArrayBuffer]);
  }
}

function report(message: ProjectionReport): void {
  parentPort!.postMessage(message);
}

/** Whether the replica's books balance; if not, says so (once) and the exchange stops. */
function booksHold(): boolean {
  sinceAudit = 0;
  const problems = findViolations(engine);
  if (problems.length === 0) return true;
  violated = true;
  report({ violated: `engine invariants broken at seq ${engine.lastSeq}: ${problems.join('; ')}` });
  return false;
}

function audit(applied: number): void {
  sinceAudit += applied;
  if (violated || !invariantCheckDue(sinceAudit, auditEvery, engine)) return;
  booksHold();
}

/**
 * A recovery starts from a snapshot: only a state that passes every invariant becomes one. None is
 * taken while closing (the server writes its own at shutdown), and a failure to take one costs
 * replay time, not the read model.
 */
function snapshotIfDue(): void {
  if (snapshotEvery <= 0 || closing || violated || engine.lastSeq - lastSnapshotSeq < snapshotEvery || !booksHold()) return;
  lastSnapshotSeq = engine.lastSeq;
  try {
    const offer: ReplicaSnapshot = { snapshot: packSnapshot(engine.lastSeq, engine.lastTs, encodeSnapshot(engine.snapshot())), keep: snapshotsKept };
    input.postMessage(offer);
  } catch (error) {
    process.emitWarning(`snapshot at seq ${engine.lastSeq} not taken: ${(error as Error).message}`);
  }
}

function breakBooks(): void {
  for (const account of engine.accounts.values()) {
    const balance = account.balances.find((b) => b !== undefined);
    if (balance === undefined) continue;
    balance.available += 1;
    sinceAudit = Number.MAX_SAFE_INTEGER;
    return;
  }
}

function project(rows: readonly SerializedEnvelope[]): void {
  if (failed) return;
  if (delayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delayMs);
  try {
    const batch: Committed[] = [];
    for (const row of rows) {
      if (row.seq <= engine.lastSeq) continue;
      if (row.seq === failAtSeq) throw new Error(`test hook: projection fails at seq ${failAtSeq}`);
      const envelope: Envelope = { seq: row.seq, ts: row.ts, cmd: JSON.parse(row.command) as Command };
      batch.push({ envelope, events: engine.apply(envelope) });
      if (row.seq === breakAtSeq) breakBooks();
    }
    projector.apply(batch);
    audit(batch.length);
  } catch (error) {
    failed = true;
    report({ failed: (error as Error).message });
    return;
  }
  // Readers waiting for this batch go first; the snapshot can wait for them.
  report({ projected: engine.lastSeq });
  answerHoldings();
  snapshotIfDue();
}

const CATCH_UP_CHUNK = 2_000;

/**
 * Projects what the journal holds after the read model, up to `until`: nothing at a first start,
 * what the failed thread missed after a restart.
 */
function catchUp(until: number): void {
  let chunk: SerializedEnvelope[] = [];
  try {
    for (const row of journal.rowsAfter(engine.lastSeq)) {
      if (row.seq > until || failed) break;
      chunk.push(row);
      if (chunk.length >= CATCH_UP_CHUNK) {
        project(chunk);
        chunk = [];
      }
    }
    project(chunk);
  } finally {
    journal.close();
    journalOpen = false;
  }
}

/**
 * Batches that queued up while the previous one was being written are projected together, in one
 * read-model transaction: under load, the per-transaction cost is paid once for several batches.
 */
function receive(messages: (StampedBatch | ForwardStart)[]): void {
  let merged: SerializedEnvelope[] = [];
  for (const message of messages) {
    if ('commands' in message) {
      for (const row of batchEnvelopes(message)) merged.push(row);
      continue;
    }
    if (merged.length > 0) project(merged);
    merged = [];
    catchUp(message.from);
  }
  if (merged.length > 0) project(merged);
}

function drain(first: StampedBatch | ForwardStart | null): void {
  const messages = first === null ? [] : [first];
  for (let next = receiveMessageOnPort(input); next !== undefined; next = receiveMessageOnPort(input)) messages.push(next.message as StampedBatch | ForwardStart);
  receive(messages);
}

input.on('message', drain);
parentPort!.on('message', (control: ProjectionControl) => {
  if (control.op === 'holdings') {
    holdingsWanted.push(control);
    // Batches come on another channel: take whatever is queued there first.
    drain(null);
    answerHoldings();
    return;
  }
  closing = true;
  // Batches come on another channel: take whatever is still queued there before closing.
  drain(null);
  if (engine.lastSeq < control.untilSeq && !failed) {
    report({ failed: `closed at seq ${engine.lastSeq}, short of ${control.untilSeq}: rebuild the read model` });
  }
  if (journalOpen) journal.close();
  projector.close();
  input.close();
  Atomics.store(closed, 0, 1);
  Atomics.notify(closed, 0);
  parentPort!.close();
});
