/**
 * Where the sequencer's batches become durable. Two sinks with one contract: appends and
 * snapshots are carried out in the order they are handed over, and each append's `done` runs
 * once its batch is durable.
 *
 * - InlineJournalSink writes on the calling thread (`done` runs before append returns).
 * - ThreadJournalSink hands batches to a writer thread that owns the write connection, so that
 *   the fsync of one batch overlaps with the engine thread receiving and parsing the next one.
 *   `done` runs from the event loop; drain() and close() block until the thread has caught up.
 */
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { JournalOptions, PackedSnapshot, SqliteJournal, StampedBatch } from './sqlite-journal.js';

export type AppendDone = (error: Error | null) => void;

export interface JournalSink {
  append(batch: StampedBatch, done: AppendDone): void;
  /** From the next append on, durable batches go to `port` (ThreadJournalSink only). */
  redirect?(port: MessagePort): void;
  /** Stores a snapshot, then keeps only the newest `keep`. */
  writeSnapshot(snapshot: PackedSnapshot, keep: number): void;
  /** Blocks until every append handed over is durable and its `done` has run. */
  drain(): void;
  close(): void;
}

export class InlineJournalSink implements JournalSink {
  constructor(private readonly journal: SqliteJournal) {}

  append(batch: StampedBatch, done: AppendDone): void {
    try {
      this.journal.appendStamped(batch);
    } catch (error) {
      done(error as Error);
      return;
    }
    done(null);
  }

  writeSnapshot(snapshot: PackedSnapshot, keep: number): void {
    writeSnapshotAt(this.journal, snapshot, keep);
  }

  drain(): void {}

  close(): void {}
}

/** The snapshot carries the chain link at its seq, so that recovery can resume the chain from it. */
export function writeSnapshotAt(journal: SqliteJournal, snapshot: PackedSnapshot, keep: number): void {
  const { seq } = snapshot;
  const chain = journal.lastSeq === seq ? journal.lastChain : journal.row(seq)?.chain;
  if (chain === undefined) throw new Error(`snapshot at seq ${seq}: no journal row`);
  journal.writeSnapshotKeeping(snapshot, chain, keep);
}

export type WriterRequest =
  | { op: 'append'; batch: StampedBatch }
  | { op: 'snapshot'; snapshot: PackedSnapshot; keep: number }
  | { op: 'forward'; port: MessagePort }
  | { op: 'close' };

export type WriterReply = { ok: true } | { ok: false; message: string };

/** The first message on a forwarding port: every seq after `from` comes through the port. */
export interface ForwardStart { from: number }

/**
 * What comes back on a forwarding port: a snapshot the projection thread took of its replica of
 * the engine, for the writer to store (it owns the journal's write connection).
 */
export interface ReplicaSnapshot { snapshot: PackedSnapshot; keep: number }

export interface WriterData {
  path: string;
  options: JournalOptions;
  port: MessagePort;
  /** Int32 counter the writer bumps after each reply, for drain() to wait on. */
  signal: SharedArrayBuffer;
}

export class JournalWriterFailedError extends Error {
  constructor(message: string) {
    super(`journal writer: ${message}`);
    this.name = 'JournalWriterFailedError';
  }
}

export class ThreadJournalSink implements JournalSink {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly signal = new Int32Array(new SharedArrayBuffer(4));
  /** One callback per request, in order; the writer replies to each, in order. */
  private readonly waiting: ((reply: WriterReply) => void)[] = [];
  private failure: Error | null = null;
  private closed = false;

  constructor(path: string, options: JournalOptions = {}) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const workerData: WriterData = { path, options, port: port2, signal: this.signal.buffer as SharedArrayBuffer };
    this.worker = new Worker(new URL('./journal-writer.js', import.meta.url), { workerData, transferList: [port2] });
    this.port.on('message', (reply: WriterReply) => this.settle(reply));
    this.worker.on('error', (error) => this.failAll(error));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.failAll(new JournalWriterFailedError(`thread exited (${code})`));
    });
  }

  append(batch: StampedBatch, done: AppendDone): void {
    this.request({ op: 'append', batch }, (reply) => done(reply.ok ? null : new JournalWriterFailedError(reply.message)));
  }

  redirect(port: MessagePort): void {
    this.request({ op: 'forward', port }, (reply) => {
      if (!reply.ok) process.emitWarning(`journal writer: batches not redirected: ${reply.message}`);
    }, [port]);
  }

  writeSnapshot(snapshot: PackedSnapshot, keep: number): void {
    this.request({ op: 'snapshot', snapshot, keep }, (reply) => {
      // A lost snapshot costs replay time, not data: recovery falls back to an older one.
      if (!reply.ok) process.emitWarning(`snapshot at seq ${snapshot.seq} not written: ${reply.message}`);
    });
  }

  drain(): void {
    while (this.waiting.length > 0) {
      const seen = Atomics.load(this.signal, 0);
      const received = receiveMessageOnPort(this.port);
      if (received !== undefined) {
        this.settle(received.message as WriterReply);
        continue;
      }
      if (this.failure !== null) return;
      Atomics.wait(this.signal, 0, seen, 100);
    }
  }

  close(): void {
    if (this.closed) return;
    if (this.failure === null) {
      this.request({ op: 'close' }, () => {});
      this.drain();
    }
    this.closed = true;
    this.port.close();
    void this.worker.terminate();
  }

  private request(message: WriterRequest, callback: (reply: WriterReply) => void, transfer: MessagePort[] = []): void {
    if (this.failure !== null) {
      callback({ ok: false, message: this.failure.message });
      return;
    }
    this.waiting.push(callback);
    this.worker.postMessage(message, transfer);
  }

  private settle(reply: WriterReply): void {
    this.waiting.shift()?.(reply);
  }

  private failAll(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    for (const callback of this.waiting.splice(0)) callback({ ok: false, message: error.message });
  }
}
