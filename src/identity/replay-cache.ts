/**
 * Signatures seen within their receive window, for replay protection.
 *
 * A signature is identified by its first 128 bits (the first 32 hex digits, either case): an
 * HMAC-SHA256 or an Ed25519 signature is unpredictable without the key, so two different requests
 * share them with probability 2^-128, and only a key's holder could try. In an Ed25519 signature
 * those bits belong to R, which a re-encoding of S would leave unchanged.
 *
 * Entries live in a ring in arrival order (typed arrays: the 128 bits, when signed, when they
 * expire), indexed by an open-addressing hash table of ring slots. Nothing is allocated per
 * request, and once the ring has grown to what the load needs (doubling, up to the bound), no
 * step is linear in the entries held. A `Set` of hex strings with arrays beside it stalled the
 * event loop for 7–14 ms whenever it rehashed or compacted, with 200,000 entries held, about
 * ten times in 600,000 requests (bench:micro).
 *
 * Arrival order is close to expiry order; an entry queued behind a later-expiring one is kept a
 * little longer, which can only refuse more, never less. When the bound forces it to forget a
 * signature still inside its window, the cache raises `forgottenThrough` to when that one was
 * signed: a request signed that early can no longer be told from a replay, and the caller refuses
 * it (the client signs again). So what the cache forgets early is refused, never carried out twice.
 */
const WORDS = 4;
const INITIAL_CAPACITY = 1_024;

/** Hex digit values by char code; -1 where the character is not a hex digit. */
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[65 + i] = 10 + i;
  HEX[97 + i] = 10 + i;
}

export class ReplayCache {
  private capacity = 0;
  /** The ring: `count` entries from slot `head` on, wrapping at `capacity`. */
  private bits = new Int32Array(0);
  private signedAts = new Float64Array(0);
  private expiries = new Float64Array(0);
  /** Slot of the oldest entry, and how many are held. */
  private head = 0;
  private count = 0;
  /** Open addressing, linear probing: ring slot + 1 of an entry, 0 for an empty bucket. */
  private index = new Int32Array(0);
  private mask = 0;
  /** The 128 bits of the id being remembered. */
  private readonly key = new Int32Array(WORDS);
  private forgotten = Number.NEGATIVE_INFINITY;

  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('replay cache bound must be a positive integer');
    this.resize(Math.min(max, INITIAL_CAPACITY));
  }

  /** Requests signed at or before this time (ms) may have been received and forgotten. */
  get forgottenThrough(): number {
    return this.forgotten;
  }

  get size(): number {
    return this.count;
  }

  /**
   * Records the signature `id` (at least 32 hex digits), signed at `signedAt`, until `expiresAt`;
   * false if it is already there.
   */
  remember(id: string, signedAt: number, expiresAt: number, now: number): boolean {
    this.parse(id);
    while (this.count > 0 && this.expiries[this.head]! < now) this.dropOldest();
    // Only then make room: making room first could drop the very entry this is a replay of.
    if (this.find() >= 0) return false;
    if (this.count === this.capacity) {
      if (this.capacity < this.max) this.resize(Math.min(this.max, this.capacity * 2));
      else {
        const oldest = this.signedAts[this.head]!;
        if (oldest > this.forgotten) this.forgotten = oldest;
        this.dropOldest();
      }
    }
    const slot = (this.head + this.count) % this.capacity;
    this.bits.set(this.key, slot * WORDS);
    this.signedAts[slot] = signedAt;
    this.expiries[slot] = expiresAt;
    this.count += 1;
    let bucket = this.key[0]! & this.mask;
    while (this.index[bucket] !== 0) bucket = (bucket + 1) & this.mask;
    this.index[bucket] = slot + 1;
    return true;
  }

  private parse(id: string): void {
    if (id.length < 2 * WORDS * 4) throw new RangeError('replay cache: a signature has at least 32 hex digits');
    for (let word = 0; word < WORDS; word++) {
      let value = 0;
      for (let i = word * 8; i < word * 8 + 8; i++) {
        const code = id.charCodeAt(i);
        const digit = code < 128 ? HEX[code]! : -1;
        if (digit < 0) throw new RangeError('replay cache: a signature is hex');
        value = (value << 4) | digit;
      }
      this.key[word] = value;
    }
  }

  /** The bucket holding the parsed key, or -1. */
  private find(): number {
    const { key, bits, index, mask } = this;
    for (let bucket = key[0]! & mask; ; bucket = (bucket + 1) & mask) {
      const held = index[bucket]!;
      if (held === 0) return -1;
      const at = (held - 1) * WORDS;
      if (bits[at] === key[0] && bits[at + 1] === key[1] && bits[at + 2] === key[2] && bits[at + 3] === key[3]) return bucket;
    }
  }

  private dropOldest(): void {
    const slot = this.head;
    let bucket = this.bits[slot * WORDS]! & this.mask;
    while (this.index[bucket] !== slot + 1) bucket = (bucket + 1) & this.mask;
    this.removeBucket(bucket);
    this.head = (this.head + 1) % this.capacity;
    this.count -= 1;
  }

  /**
   * Empties a bucket and moves later members of its probe run back into the gap, so that every
   * entry stays reachable from its home bucket without tombstones.
   */
  private removeBucket(gap: number): void {
    const { index, bits, mask } = this;
    for (let next = (gap + 1) & mask; index[next] !== 0; next = (next + 1) & mask) {
      const home = bits[(index[next]! - 1) * WORDS]! & mask;
      // Move it unless its home lies cyclically in (gap, next]: then the gap does not cut its run.
      const reachable = gap <= next ? home > gap && home <= next : home > gap || home <= next;
      if (reachable) continue;
      index[gap] = index[next]!;
      gap = next;
    }
    index[gap] = 0;
  }

  /** A larger ring and index, with the entries in their order (the oldest first, at slot 0). */
  private resize(capacity: number): void {
    const bits = new Int32Array(capacity * WORDS);
    const signedAts = new Float64Array(capacity);
    const expiries = new Float64Array(capacity);
    for (let i = 0; i < this.count; i++) {
      const from = (this.head + i) % this.capacity;
      bits.set(this.bits.subarray(from * WORDS, from * WORDS + WORDS), i * WORDS);
      signedAts[i] = this.signedAts[from]!;
      expiries[i] = this.expiries[from]!;
    }
    let buckets = 2;
    while (buckets < capacity * 2) buckets *= 2;
    this.index = new Int32Array(buckets);
    this.mask = buckets - 1;
    this.bits = bits;
    this.signedAts = signedAts;
    this.expiries = expiries;
    this.capacity = capacity;
    this.head = 0;
    for (let slot = 0; slot < this.count; slot++) {
      let bucket = bits[slot * WORDS]! & this.mask;
      while (this.index[bucket] !== 0) bucket = (bucket + 1) & this.mask;
      this.index[bucket] = slot + 1;
    }
  }
}
