/**
 * The accounts whose dead man's switch is armed, as a min-heap by (cancelAllAt, account id).
 * Each account knows its slot, so that setting the switch again (which bots do every few
 * seconds) moves its one entry instead of leaving stale ones behind.
 */
import type { Account } from './state.js';

export class CancelAfterHeap {
  private readonly heap: Account[] = [];

  get size(): number {
    return this.heap.length;
  }

  peek(): Account | undefined {
    return this.heap[0];
  }

  /** Arms (or re-arms) the account's switch for `at`; 0 disarms it. */
  set(account: Account, at: number): void {
    if (account.cancelAfterSlot >= 0) this.remove(account);
    account.cancelAllAt = at;
    if (at === 0) return;
    account.cancelAfterSlot = this.heap.length;
    this.heap.push(account);
    this.up(account.cancelAfterSlot);
  }

  /** Every armed account, in no particular order (for the invariants). */
  accounts(): readonly Account[] {
    return this.heap;
  }

  private remove(account: Account): void {
    const heap = this.heap;
    const slot = account.cancelAfterSlot;
    const last = heap.pop()!;
    account.cancelAfterSlot = -1;
    if (last === account) return;
    heap[slot] = last;
    last.cancelAfterSlot = slot;
    this.down(slot);
    this.up(last.cancelAfterSlot);
  }

  private static less(a: Account, b: Account): boolean {
    return a.cancelAllAt !== b.cancelAllAt ? a.cancelAllAt < b.cancelAllAt : a.id < b.id;
  }

  private up(i: number): void {
    const heap = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!CancelAfterHeap.less(heap[i]!, heap[parent]!)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const heap = this.heap;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && CancelAfterHeap.less(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && CancelAfterHeap.less(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }

  private swap(i: number, j: number): void {
    const heap = this.heap;
    const a = heap[i]!;
    const b = heap[j]!;
    heap[i] = b;
    heap[j] = a;
    a.cancelAfterSlot = j;
    b.cancelAfterSlot = i;
  }
}
