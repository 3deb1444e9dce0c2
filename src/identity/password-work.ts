/**
 * Memory-hard password hashing is the dearest work an unauthenticated request can start: about a
 * third of a second of a core and 128 MiB per hash on our machine size. Left alone, a flood of
 * logins or sign-ups would queue hashes without bound on libuv's four threads and take both
 * cores from the engine. So hashes run at most `concurrency` at a time (half the cores, at least
 * one), at most `queue` more wait, and a request beyond that is refused at once with
 * PasswordWorkBusy (503 BUSY) rather than answered minutes later.
 */
import { availableParallelism } from 'node:os';

export class PasswordWorkBusy extends Error {
  constructor() {
    super('too many password checks are under way; retry in a moment');
  }
}

class PasswordWork {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private concurrency: number, private queue: number) {}

  /** Changes the bounds (tests use small ones). */
  configure(bounds: { concurrency: number; queue: number }): void {
    this.concurrency = bounds.concurrency;
    this.queue = bounds.queue;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.queue) throw new PasswordWorkBusy();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running += 1;
    }
    try {
      return await work();
    } finally {
      // The slot passes straight to the next waiter, so that a newcomer cannot overtake the queue.
      const next = this.waiting.shift();
      if (next === undefined) this.running -= 1;
      else next();
    }
  }
}

/** One per process: the cores and libuv's threads it guards are the process's. */
export const passwordWork = new PasswordWork(Math.max(1, Math.floor(availableParallelism() / 2)), 32);
