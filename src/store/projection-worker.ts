/**
 * The read-model projection thread (see ProjectionThread): a replica of the engine, recovered
 * from the journal up to `fromSeq`, applies each durable batch the journal writer forwards and
 * projects the events into DATA/store.db. The engine is deterministic, so the replica's events
 * are the live engine's events; the engine thread no longer spends time on SQL.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { Command, Envelope } from '../core/index.js';
import { recover, SqliteJournal } from '../journal/index.js';
import type { Committed, SerializedEnvelope } from '../journal/index.js';
import { Projector } from './projector.js';

export interface ProjectionData {
  journalPath: string;
  storePath: string;
  fromSeq: number;
  /** Durable batches from the journal writer. */
  input: MessagePort;
  /** Int32 set to 1 once the read model is closed, for close() to wait on. */
  closedFlag: SharedArrayBuffer;
  /** Test hook: wait this long before each batch, as a lagging read model would. */
  delayMs: number;
}

export type ProjectionControl = { op: 'close'; untilSeq: number };
export type ProjectionReport = { projected: number } | { failed: string };

const { journalPath, storePath, fromSeq, input, closedFlag, delayMs } = workerData as ProjectionData;
const closed = new Int32Array(closedFlag);
const journal = new SqliteJournal(journalPath);
const engine = recover(journal, { untilSeq: fromSeq }).engine;
journal.close();
const projector = new Projector(storePath);
let failed = false;

function project(rows: SerializedEnvelope[]): void {
  if (failed) return;
  if (delayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delayMs);
  try {
    const batch: Committed[] = [];
    for (const row of rows) {
      if (row.seq <= engine.lastSeq) continue;
      const envelope: Envelope = { seq: row.seq, ts: row.ts, cmd: JSON.parse(row.command) as Command };
      batch.push({ envelope, events: engine.apply(envelope) });
    }
    projector.apply(batch);
  } catch (error) {
    failed = true;
    parentPort!.postMessage({ failed: (error as Error).message } satisfies ProjectionReport);
    return;
  }
  parentPort!.postMessage({ projected: engine.lastSeq } satisfies ProjectionReport);
}

/**
 * Batches that queued up while the previous one was being written are projected together, in one
 * read-model transaction: under load, the per-transaction cost is paid once for several batches.
 */
input.on('message', (rows: SerializedEnvelope[]) => {
  let next = receiveMessageOnPort(input);
  if (next === undefined) return project(rows);
  const merged = rows.slice();
  for (; next !== undefined; next = receiveMessageOnPort(input)) for (const row of next.message as SerializedEnvelope[]) merged.push(row);
  project(merged);
});
parentPort!.on('message', (control: ProjectionControl) => {
  if (control.op !== 'close') return;
  // Batches come on another channel: take whatever is still queued there before closing.
  for (let next = receiveMessageOnPort(input); next !== undefined; next = receiveMessageOnPort(input)) project(next.message as SerializedEnvelope[]);
  if (engine.lastSeq < control.untilSeq && !failed) {
    parentPort!.postMessage({ failed: `closed at seq ${engine.lastSeq}, short of ${control.untilSeq}: rebuild the read model` } satisfies ProjectionReport);
  }
  projector.close();
  input.close();
  Atomics.store(closed, 0, 1);
  Atomics.notify(closed, 0);
  parentPort!.close();
});
parentPort!.postMessage({ projected: engine.lastSeq } satisfies ProjectionReport);
