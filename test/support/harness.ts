import assert from 'node:assert/strict';
import { Engine, findTradeViolations, findViolations } from '../../src/core/index.js';
import type { Command, EngineEvent, PlaceOrder } from '../../src/core/index.js';

/** 1 BTC = 10^8 sat; 1 USDT = 10^6 minor units. */
export const BTC = 100_000_000;
export const USDT = 1_000_000;
/** BTC-USDT: tick 0.01 USDT, lot 0.0001 BTC; one lot at one tick is 1 minor unit of USDT. */
export const TICK = 10_000;
export const LOT = 10_000;

export const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

/** Drives an engine with consecutive sequence numbers and checks every invariant after each command. */
export class Harness {
  engine = new Engine();
  seq = 0;
  ts = T0;

  apply(cmd: Command, advanceMs = 1): EngineEvent[] {
    this.seq += 1;
    this.ts += advanceMs;
    const events = this.engine.apply({ seq: this.seq, ts: this.ts, cmd });
    assert.deepEqual(findViolations(this.engine), [], `invariants after seq ${this.seq} (${cmd.type})`);
    assert.deepEqual(findTradeViolations(this.engine, events), []);
    return events;
  }

  /** Places an order; returns its events and id. */
  place(order: Omit<PlaceOrder, 'type' | 'market'> & { market?: string }): { id: number; events: EngineEvent[] } {
    const events = this.apply({ type: 'place_order', market: 'BTC-USDT', ...order });
    return { id: this.seq, events };
  }
}

export function withMarket(options: Partial<Extract<Command, { type: 'create_market' }>> = {}): Harness {
  const h = new Harness();
  h.apply({ type: 'create_asset', code: 'BTC', precision: 8 });
  h.apply({ type: 'create_asset', code: 'USDT', precision: 6 });
  h.apply({ type: 'create_market', market: 'BTC-USDT', base: 'BTC', quote: 'USDT', tick: TICK, lot: LOT, ...options });
  for (const user of [1, 2, 3]) {
    h.apply({ type: 'create_user', user });
    h.apply({ type: 'create_account', account: user * 10, user });
    h.apply({ type: 'deposit', account: user * 10, asset: 'BTC', amount: 10 * BTC, key: `btc-${user}` });
    h.apply({ type: 'deposit', account: user * 10, asset: 'USDT', amount: 1_000_000 * USDT, key: `usdt-${user}` });
  }
  return h;
}

export function ofType<T extends EngineEvent['type']>(events: EngineEvent[], type: T): (EngineEvent & { type: T })[] {
  return events.filter((e) => e.type === type) as (EngineEvent & { type: T })[];
}

/** The state hash of everything but the clock (sequence and time move with every command). */
export function stateWithoutClock(engine: Engine): string {
  const { lastSeq: _seq, lastTs: _ts, ...rest } = engine.snapshot();
  return JSON.stringify(rest);
}

export function rejection(events: EngineEvent[]): string | undefined {
  const event = events.find((e) => e.type === 'order_rejected' || e.type === 'command_rejected');
  return event === undefined ? undefined : (event as { reason: string }).reason;
}

/** Price in minor units from whole USDT. */
export const usdt = (x: number): number => x * USDT;
