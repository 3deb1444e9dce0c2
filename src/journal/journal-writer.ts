/**
 * The journal writer thread (see ThreadJournalSink): owns the journal's write connection and
 * carries out appends and snapshots one at a time, in arrival order, replying to each.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteJournal } from './sqlite-journal.js';
import { writeSnapshotAt } from './journal-sink.js';
import type { ForwardStart, ReplicaSnapshot, WriterData, WriterReply, WriterRequest } from './journal-sink.js';
import type { MessagePort } from 'node:worker_threads';

const { path, options, port, signal } = workerData as WriterData;
/** Where durable batches go next (the read-model projection thread), once one is attached. */
let forward: MessagePort | null = null;
const journal = new SqliteJournal(path, options);
const replies = new Int32Array(signal);

/** A snapshot of the projection thread's replica: stored between batches, never instead of one. */
function storeReplicaSnapshot({ snapshot, keep }: ReplicaSnapshot): void {
  try {
    writeSnapshotAt(journal, snapshot, keep);
  } catch (error) {
    // A lost snapshot costs replay time, not data: recovery falls back to an older one.
    process.emitWarning(`snapshot at seq ${snapshot.seq} not written: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function reply(message: WriterReply): void {
  port.postMessage(message);
  Atomics.add(replies, 0, 1);
  Atomics.notify(replies, 0);
}

parentPort!.on('message', (request: WriterRequest) => {
  try {
    switch (request.op) {
      case 'append':
        journal.appendStamped(request.batch);
        // Durable: answer first (the engine thread is waiting), then hand the batch on.
        reply({ ok: true });
        forward?.postMessage(request.batch);
        return;
      case 'forward':
        forward?.close();
        forward = request.port;
        forward.on('message', storeReplicaSnapshot);
        forward.postMessage({ from: journal.lastSeq } satisfies ForwardStart);
        break;
      case 'snapshot':
        writeSnapshotAt(journal, request.snapshot, request.keep);
        break;
      case 'close':
        journal.close();
        reply({ ok: true });
        parentPort!.close();
        port.close();
        forward?.close();
        return;
    }
  } catch (error) {
    reply({ ok: false, message: error instanceof Error ? error.message : String(error) });
    return;
  }
  reply({ ok: true });
});
