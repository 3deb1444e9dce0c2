/**
 * Signatures seen within their receive window, for replay protection. A set answers "seen?"; two
 * arrays in arrival order hold the ids and their expiries, so that forgetting expired entries
 * allocates nothing per request. Arrival order is close to expiry order; an entry queued behind a
 * later-expiring one is kept a little longer, which can only refuse more, never less.
 */
export class ReplayCache {
  private readonly seen = new Set<string>();
  private ids: string[] = [];
  private expiries: number[] = [];
  private head = 0;

  constructor(private readonly max: number) {}

  /** Records `id` until `expiresAt`; false if it is already there. */
  remember(id: string, expiresAt: number, now: number): boolean {
    while (this.head < this.ids.length && (this.expiries[this.head]! < now || this.seen.size >= this.max)) {
      this.seen.delete(this.ids[this.head]!);
      this.head += 1;
    }
    if (this.head >= 65_536 && this.head * 2 >= this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.expiries = this.expiries.slice(this.head);
      this.head = 0;
    }
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    this.ids.push(id);
    this.expiries.push(expiresAt);
    return true;
  }
}
