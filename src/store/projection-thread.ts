/**
 * The engine thread's handle on the projection thread (projection-worker.ts): how far the read
 * model has got, and waiting for it. A read that must see a command's effects (read your own
 * writes) waits until the projection reaches the sequence acknowledged before it; that is one
 * batch at most.
 */
import { Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { ProjectionControl, ProjectionData, ProjectionReport } from './projection-worker.js';

export class ProjectionThread {
  private readonly worker: Worker;
  /** Set to 1 by the thread once it has closed the read model (close() waits on it). */
  private readonly closedFlag = new Int32Array(new SharedArrayBuffer(4));
  /** Waiters for a seq; registered with growing seqs, so the front is always the smallest. */
  private waiting: { seq: number; run: () => void }[] = [];
  private projectedValue: number;
  private failure: string | null = null;
  private closed = false;

  constructor(journalPath: string, storePath: string, fromSeq: number, input: MessagePort, delayMs = 0) {
    this.projectedValue = fromSeq;
    const workerData: ProjectionData = { journalPath, storePath, fromSeq, input, closedFlag: this.closedFlag.buffer as SharedArrayBuffer, delayMs };
    this.worker = new Worker(new URL('./projection-worker.js', import.meta.url), { workerData, transferList: [input] });
    this.worker.on('message', (report: ProjectionReport) => {
      if ('failed' in report) this.fail(report.failed);
      else this.advance(report.projected);
    });
    this.worker.on('error', (error) => this.fail(error.message));
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

  /** Blocks until everything up to `untilSeq` is projected, then stops the thread. */
  close(untilSeq: number): void {
    if (this.closed) return;
    this.closed = true;
    this.worker.postMessage({ op: 'close', untilSeq } satisfies ProjectionControl);
    const deadline = Date.now() + 30_000;
    while (this.failure === null && Atomics.load(this.closedFlag, 0) === 0 && Date.now() < deadline) Atomics.wait(this.closedFlag, 0, 0, 100);
    void this.worker.terminate();
  }

  /** The read model stopped: readers are no longer held back (they see it as it is), and health says so. */
  private fail(message: string): void {
    if (this.failure !== null) return;
    this.failure = message;
    process.emitWarning(`read-model projection stopped: ${message}`);
    for (const w of this.waiting.splice(0)) w.run();
  }

  private advance(seq: number): void {
    this.projectedValue = Math.max(this.projectedValue, seq);
    if (this.waiting.length === 0 || this.waiting[0]!.seq > this.projectedValue) return;
    const ready = this.waiting.filter((w) => w.seq <= this.projectedValue);
    this.waiting = this.waiting.filter((w) => w.seq > this.projectedValue);
    for (const w of ready) w.run();
  }
}
