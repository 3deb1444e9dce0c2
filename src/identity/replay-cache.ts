/**
 * Signatures seen within their receive window, for replay protection. A set answers "seen?"; three
 * arrays in arrival order hold the ids, when they were signed and their expiries, so that
 * forgetting expired entries allocates nothing per request. Arrival order is close to expiry
 * order; an entry queued behind a later-expiring one is kept a little longer, which can only
 * refuse more, never less.
 *
 * When the bound forces it to forget a signature still inside its window, the cache raises
 * `forgottenThrough` to when that one was signed: a request signed that early can no longer be
 * told from a replay, and the caller refuses it (the client signs again). So what the cache
 * forgets early is refused, never carried out twice.
 */
export class ReplayCache {
  private readonly seen = new Set<string>();
  private ids: string[] = [];
  private signedAts: number[] = [];
  private expiries: number[] = [];
  private head = 0;
  private forgotten = Number.NEGATIVE_INFINITY;

  constructor(private readonly max: number) {}

  /** Requests signed at or before this time (ms) may have been received and forgotten. */
  get forgottenThrough(): number {
    return this.forgotten;
  }

  /** Records `id`, signed at `signedAt`, until `expiresAt`; false if it is already there. */
  remember(id: string, signedAt: number, expiresAt: number, now: number): boolean {
    while (this.head < this.ids.length && this.expiries[this.head]! < now) this.drop();
    // Only then make room: making room first could drop the very entry this is a replay of.
    if (this.seen.has(id)) return false;
    while (this.head < this.ids.length && this.seen.size >= this.max) {
      if (this.signedAts[this.head]! > this.forgotten) this.forgotten = this.signedAts[this.head]!;
      this.drop();
    }
    if (this.head >= 65_536 && this.head * 2 >= this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.signedAts = this.signedAts.slice(this.head);
      this.expiries = this.expiries.slice(this.head);
      this.head = 0;
    }
    this.seen.add(id);
    this.ids.push(id);
    this.signedAts.push(signedAt);
    this.expiries.push(expiresAt);
    return true;
  }

  private drop(): void {
    this.seen.delete(this.ids[this.head]!);
    this.head += 1;
  }
}
