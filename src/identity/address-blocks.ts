/**
 * Addresses the operator has blocked (a scraper that will not stop, an attacker's range): every
 * request and socket from them is refused before anything else is done for it. Kept in the
 * identity store, so that blocks survive restarts and travel with backups; a block may expire.
 * With none in force, a request pays one comparison.
 */
import type { BlockList } from 'node:net';
import { allows, blockList } from './ip.js';
import type { AddressBlock, IdentityStore } from './store.js';

/** Whether an address falls under a block. */
export type Covers = (ip: string) => boolean;

export class AddressBlocks {
  private entries: { block: AddressBlock; list: BlockList }[] = [];
  private nextExpiry = Number.POSITIVE_INFINITY;
  private readonly listeners = new Set<(block: AddressBlock, covers: Covers) => void>();

  constructor(private readonly store: IdentityStore, private readonly clock: () => number) {
    this.reload();
  }

  /** Whether no block is in force (a timed one that lapsed still counts until the next look). */
  get none(): boolean {
    return this.entries.length === 0;
  }

  /** The block an address falls under now, if any. */
  blocking(ip: string): AddressBlock | undefined {
    if (this.clock() >= this.nextExpiry) this.reload();
    return this.entries.find((e) => allows(e.list, ip))?.block;
  }

  /** Blocks an address or CIDR block (for `minutes`, or until lifted); listeners close what is open from it. */
  block(cidr: string, reason: string, actor: string, minutes?: number): AddressBlock {
    const list = blockList([cidr]);
    const now = this.clock();
    const block: AddressBlock = { cidr, reason, actor, createdAt: now, until: minutes === undefined ? null : now + minutes * 60_000 };
    this.store.blockAddress(block);
    this.reload();
    for (const listener of this.listeners) listener(block, (ip) => allows(list, ip));
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

  /** Called with each new block and what it covers (the socket gateway closes the sockets it covers). */
  onBlock(listener: (block: AddressBlock, covers: Covers) => void): void {
    this.listeners.add(listener);
  }

  private reload(): void {
    this.entries = this.store.blockedAddresses(this.clock()).map((block) => ({ block, list: blockList([block.cidr]) }));
    this.nextExpiry = Math.min(...this.entries.map((e) => e.block.until ?? Number.POSITIVE_INFINITY));
  }
}
