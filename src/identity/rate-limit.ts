/**
 * Request-weight budgets per subject (an API key, an IP): a token bucket holding `capacity`
 * weight, refilled at capacity per interval. A request that does not fit is refused with the
 * time until it would.
 */
export interface RateLimitOptions {
  capacity: number;
  intervalMs: number;
  /** Bound on tracked subjects; idle ones are dropped first. */
  subjectsMax: number;
}

interface Bucket { tokens: number; updatedAt: number }

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly options: RateLimitOptions) {}

  /** Takes `weight` from the subject's bucket; returns 0 if allowed, else milliseconds to wait. */
  take(subject: string, weight: number, now: number): number {
    const { capacity, intervalMs } = this.options;
    let bucket = this.buckets.get(subject);
    if (bucket === undefined) {
      if (this.buckets.size >= this.options.subjectsMax) this.evict(now);
      bucket = { tokens: capacity, updatedAt: now };
      this.buckets.set(subject, bucket);
    } else {
      const refill = ((now - bucket.updatedAt) * capacity) / intervalMs;
      bucket.tokens = Math.min(capacity, bucket.tokens + refill);
      bucket.updatedAt = now;
    }
    if (bucket.tokens >= weight) {
      bucket.tokens -= weight;
      return 0;
    }
    return Math.ceil(((weight - bucket.tokens) * intervalMs) / capacity);
  }

  /**
   * Drops subjects whose bucket has refilled (idle ones: forgetting them changes nothing). If busy
   * subjects still fill it, the oldest tenth goes, so that a flood of new subjects (addresses are
   * cheap to come by) pays for one scan per tenth of the bound, not one per request.
   */
  private evict(now: number): void {
    for (const [subject, bucket] of this.buckets) {
      if (now - bucket.updatedAt >= this.options.intervalMs) this.buckets.delete(subject);
    }
    const keep = Math.floor(this.options.subjectsMax * 0.9);
    for (const subject of this.buckets.keys()) {
      if (this.buckets.size <= keep) break;
      this.buckets.delete(subject);
    }
  }

  /** Subjects tracked now (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }
}
