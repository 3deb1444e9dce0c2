/**
 * Request-weight budgets per subject (an API key, an IP): a token bucket holding `capacity`
 * weight, refilled at capacity per interval. A request that does not fit is refused with the
 * time until it would.
 */
import { trimToBound } from './bounded.js';

export interface RateLimitOptions {
  capacity: number;
  intervalMs: number;
  /** Bound on tracked subjects; idle ones are dropped first. */
  subjectsMax: number;
}

interface Bucket { tokens: number; updatedAt: number }

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** What the subject of the last take had left after it (0 if refused): the rate-limit headers' figure, without an object per call. */
  left = 0;

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
      this.left = bucket.tokens;
      return 0;
    }
    this.left = 0;
    return Math.ceil(((weight - bucket.tokens) * intervalMs) / capacity);
  }

  /** What the subject could spend now, without taking any (a subject not seen has the whole capacity). */
  available(subject: string, now: number): number {
    const { capacity, intervalMs } = this.options;
    const bucket = this.buckets.get(subject);
    if (bucket === undefined) return capacity;
    return Math.min(capacity, bucket.tokens + ((now - bucket.updatedAt) * capacity) / intervalMs);
  }

  get capacity(): number {
    return this.options.capacity;
  }

  /** Idle subjects (their bucket has refilled: forgetting them changes nothing) go first. */
  private evict(now: number): void {
    trimToBound(this.buckets, this.options.subjectsMax, (bucket) => now - bucket.updatedAt >= this.options.intervalMs);
  }

  /** Subjects tracked now (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }
}
