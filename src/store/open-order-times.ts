/**
 * When each open order was created and last changed, kept in memory beside the engine.
 *
 * The engine has no clock of its own, so an order's times live in the read model; but answering
 * about an open order (a cancel, an amend, the open-orders listing) should not wait for the read
 * model to catch up and then query it. This small projection follows every committed command on
 * the main thread, as it is applied, and so always holds exactly the engine's open orders. It
 * starts from the read model, which Exchange.open has brought up to the journal's end.
 *
 * Its rules are the read model's (projector.ts): created at acceptance; updated by a trigger, a
 * fill or an amendment; gone when the order is filled, cancelled or expired.
 */
import type { EngineEvent } from '../core/index.js';

export interface OrderTimes {
  createdAt: number;
  updatedAt: number;
}

export class OpenOrderTimes {
  private readonly times = new Map<number, OrderTimes>();

  /** Starts from the read model's times for the orders the engine holds open. */
  static seeded(openOrderIds: Iterable<number>, stored: (id: number) => OrderTimes | undefined): OpenOrderTimes {
    const times = new OpenOrderTimes();
    for (const id of openOrderIds) {
      const found = stored(id);
      if (found === undefined) throw new Error(`open order ${id} is not in the read model`);
      times.times.set(id, { createdAt: found.createdAt, updatedAt: found.updatedAt });
    }
    return times;
  }

  /** Follows one committed command's events, stamped `ts`. */
  apply(ts: number, events: readonly EngineEvent[]): void {
    for (const event of events) {
      switch (event.type) {
        case 'order_accepted':
          this.times.set(event.orderId, { createdAt: ts, updatedAt: ts });
          break;
        case 'order_fill':
          if (event.status === 'FILLED') this.times.delete(event.orderId);
          else this.touch(event.orderId, ts);
          break;
        case 'order_triggered':
        case 'order_amended':
          this.touch(event.orderId, ts);
          break;
        case 'order_cancelled':
        case 'order_expired':
          this.times.delete(event.orderId);
          break;
        default:
          break;
      }
    }
  }

  private touch(orderId: number, ts: number): void {
    const times = this.times.get(orderId);
    if (times !== undefined) times.updatedAt = ts;
  }

  /** The times of an open order; undefined once it is closed (the read model has them then). */
  of(orderId: number): OrderTimes | undefined {
    return this.times.get(orderId);
  }

  /** The ids held, for tests that compare them with the engine's open orders. */
  ids(): IterableIterator<number> {
    return this.times.keys();
  }
}
