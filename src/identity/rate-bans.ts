/**
 * Bans for subjects (an address, a key) that keep sending after they were refused for their
 * request budget. A refusal says how long to wait (Retry-After); a client that backs off is never
 * banned, whatever its rate. Requests refused while the subject should be waiting are ignored
 * refusals, counted from `graceMs` after the first refusal (the requests already on their way
 * when it went out are not the client's fault) until its Retry-After ends. Past
 * `ignoredRefusalsBeforeBan` of them within a minute the subject is banned: every request is
 * refused at once for `banMs`, doubled for each earlier ban still remembered (`banMemoryMs`), up to
 * `banMaxMs`. A store, if given, keeps them across restarts.
 */

export interface RateBanOptions {
  /** Ignored refusals within a minute before a ban (0: never ban). */
  ignoredRefusalsBeforeBan: number;
  /** How long after a subject's first refusal requests already on their way are excused. */
  graceMs: number;
  banMs: number;
  banMaxMs: number;
  /** How long an ended ban still doubles the next. */
  banMemoryMs: number;
  /** Bound on tracked subjects; those with nothing in force go first. */
  subjectsMax: number;
}

export const DEFAULT_RATE_BANS: RateBanOptions = {
  ignoredRefusalsBeforeBan: 100,
  graceMs: 500,
  banMs: 120_000,
  banMaxMs: 3 * 86_400_000,
  banMemoryMs: 86_400_000,
  subjectsMax: 100_000,
};

const WINDOW_MS = 60_000;

interface Conduct {
  /** When the refusal that set the present wait went out, and when that wait ends. */
  refusedAt: number;
  waitUntil: number;
  ignored: number;
  ignoredSince: number;
  bannedUntil: number;
  /** Bans so far, and when the last one ended (for doubling). */
  bans: number;
  lastBanEnd: number;
}

export interface RateBan {
  subject: string;
  until: number;
  /** This subject's bans remembered, this one included (its length doubles with each). */
  bans: number;
}

/** Where bans outlive the process: the last ban of each subject, loaded at start. */
export interface RateBanStore {
  save(ban: RateBan): void;
  forget(subject: string): void;
  /** The bans that end after `since`. */
  load(since: number): RateBan[];
}

export class RateBans {
  private readonly conduct = new Map<string, Conduct>();
  private readonly listeners = new Set<(ban: RateBan) => void>();
  /** Bans in force or lapsed but not yet looked at; while 0, a request pays one comparison. */
  private banned = 0;
  private bansMade = 0;

  constructor(private readonly options: RateBanOptions = DEFAULT_RATE_BANS, private readonly store?: RateBanStore, now = 0) {
    for (const { subject, until, bans } of store?.load(now - options.banMemoryMs) ?? []) {
      const bannedUntil = until > now ? until : 0;
      if (bannedUntil !== 0) this.banned += 1;
      this.conduct.set(subject, { refusedAt: now, waitUntil: 0, ignored: 0, ignoredSince: now, bannedUntil, bans, lastBanEnd: until });
    }
  }

  /** Whether no subject is banned (a lapsed ban still counts until looked at). */
  get none(): boolean {
    return this.banned === 0;
  }

  /** Milliseconds the subject's ban has left (0: not banned). */
  remaining(subject: string, now: number): number {
    if (this.banned === 0) return 0;
    const conduct = this.conduct.get(subject);
    if (conduct === undefined || conduct.bannedUntil === 0) return 0;
    if (conduct.bannedUntil > now) return conduct.bannedUntil - now;
    this.lapse(conduct);
    return 0;
  }

  /**
   * Records a refusal for the budget, told to wait `waitMs`; returns the ban it brings, if it
   * brings one. The wait the client is told is whole seconds, as Retry-After carries it.
   */
  refused(subject: string, waitMs: number, now: number): RateBan | undefined {
    const { options } = this;
    if (options.ignoredRefusalsBeforeBan === 0) return undefined;
    let conduct = this.conduct.get(subject);
    if (conduct === undefined) {
      if (this.conduct.size >= options.subjectsMax) this.trim(now);
      conduct = { refusedAt: now, waitUntil: 0, ignored: 0, ignoredSince: now, bannedUntil: 0, bans: 0, lastBanEnd: 0 };
      this.conduct.set(subject, conduct);
    }
    if (now >= conduct.waitUntil) {
      conduct.refusedAt = now;
      conduct.waitUntil = now + Math.ceil(waitMs / 1000) * 1000;
      return undefined;
    }
    if (now - conduct.refusedAt < options.graceMs) return undefined;
    if (now - conduct.ignoredSince > WINDOW_MS) {
      conduct.ignored = 0;
      conduct.ignoredSince = now;
    }
    conduct.ignored += 1;
    if (conduct.ignored < options.ignoredRefusalsBeforeBan) return undefined;
    return this.ban(subject, conduct, now);
  }

  /** The bans in force, longest first. */
  all(now: number): RateBan[] {
    const bans: RateBan[] = [];
    if (this.banned === 0) return bans;
    for (const [subject, conduct] of this.conduct) {
      if (conduct.bannedUntil > now) bans.push({ subject, until: conduct.bannedUntil, bans: conduct.bans });
      else if (conduct.bannedUntil !== 0) this.lapse(conduct);
    }
    return bans.sort((a, b) => b.until - a.until);
  }

  /** Lifts a subject's ban and forgets its conduct (the next ban is a first again); false if it had none. */
  lift(subject: string, now: number): boolean {
    const conduct = this.conduct.get(subject);
    if (conduct === undefined || conduct.bannedUntil <= now) return false;
    this.lapse(conduct);
    this.conduct.delete(subject);
    this.store?.forget(subject);
    return true;
  }

  /** Bans made since start (for metrics). */
  get made(): number {
    return this.bansMade;
  }

  /** Called with each new ban (the socket gateway closes the banned subject's sockets). */
  onBan(listener: (ban: RateBan) => void): void {
    this.listeners.add(listener);
  }

  private ban(subject: string, conduct: Conduct, now: number): RateBan {
    const { banMs, banMaxMs, banMemoryMs } = this.options;
    if (conduct.bans > 0 && now - conduct.lastBanEnd > banMemoryMs) conduct.bans = 0;
    const length = Math.min(banMaxMs, banMs * 2 ** Math.min(conduct.bans, 40));
    conduct.bans += 1;
    if (conduct.bannedUntil === 0) this.banned += 1;
    conduct.bannedUntil = now + length;
    conduct.lastBanEnd = conduct.bannedUntil;
    conduct.ignored = 0;
    conduct.ignoredSince = now;
    conduct.waitUntil = 0;
    this.bansMade += 1;
    const ban = { subject, until: conduct.bannedUntil, bans: conduct.bans };
    this.store?.save(ban);
    for (const listener of this.listeners) listener(ban);
    return ban;
  }

  private lapse(conduct: Conduct): void {
    conduct.bannedUntil = 0;
    this.banned -= 1;
  }

  /**
   * Subjects with no wait, ban or remembered ban go first; then the oldest not banned, until a
   * tenth of the bound is free; bans in force go only if they alone still fill the bound.
   */
  private trim(now: number): void {
    const { subjectsMax, banMemoryMs } = this.options;
    const keep = Math.floor(subjectsMax * 0.9);
    const forget = (subject: string, conduct: Conduct): void => {
      if (conduct.bannedUntil !== 0) this.lapse(conduct);
      this.conduct.delete(subject);
    };
    for (const [subject, c] of this.conduct) {
      if (c.bannedUntil <= now && now >= c.waitUntil && (c.bans === 0 || now - c.lastBanEnd > banMemoryMs)) forget(subject, c);
    }
    for (const [subject, c] of this.conduct) {
      if (this.conduct.size <= keep) break;
      if (c.bannedUntil <= now) forget(subject, c);
    }
    for (const [subject, c] of this.conduct) {
      if (this.conduct.size < subjectsMax) break;
      forget(subject, c);
    }
  }
}
