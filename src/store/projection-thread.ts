/**
 * The engine thread's handle on the projection thread (projection-worker.ts): how far the read
 * model has got, and waiting for it. A read that must see a command's effects (read your own
 * writes) waits until the projection reaches the sequence acknowledged before it; that is one
 * batch at most.
 *
 * If the thread fails (a disk error, a bug), readers stop waiting and `failed` says why (health
 * reports it); a new thread starts after a pause that doubles with each failure in a row, up to a
 * minute. It takes over the journal writer's stream, reads what the read model lacks from the
 * journal and carries on; `failed` clears once it reports progress.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { ProjectionControl, ProjectionData, ProjectionReport } from './projection-worker.js';
import type { UserHoldings } from '../core/index.js';

export interface ProjectionOptions {
  /** The first pause before a restart (doubles per failure in a row, at most a minute). */
  restartMs: number;
  /** The replica checks every invariant after at least this many commands (0: never). */
  auditEvery: number;
  /** The replica is snapshotted every this many commands (0: never), keeping the newest snapshotsKept. */
  snapshotEvery: number;
  snapshotsKept: number;
  /** Called once if the replica's audit finds an invariant broken. */
  onViolation: (message: string) => void;
  /** Test hook: the thread waits this long before each batch. */
  delayMs: number;
  /** Test hook: the first thread breaks its replica's books after this seq. */
  breakAtSeq: number;
  /** Test hook: the first thread fails on the batch holding this seq (0: never). */
  failAtSeq: number;
}

const RESTART_MAX_MS = 60_000;

export class ProjectionThread {
  private worker!: Worker;
  /** Set to 1 by the current thread once it has closed the read model (close() waits on it). */
  private closedFlag!: Int32Array;
  /** Waiters for a seq; registered with growing seqs, so the front is always the smallest. */
  private waiting: { seq: number; run: () => void }[] = [];
  private projectedValue: number;
  private failure: string | null = null;
  private failedAt = 0;
  private restartDelay: number;
  private restartTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Holdings asked of the thread and not yet answered, by request id. */
  private readonly holdingsAsked = new Map<number, { resolve: (holdings: UserHoldings) => void; reject: (error: Error) => void }>();
  private nextHoldings = 1;

  /**
   * `fromSeq`: how far the read model is now. `redirect` hands the journal writer the port that
   * durable batches go to from then on.
   */
  constructor(
    private readonly journalPath: string,
    private readonly storePath: string,
    fromSeq: number,
    private readonly redirect: (port: MessagePort) => void,
    private readonly options: ProjectionOptions,
  ) {
    this.projectedValue = fromSeq;
    this.restartDelay = options.restartMs;
    this.start(options.failAtSeq);
  }

  get failed(): string | null {
    return this.failure;
  }

  /** Runs `fn` once the read model includes `seq` (at once when it does). */
  after(seq: number, fn: () => void): void {
    if (this.projectedValue >= seq || this.failure !== null) fn();
    else this.waiting.push({ seq, run: fn });
  }

  /** Resolves once the read model includes `seq`. */
  reached(seq: number): Promise<void> {
    if (this.projectedValue >= seq || this.failure !== null) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push({ seq, run: resolve }));
  }

  /**
   * Every user's holdings on the thread's replica of the engine, once it is at `atLeastSeq` or
   * past it: one seq's balances, read without stopping the serving thread. Rejects if the thread
   * fails or stops first, or has not answered within `waitMs`.
   */
  holdings(atLeastSeq: number, assets: readonly string[], waitMs: number): Promise<UserHoldings> {
    if (this.failure !== null || this.closed) return Promise.reject(new Error('the read-model thread is not running'));
    const id = this.nextHoldings++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.holdingsAsked.delete(id);
        reject(new Error(`the read-model thread did not reach seq ${atLeastSeq} within ${waitMs} ms`));
      }, waitMs);
      const settled = (): void => { clearTimeout(timer); this.holdingsAsked.delete(id); };
      this.holdingsAsked.set(id, {
        resolve: (holdings) => { settled(); resolve(holdings); },
        reject: (error) => { settled(); reject(error); },
      });
      this.worker.postMessage({ op: 'holdings', id, atLeastSeq, assets: [...assets] } satisfies ProjectionControl);
    });
  }

  private abandonHoldings(reason: string): void {
    for (const asked of [...this.holdingsAsked.values()]) asked.reject(new Error(reason));
  }

  /** Blocks until everything up to `untilSeq` is projected, then stops the thread. */
  close(untilSeq: number): void {
    if (this.closed) return;
    this.closed = true;
    this.abandonHoldings('the read-model thread stopped');
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    if (this.failure !== null) {
      // No thread is running; the next start catches up from the journal.
      void this.worker.terminate();
      return;
    }
    this.worker.postMessage({ op: 'close', untilSeq } satisfies ProjectionControl);
    const deadline = Date.now() + 30_000;
    while (this.failure === null && Atomics.load(this.closedFlag, 0) === 0 && Date.now() < deadline) Atomics.wait(this.closedFlag, 0, 0, 100);
    void this.worker.terminate();
  }

  private start(failAtSeq: number): void {
    const { port1, port2 } = new MessageChannel();
    const closedFlag = new Int32Array(new SharedArrayBuffer(4));
    const workerData: ProjectionData = {
      journalPath: this.journalPath, storePath: this.storePath, input: port2,
      closedFlag: closedFlag.buffer as SharedArrayBuffer, auditEvery: this.options.auditEvery,
      snapshotEvery: this.options.snapshotEvery, snapshotsKept: this.options.snapshotsKept, delayMs: this.options.delayMs, failAtSeq,
      breakAtSeq: this.options.breakAtSeq,
    };
    const worker = new Worker(new URL('./projection-worker.js', import.meta.url), { workerData, transferList: [port2] });
    this.worker = worker;
    this.closedFlag = closedFlag;
    this.redirect(port1);
    // Reports of a thread that has been replaced are ignored.
    worker.on('message', (report: ProjectionReport) => {
      if (worker !== this.worker) return;
      if ('failed' in report) this.fail(report.failed);
      else if ('violated' in report) this.options.onViolation(report.violated);
      else if ('holdings' in report) this.holdingsAsked.get(report.id)?.resolve(report.holdings);
      else this.advance(report.projected);
    });
    worker.on('error', (error) => {
      if (worker === this.worker) this.fail(error.message);
    });
  }

  /** The read model stopped: readers are no longer held back (they see it as it is), health says so, and a new thread is due. */
  private fail(message: string): void {
    if (this.failure !== null) return;
    this.failure = message;
    this.failedAt = this.projectedValue;
    this.abandonHoldings(`the read-model thread failed: ${message}`);
    process.emitWarning(`read-model projection stopped at seq ${this.projectedValue}: ${message}; restarting in ${this.restartDelay} ms`);
    for (const w of this.waiting.splice(0)) w.run();
    void this.worker.terminate();
    if (this.closed) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (!this.closed) this.start(0);
    }, this.restartDelay);
    this.restartTimer.unref();
    this.restartDelay = Math.min(this.restartDelay * 2, RESTART_MAX_MS);
  }

  private advance(seq: number): void {
    this.projectedValue = Math.max(this.projectedValue, seq);
    if (this.failure !== null) {
      this.failure = null;
      process.emitWarning(`read-model projection running again at seq ${this.projectedValue}`);
    }
    // Past the batch that failed: the next failure starts from the first pause again.
    if (this.projectedValue > this.failedAt) this.restartDelay = this.options.restartMs;
    if (this.waiting.length === 0 || this.waiting[0]!.seq > this.projectedValue) return;
    const ready = this.waiting.filter((w) => w.seq <= this.projectedValue);
    this.waiting = this.waiting.filter((w) => w.seq > this.projectedValue);
    for (const w of ready) w.run();
  }
}
