/**
 * The single writer. Commands are queued, and once per event-loop turn the queue is stamped
 * (seq, ts), appended to the journal in one transaction (one fsync for the whole batch: group
 * commit), applied to the engine in order, and only then acknowledged.
 *
 *   submit(cmd) ─► queue ─► stamp ─► journal.append (durable) ─► engine.apply ─► resolve
 *
 * With `writerThread`, the append runs on a journal writer thread: one batch is in flight at a
 * time, and commands arriving meanwhile form the next batch, which is sent as soon as the
 * previous one is durable and applied.
 */
import { encodeSnapshot, findViolations, invariantCheckDue } from '../core/index.js';
import type { Command, Engine, EngineEvent, Envelope } from '../core/index.js';
import { recover } from './recovery.js';
import type { RecoveryReport } from './recovery.js';
import type { MessagePort } from 'node:worker_threads';
import { InlineJournalSink, ThreadJournalSink } from './journal-sink.js';
import type { JournalSink } from './journal-sink.js';
import { packSnapshot, SqliteJournal } from './sqlite-journal.js';
import type { JournalOptions, StampedBatch } from './sqlite-journal.js';

export interface SequencerOptions extends JournalOptions {
  /** Path of the SQLite journal file. */
  path: string;
  /**
   * Take a snapshot every this many commands (default SNAPSHOT_EVERY; 0: only when snapshotNow is
   * called, as when the read model's replica of the engine takes them off this thread).
   */
  snapshotEvery?: number;
  /** Snapshots kept on disk (default 3). */
  snapshotsKept?: number;
  /** Commands per journal transaction at most (default 8,192). */
  batchMax?: number;
  /** Commands waiting at most; beyond, submit refuses (default 100,000). */
  queueMax?: number;
  /**
   * Check every invariant on this thread after this many commands (default 1,000, or the number
   * of open orders when larger; 1 in tests checks after every batch; 0 never, as when the read
   * model's replica of the engine audits instead).
   */
  checkInvariantsEvery?: number;
  /** Milliseconds since the epoch; Date.now by default. */
  clock?: () => number;
  /** Append on a journal writer thread instead of the calling thread (default false). */
  writerThread?: boolean;
  /** Called for each replayed command during recovery. */
  onReplay?: (envelope: Envelope, events: EngineEvent[]) => void;
}

/** Commands between snapshots by default: recovery replays at most this many. */
export const SNAPSHOT_EVERY = 100_000;
/** Snapshots kept by default. */
export const SNAPSHOTS_KEPT = 3;

export interface Acknowledgement {
  seq: number;
  ts: number;
  events: EngineEvent[];
}

/**
 * Reads the engine just before a command applies, as the command finds it (an order about to be
 * cancelled, say): what the caller saw when it submitted may have changed since. It must neither
 * throw nor change the engine.
 */
export type BeforeApply<T> = (engine: Engine) => T;

/** An acknowledgement with what a BeforeApply read. */
export interface Observed<T> extends Acknowledgement {
  before: T;
}

export class SequencerOverloadedError extends Error {
  constructor() {
    super('the sequencer queue is full');
    this.name = 'SequencerOverloadedError';
  }
}

export class SequencerClosedError extends Error {
  constructor(reason: string, cause?: Error) {
    super(`the sequencer is not accepting commands: ${reason}`, { cause });
    this.name = 'SequencerClosedError';
  }
}

interface Pending {
  cmd: Command;
  before: BeforeApply<unknown> | undefined;
  resolve: (ack: Acknowledgement | Observed<unknown>) => void;
  reject: (error: Error) => void;
}

export type CommittedListener = (envelope: Envelope, events: EngineEvent[]) => void;
export interface Committed { envelope: Envelope; events: EngineEvent[] }
/** Called once per journal transaction with everything it committed, in order. */
export type BatchListener = (batch: Committed[]) => void;

export class Sequencer {
  readonly journal: SqliteJournal;
  readonly recovery: RecoveryReport;
  private engineValue: Engine;
  private readonly sink: JournalSink;
  private queue: Pending[] = [];
  private inFlight = false;
  private pumping = false;
  private stampedSeq: number;
  private stampedTs: number;
  private scheduled = false;
  private failure: Error | null = null;
  private closed = false;
  private lastSnapshotSeq: number;
  private sinceInvariantCheck = 0;
  private readonly listeners = new Set<CommittedListener>();
  private readonly batchListeners = new Set<BatchListener>();
  private readonly clock: () => number;
  private readonly snapshotEvery: number;
  private readonly snapshotsKept: number;
  private readonly batchMax: number;
  private readonly queueMax: number;
  private readonly checkInvariantsEvery: number;
  readonly stats = { commands: 0, batches: 0, snapshots: 0 };

  static open(options: SequencerOptions): Sequencer {
    return new Sequencer(options);
  }

  private constructor(options: SequencerOptions) {
    this.journal = new SqliteJournal(options.path, options);
    this.clock = options.clock ?? Date.now;
    this.snapshotEvery = options.snapshotEvery ?? SNAPSHOT_EVERY;
    this.snapshotsKept = options.snapshotsKept ?? SNAPSHOTS_KEPT;
    this.batchMax = options.batchMax ?? 8_192;
    this.queueMax = options.queueMax ?? 100_000;
    this.checkInvariantsEvery = options.checkInvariantsEvery ?? 1_000;
    try {
      const recovered = recover(this.journal, { onEvents: options.onReplay });
      this.engineValue = recovered.engine;
      this.recovery = recovered.report;
    } catch (error) {
      this.journal.close();
      throw error;
    }
    this.lastSnapshotSeq = this.recovery.snapshotSeq;
    this.stampedSeq = this.journal.lastSeq;
    this.stampedTs = this.journal.lastTs;
    this.checkInvariants();
    this.sink = options.writerThread ? new ThreadJournalSink(options.path, { synchronous: options.synchronous }) : new InlineJournalSink(this.journal);
  }

  get engine(): Engine {
    return this.engineValue;
  }

  /** The last command applied (and durable). */
  get lastSeq(): number {
    return this.engineValue.lastSeq;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  /** Resolves once the command is durable and applied; rejects if it could not be journaled. */
  submit(cmd: Command): Promise<Acknowledgement>;
  submit<T>(cmd: Command, before: BeforeApply<T>): Promise<Observed<T>>;
  submit(cmd: Command, before?: BeforeApply<unknown>): Promise<Acknowledgement | Observed<unknown>> {
    if (this.failure !== null) return Promise.reject(new SequencerClosedError(this.failure.message));
    if (this.closed) return Promise.reject(new SequencerClosedError('closed'));
    if (this.queue.length >= this.queueMax) return Promise.reject(new SequencerOverloadedError());
    return new Promise((resolve, reject) => {
      this.queue.push({ cmd, before, resolve, reject });
      if (!this.scheduled && !this.inFlight) {
        this.scheduled = true;
        setImmediate(() => this.pump());
      }
    });
  }

  /**
   * With the writer thread: from now on it posts each durable batch (StampedBatch) to
   * `port`, after a first message `{ from: seq }` saying that every later seq comes through the
   * port (what is at or before it is in the journal).
   */
  redirectForward(port: MessagePort): void {
    if (this.sink.redirect === undefined) throw new Error('batches are forwarded only with the writer thread');
    this.sink.redirect(port);
  }

  /** Listens to every committed command and its events, in sequence order. */
  onCommitted(listener: CommittedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Listens to each committed batch (for projections that write in one transaction per batch). */
  onBatch(listener: BatchListener): () => void {
    this.batchListeners.add(listener);
    return () => this.batchListeners.delete(listener);
  }

  /** Journals and applies everything queued, now (blocking until it is durable). */
  flush(): void {
    this.pump();
    this.sink.drain();
  }

  private pump(): void {
    this.scheduled = false;
    if (this.pumping) return;
    this.pumping = true;
    // An inline sink completes each batch within send(); a thread sink leaves it in flight.
    while (!this.inFlight && this.queue.length > 0 && this.failure === null) this.send(this.queue.splice(0, this.batchMax));
    this.pumping = false;
  }

  private send(batch: Pending[]): void {
    const commands: string[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) commands[i] = JSON.stringify(batch[i]!.cmd);
    const ts = Math.max(this.stampedTs, this.engineValue.lastTs, Math.floor(this.clock()));
    const stamped: StampedBatch = { firstSeq: this.stampedSeq + 1, ts, commands };
    this.stampedSeq += batch.length;
    this.stampedTs = ts;
    this.inFlight = true;
    this.sink.append(stamped, (error) => {
      this.inFlight = false;
      if (error !== null) {
        // Nothing of the batch is known durable: refuse it, and stop, since the disk cannot be trusted.
        this.fail(error, batch);
        return;
      }
      this.apply(batch, stamped);
      this.pump();
    });
  }

  private apply(batch: Pending[], stamped: StampedBatch): void {
    const committed: Committed[] | null = this.batchListeners.size > 0 ? [] : null;
    for (let i = 0; i < batch.length; i++) {
      // The command object itself, not a parse of its journal row: commands are plain JSON data
      // that their callers build afresh and never change after submit, so the two are the same
      // (the journal tests check it: replay gives the live state hash). Parsing each one back cost
      // the order path about 1 µs.
      const pending = batch[i]!;
      const envelope: Envelope = { seq: stamped.firstSeq + i, ts: stamped.ts, cmd: pending.cmd };
      let seen: unknown;
      let seenError: Error | null = null;
      if (pending.before !== undefined) {
        // The command is durable and applies whatever the read does: a failing read fails only its caller.
        try { seen = pending.before(this.engineValue); } catch (error) { seenError = error as Error; }
      }
      let events: EngineEvent[];
      try {
        events = this.engineValue.apply(envelope);
      } catch (error) {
        this.fail(error as Error, batch.slice(i));
        return;
      }
      for (const listener of this.listeners) listener(envelope, events);
      committed?.push({ envelope, events });
      if (seenError !== null) pending.reject(seenError);
      else pending.resolve(pending.before === undefined ? { seq: envelope.seq, ts: envelope.ts, events } : { seq: envelope.seq, ts: envelope.ts, events, before: seen });
    }
    if (committed !== null) for (const listener of this.batchListeners) listener(committed);
    this.stats.commands += batch.length;
    this.stats.batches += 1;
    this.sinceInvariantCheck += batch.length;
    if (invariantCheckDue(this.sinceInvariantCheck, this.checkInvariantsEvery, this.engineValue)) this.checkInvariants();
    if (this.snapshotEvery > 0 && this.engineValue.lastSeq - this.lastSnapshotSeq >= this.snapshotEvery) this.snapshotNow();
  }

  private checkInvariants(): void {
    this.sinceInvariantCheck = 0;
    const problems = findViolations(this.engineValue);
    if (problems.length > 0) {
      const error = new Error(`engine invariants broken at seq ${this.engineValue.lastSeq}: ${problems.join('; ')}`);
      this.fail(error, []);
      throw error;
    }
  }

  /** Writes a snapshot of the current state (atomic: one SQLite transaction, after what is journaled). */
  snapshotNow(): void {
    const engine = this.engineValue;
    if (engine.lastSeq === 0) return;
    this.sink.writeSnapshot(packSnapshot(engine.lastSeq, engine.lastTs, encodeSnapshot(engine.snapshot())), this.snapshotsKept);
    this.lastSnapshotSeq = engine.lastSeq;
    this.stats.snapshots += 1;
  }

  private fail(error: Error, pending: Pending[]): void {
    this.failure = error;
    // Callers see one kind of refusal whatever stopped the sequencer (the journal, the engine, a halt).
    const refusal = new SequencerClosedError(error.message, error);
    for (const p of pending) p.reject(refusal);
    for (const p of this.queue.splice(0)) p.reject(refusal);
  }

  get failed(): Error | null {
    return this.failure;
  }

  /**
   * Stops accepting commands for good (an audit found the engine's state broken): queued ones
   * are refused; a batch already handed to the journal is durable and is still applied.
   */
  halt(error: Error): void {
    if (this.failure === null) this.fail(error, []);
  }

  /** Commits what is queued, refuses anything later, and closes the journal. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.sink.close();
    this.journal.close();
  }
}
