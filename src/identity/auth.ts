/**
 * Request authentication for the native API (DESIGN.md §8):
 *
 *   X-BOURSE-KEY, X-BOURSE-TIMESTAMP (ms), optional X-BOURSE-RECV-WINDOW (ms, ≤ 60,000),
 *   X-BOURSE-SIGNATURE = hex HMAC-SHA256(secret, timestamp + METHOD + path-with-query + body)
 *   (or an Ed25519 signature, hex, of the same string, for keys registered as Ed25519).
 *
 * Signatures are compared in constant time, a signature is accepted once within its window,
 * a key's IP allow-list is enforced, and repeated bad signatures lock the key and the IP out.
 */
import { createPublicKey, verify as verifySignature } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { addressSubject, allows, blockList } from './ip.js';
import { trimToBound } from './bounded.js';
import { ReplayCache } from './replay-cache.js';
import { HmacSha256 } from './hmac-sha256.js';
import type { BlockList } from 'node:net';
import type { ApiKeyRecord, IdentityStore, Permission } from './store.js';

export { blockList } from './ip.js';

export interface AuthRequest {
  method: string;
  pathWithQuery: string;
  body: string;
  key: string | undefined;
  timestamp: string | undefined;
  recvWindow: string | undefined;
  signature: string | undefined;
  ip: string;
  now: number;
}

export type AuthFailureCode =
  | 'MISSING_CREDENTIALS' | 'INVALID_KEY' | 'INVALID_TIMESTAMP' | 'STALE_REQUEST' | 'INVALID_SIGNATURE'
  | 'REPLAYED_REQUEST' | 'IP_NOT_ALLOWED' | 'LOCKED_OUT' | 'PERMISSION_DENIED' | 'USER_DISABLED' | 'KEY_EXPIRED';

export type AuthResult = { ok: true; key: ApiKeyRecord } | { ok: false; code: AuthFailureCode; message: string; retryAfterSeconds?: number };

export interface AuthOptions {
  recvWindowDefaultMs: number;
  recvWindowMaxMs: number;
  /** How far ahead of the server clock a timestamp may be. */
  futureToleranceMs: number;
  /** Bad signatures per key or IP within failureWindowMs before a lockout. */
  failuresBeforeLockout: number;
  failureWindowMs: number;
  lockoutMs: number;
  /** Bound on remembered signatures (replay protection). */
  replayCacheMax: number;
  /**
   * Requests signed before this time (ms) are refused (0: none). The exchange sets it to when it
   * started: the replay cache lives in memory, so a request the previous run received, still
   * inside its receive window, could otherwise be replayed after a restart. What this leaves open
   * is a request the previous run took with a timestamp ahead of its clock (futureToleranceMs at
   * most) and a restart quicker than that lead.
   */
  signedNotBefore: number;
}

export const DEFAULT_AUTH_OPTIONS: AuthOptions = {
  recvWindowDefaultMs: 5_000,
  recvWindowMaxMs: 60_000,
  futureToleranceMs: 1_000,
  failuresBeforeLockout: 10,
  failureWindowMs: 60_000,
  lockoutMs: 300_000,
  replayCacheMax: 2_000_000,
  signedNotBefore: 0,
};

/** Subjects (addresses, keys, logins) with recent failures kept at most. */
const FAILURE_SUBJECTS_MAX = 100_000;

/**
 * A key as verification needs it; the HMAC key's pads are computed once rather than on every
 * request. `usedAt`: the last use recorded for it.
 */
interface CachedKey { record: ApiKeyRecord; allow: BlockList | null; publicKey: KeyObject | null; hmac: HmacSha256 | null; userDisabled: boolean; usedAt: number }

/**
 * A key's last use is kept to the minute: recording every request would put a write on the order
 * path, while a user checking for a forgotten or misused key needs no finer time than this.
 */
const KEY_USE_RESOLUTION_MS = 60_000;

export class Authenticator {
  private readonly keys = new Map<string, CachedKey>();
  private readonly replays: ReplayCache;
  private readonly failures = new Map<string, { count: number; since: number; lockedUntil: number }>();
  /** Key uses not yet written to the store (flushKeyUses). */
  private readonly uses = new Map<string, { key: string; at: number; ip: string }>();

  constructor(private readonly store: IdentityStore, private readonly options: AuthOptions = DEFAULT_AUTH_OPTIONS) {
    this.replays = new ReplayCache(options.replayCacheMax);
  }

  /** Drops a cached key so that revocation, permission changes and its user's being disabled apply at once. */
  forget(key: string): void {
    this.keys.delete(key);
  }

  verify(request: AuthRequest): AuthResult {
    const { key, timestamp, signature, now } = request;
    if (key === undefined || timestamp === undefined || signature === undefined) {
      return fail('MISSING_CREDENTIALS', 'X-BOURSE-KEY, X-BOURSE-TIMESTAMP and X-BOURSE-SIGNATURE are required');
    }
    const locked = this.lockedFor([addressSubject(request.ip), `key:${key}`], now);
    if (locked > 0) return { ok: false, code: 'LOCKED_OUT', message: 'too many invalid signatures; try later', retryAfterSeconds: Math.ceil(locked / 1000) };
    const cached = this.lookup(key);
    if (cached === undefined || cached.record.revokedAt !== null) {
      this.recordFailure(addressSubject(request.ip), now);
      return fail('INVALID_KEY', 'unknown or revoked API key');
    }
    if (!/^\d{1,16}$/.test(timestamp)) return fail('INVALID_TIMESTAMP', 'X-BOURSE-TIMESTAMP must be milliseconds since the epoch');
    let window = this.options.recvWindowDefaultMs;
    if (request.recvWindow !== undefined) {
      if (!/^\d{1,6}$/.test(request.recvWindow) || Number(request.recvWindow) > this.options.recvWindowMaxMs || Number(request.recvWindow) === 0) {
        return fail('INVALID_TIMESTAMP', `X-BOURSE-RECV-WINDOW must be 1..${this.options.recvWindowMaxMs} ms`);
      }
      window = Number(request.recvWindow);
    }
    const ts = Number(timestamp);
    if (ts > now + this.options.futureToleranceMs || now - ts > window) {
      return fail('STALE_REQUEST', 'timestamp outside the receive window; check the clock');
    }
    if (ts < this.options.signedNotBefore) {
      return fail('STALE_REQUEST', 'signed before the server started: sign the request again with a new timestamp');
    }
    const payload = `${timestamp}${request.method.toUpperCase()}${request.pathWithQuery}${request.body}`;
    if (!this.signatureMatches(cached, payload, signature)) {
      this.recordFailure(addressSubject(request.ip), now);
      this.recordFailure(`key:${key}`, now);
      return fail('INVALID_SIGNATURE', 'signature does not match');
    }
    // Only to whoever holds the secret: a prober cannot tell a disabled user's key from a bad signature.
    if (cached.userDisabled) return fail('USER_DISABLED', 'this user is disabled; contact the exchange');
    if (cached.record.expiresAt !== null && now >= cached.record.expiresAt) return fail('KEY_EXPIRED', 'this API key has expired: make a new one');
    if (cached.allow !== null && !allows(cached.allow, request.ip)) {
      return fail('IP_NOT_ALLOWED', 'this key may not be used from this address');
    }
    if (ts <= this.replays.forgottenThrough) {
      return fail('STALE_REQUEST', 'signed too long ago for the server to tell it from a replay under this load: sign the request again with a new timestamp');
    }
    // The signature alone identifies the request: another key cannot produce the same one.
    if (!this.replays.remember(signature, ts, ts + window, now)) {
      return fail('REPLAYED_REQUEST', 'this request was already received');
    }
    if (now - cached.usedAt >= KEY_USE_RESOLUTION_MS) {
      cached.usedAt = now;
      this.uses.set(key, { key, at: now, ip: request.ip });
    }
    return { ok: true, key: cached.record };
  }

  /** Writes the key uses gathered since the last call to the store, in one transaction. */
  flushKeyUses(): void {
    if (this.uses.size === 0) return;
    this.store.recordKeyUse(this.uses.values());
    this.uses.clear();
  }

  static permits(key: ApiKeyRecord, permission: Permission): boolean {
    return key.permissions.includes(permission);
  }

  private lookup(key: string): CachedKey | undefined {
    if (!/^[0-9a-f]{32}$/.test(key)) return undefined;
    let cached = this.keys.get(key);
    if (cached === undefined) {
      const record = this.store.apiKey(key);
      if (record === undefined) return undefined;
      cached = {
        record,
        allow: record.ipAllow.length === 0 ? null : blockList(record.ipAllow),
        publicKey: record.scheme === 'ed25519' ? createPublicKey(record.secret) : null,
        hmac: record.scheme === 'ed25519' ? null : new HmacSha256(Buffer.from(record.secret, 'utf8')),
        userDisabled: (this.store.user(record.userId)?.disabledAt ?? null) !== null,
        usedAt: record.lastUsedAt ?? Number.MIN_SAFE_INTEGER,
      };
      this.keys.set(key, cached);
    }
    return cached;
  }

  private signatureMatches(cached: CachedKey, payload: string, signature: string): boolean {
    if (cached.hmac !== null) return cached.hmac.matches(payload, signature);
    if (!/^[0-9a-fA-F]+$/.test(signature) || signature.length % 2 !== 0 || signature.length > 256) return false;
    return verifySignature(null, Buffer.from(payload), cached.publicKey!, Buffer.from(signature, 'hex'));
  }

  /** Counts a failed attempt (bad signature, bad password) against a subject such as `ip:…`. */
  recordFailure(subject: string, now: number, failuresBeforeLockout = this.options.failuresBeforeLockout): void {
    let entry = this.failures.get(subject);
    if (entry === undefined || now - entry.since > this.options.failureWindowMs) {
      entry = { count: 0, since: now, lockedUntil: entry?.lockedUntil ?? 0 };
      this.failures.set(subject, entry);
    }
    entry.count += 1;
    if (entry.count >= failuresBeforeLockout) entry.lockedUntil = now + this.options.lockoutMs;
    if (this.failures.size > FAILURE_SUBJECTS_MAX) this.pruneFailures(now);
  }

  /** Subjects whose window and lockout are over go first; then the oldest, lockouts included. */
  private pruneFailures(now: number): void {
    trimToBound(this.failures, FAILURE_SUBJECTS_MAX, (v) => v.lockedUntil < now && now - v.since > this.options.failureWindowMs);
  }

  /** Failures within the window that lock a subject out. */
  get failuresBeforeLockout(): number {
    return this.options.failuresBeforeLockout;
  }

  /** Subjects with recent failures or a lockout (bounded by FAILURE_SUBJECTS_MAX). */
  get trackedFailures(): number {
    return this.failures.size;
  }

  /** Milliseconds until the longest lockout among the subjects ends (0 = none). */
  lockedFor(subjects: string[], now: number): number {
    let longest = 0;
    for (const subject of subjects) {
      const entry = this.failures.get(subject);
      if (entry !== undefined && entry.lockedUntil > now) longest = Math.max(longest, entry.lockedUntil - now);
    }
    return longest;
  }
}

function fail(code: AuthFailureCode, message: string): AuthResult {
  return { ok: false, code, message };
}
