/**
 * Addresses the operator has blocked (a scraper that will not stop, an attacker's range): every
 * request and socket from them is refused before anything else is done for it. Kept in the
 * identity store, so that blocks survive restarts and travel with backups; a block may expire.
 * With none in force, a request pays one comparison.
 */
import type { BlockList } from 'node:net';
import { allows, blockList } from './ip.js';
import type { AddressBlock, IdentityStore } from './store.js';

export class AddressBlocks {
  private entries: { block: AddressBlock; list: BlockList }[] = [];
  private combined: BlockList | null = null;
  private nextExpiry = Number.POSITIVE_INFINITY;
  private readonly listeners = new Set<(block: AddressBlock) => void>();

  constructor(private readonly store: IdentityStore, private readonly clock: () => number) {
    this.reload();
  }

  /** Whether no block is in force (a timed one that lapsed still counts until the next look). */
  get none(): boolean {
    return this.combined === null;
  }

  /** The block an address falls under now, if any. */
  blocking(ip: string): AddressBlock | undefined {
    if (this.combined === null) return undefined;
    if (this.clock() >= this.nextExpiry) this.reload();
    if (this.combined === null || !allows(this.combined, ip)) return undefined;
    return this.entries.find((e) => allows(e.list, ip))?.block;
  }

  /** Blocks an address or CIDR block (for `minutes`, or until lifted); listeners close what is open from it. */
  block(cidr: string, reason: string, actor: string, minutes?: number): AddressBlock {
    blockList([cidr]);
    const now = this.clock();
    const block: AddressBlock = { cidr, reason, actor, createdAt: now, until: minutes === undefined ? null : now + minutes * 60_000 };
    this.store.blockAddress(block);
    this.reload();
    for (const listener of this.listeners) listener(block);
    return block;
  }

  /** Lifts a block; false if there was none for that address or block. */
  unblock(cidr: string): boolean {
    const lifted = this.store.unblockAddress(cidr);
    this.reload();
    return lifted;
  }

  /** The blocks in force, newest first. */
  all(): AddressBlock[] {
    if (this.clock() >= this.nextExpiry) this.reload();
    return this.entries.map((e) => e.block);
  }

  /** Called with each new block (the socket gateway closes the sockets it covers). */
  onBlock(listener: (block: AddressBlock) => void): void {
    this.listeners.add(listener);
  }

  /** Covers an address by a block made by `block`. */
  static covers(block: AddressBlock, ip: string): boolean {
    return allows(blockList([block.cidr]), ip);
  }

  private reload(): void {
    const now = this.clock();
    this.entries = this.store.blockedAddresses(now).map((block) => ({ block, list: blockList([block.cidr]) }));
    this.combined = this.entries.length === 0 ? null : blockList(this.entries.map((e) => e.block.cidr));
    this.nextExpiry = Math.min(...this.entries.map((e) => e.block.until ?? Number.POSITIVE_INFINITY));
  }
}
