/**
 * Random command sequences for one market and four accounts (two of them belong to the same
 * user, so self-trade prevention is exercised). Commands are drawn as templates and made
 * concrete against the live state, so cancels and amends mostly target orders that exist.
 */
import fc from 'fast-check';
import type { Command, PlaceOrder, StpMode, TimeInForce } from '../../src/core/index.js';
import type { Engine } from '../../src/core/index.js';
import type { NaiveMarket } from '../reference/naive-engine.js';

export const MODEL_MARKET: NaiveMarket = {
  id: 'BASE-QUOTE', base: 'BASE', quote: 'QUOTE', basePrecision: 2, tick: 5n, lot: 100n, minQuantity: 100n,
  makerFeePpm: 1_000n, takerFeePpm: 2_500n, quoteMinFee: 1n, baseMinFee: 0n, maxOpenOrders: 4,
  // 0.4 %: prices span ±0.6 % around the centre, so that some market orders reach the collar and some do not.
  collarBps: 40n,
};
export const MODEL_ACCOUNTS: [account: number, user: number][] = [[1, 1], [2, 1], [3, 2], [4, 3]];
export const MODEL_T0 = Date.UTC(2026, 2, 1, 23, 0, 0);

/** The commands that set the market up; the same for both engines. */
export function genesis(): Command[] {
  const commands: Command[] = [
    { type: 'create_asset', code: 'BASE', precision: 2 },
    { type: 'create_asset', code: 'QUOTE', precision: 2, minFee: 1 },
    { type: 'create_market', market: 'BASE-QUOTE', base: 'BASE', quote: 'QUOTE', tick: 5, lot: 100, makerFeePpm: 1_000, takerFeePpm: 2_500, maxOpenOrders: MODEL_MARKET.maxOpenOrders, collarBps: Number(MODEL_MARKET.collarBps) },
  ];
  for (const user of new Set(MODEL_ACCOUNTS.map(([, u]) => u))) commands.push({ type: 'create_user', user });
  for (const [account, user] of MODEL_ACCOUNTS) {
    commands.push({ type: 'create_account', account, user });
    commands.push({ type: 'deposit', account, asset: 'BASE', amount: 2_000, key: `base-${account}` });
    commands.push({ type: 'deposit', account, asset: 'QUOTE', amount: 200_000, key: `quote-${account}` });
  }
  return commands;
}

export interface Template {
  kind: 'limit' | 'market' | 'conditional' | 'cancel' | 'cancel_client' | 'cancel_all' | 'cancel_after' | 'amend' | 'tick' | 'deposit' | 'debit' | 'adopt_rules';
  account: number;
  side: 'buy' | 'sell';
  priceOffset: number;
  offTick: boolean;
  lots: number;
  offLot: boolean;
  tif: TimeInForce;
  postOnly: boolean;
  stp: StpMode;
  client: number;
  byQuote: boolean;
  conditional: PlaceOrder['orderType'];
  pick: number;
  advanceMs: number;
}

export const templateArbitrary: fc.Arbitrary<Template> = fc.record({
  kind: fc.oneof(
    { weight: 40, arbitrary: fc.constant('limit' as const) },
    { weight: 10, arbitrary: fc.constant('market' as const) },
    { weight: 10, arbitrary: fc.constant('conditional' as const) },
    { weight: 12, arbitrary: fc.constant('cancel' as const) },
    { weight: 4, arbitrary: fc.constant('cancel_client' as const) },
    { weight: 2, arbitrary: fc.constant('cancel_all' as const) },
    { weight: 2, arbitrary: fc.constant('cancel_after' as const) },
    { weight: 10, arbitrary: fc.constant('amend' as const) },
    { weight: 4, arbitrary: fc.constant('tick' as const) },
    { weight: 3, arbitrary: fc.constant('deposit' as const) },
    { weight: 2, arbitrary: fc.constant('debit' as const) },
    { weight: 1, arbitrary: fc.constant('adopt_rules' as const) },
  ),
  account: fc.integer({ min: 1, max: 4 }),
  side: fc.constantFrom('buy' as const, 'sell' as const),
  priceOffset: fc.integer({ min: -12, max: 12 }),
  offTick: fc.integer({ min: 0, max: 30 }).map((n) => n === 0),
  lots: fc.integer({ min: 1, max: 6 }),
  offLot: fc.integer({ min: 0, max: 40 }).map((n) => n === 0),
  tif: fc.constantFrom<TimeInForce>('GTC', 'GTC', 'GTC', 'IOC', 'FOK', 'DAY', 'GTD'),
  postOnly: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  stp: fc.constantFrom<StpMode>('cancel_taker', 'cancel_maker', 'cancel_both', 'decrement'),
  client: fc.integer({ min: 0, max: 12 }),
  byQuote: fc.boolean(),
  conditional: fc.constantFrom<PlaceOrder['orderType']>('stop_market', 'stop_limit', 'take_profit', 'take_profit_limit', 'trailing_stop'),
  pick: fc.nat(),
  advanceMs: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 2_000 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 90_000_000 }) }),
});

const CENTER = 10_000;

/** Makes a template concrete against the current state of the (real) engine. */
export function concretize(t: Template, engine: Engine, ts: number): Command {
  const price = CENTER + t.priceOffset * 5 + (t.offTick ? 1 : 0);
  const quantity = t.lots * 100 + (t.offLot ? 1 : 0);
  const clientOrderId = t.client < 4 ? `c${t.client}` : undefined;
  const base = { type: 'place_order' as const, account: t.account, market: 'BASE-QUOTE', side: t.side, stp: t.stp };
  const openIds = [...engine.orders.keys()].sort((a, b) => a - b);
  const pickId = (): number => (openIds.length > 0 && t.pick % 5 !== 0 ? openIds[t.pick % openIds.length]! : 1 + (t.pick % 400));
  const ownerOf = (id: number): number => engine.orders.get(id)?.account.id ?? t.account;
  switch (t.kind) {
    case 'limit': {
      const order: PlaceOrder = { ...base, orderType: 'limit', price, quantity, timeInForce: t.tif };
      if (t.tif === 'GTD') order.expireTime = ts + 1 + (t.pick % 5_000);
      if (t.postOnly && t.tif !== 'IOC' && t.tif !== 'FOK') order.postOnly = true;
      if (clientOrderId) order.clientOrderId = clientOrderId;
      return order;
    }
    case 'market':
      return t.byQuote ? { ...base, orderType: 'market', quoteQuantity: quantity * 100 + (t.pick % 7) * 5 } : { ...base, orderType: 'market', quantity };
    case 'conditional': {
      const order: PlaceOrder = { ...base, orderType: t.conditional, quantity };
      if (t.conditional === 'trailing_stop') order.callbackBps = 10 + (t.pick % 90);
      else order.stopPrice = CENTER + ((t.pick % 9) - 4) * 5;
      if (t.conditional === 'stop_limit' || t.conditional === 'take_profit_limit') order.price = price;
      if (t.byQuote && t.side === 'buy' && order.price === undefined) {
        delete order.quantity;
        order.quoteQuantity = quantity * 100;
      }
      if (clientOrderId) order.clientOrderId = clientOrderId;
      return order;
    }
    case 'cancel': {
      const id = pickId();
      return { type: 'cancel_order', account: t.pick % 7 === 0 ? t.account : ownerOf(id), orderId: id };
    }
    case 'cancel_client':
      return { type: 'cancel_order', account: t.account, clientOrderId: `c${t.client % 4}` };
    case 'cancel_all':
      return t.pick % 3 === 0 ? { type: 'cancel_all', account: t.account, cause: 'disconnect' }
        : t.pick % 5 === 0 ? { type: 'cancel_all', account: t.account, cause: 'operator' } : { type: 'cancel_all', account: t.account };
    case 'cancel_after':
      // Mostly a few seconds, so that switches fire within a run; sometimes off, now and then out of range.
      return { type: 'set_cancel_after', account: t.account, timeoutMs: t.pick % 5 === 0 ? 0 : t.pick % 97 === 1 ? 86_400_001 : 1 + (t.pick % 6_000) };
    case 'amend': {
      const id = pickId();
      const amend: Command = { type: 'amend_order', account: ownerOf(id), orderId: id };
      if (t.pick % 3 !== 1) amend.quantity = quantity;
      if (t.pick % 3 !== 0) amend.price = price;
      return amend;
    }
    case 'tick':
      return { type: 'tick' };
    case 'adopt_rules':
      // Mostly the newer rules (once; after that refused), now and then ones already in force.
      return { type: 'adopt_rules', version: t.pick % 4 === 0 ? 1 : 2 };
    case 'deposit':
      return { type: 'deposit', account: t.account, asset: t.side === 'buy' ? 'QUOTE' : 'BASE', amount: quantity * 10, key: `d${ts}-${t.pick}` };
    case 'debit':
      // Now and then more than is free (funds reserved by orders are not), now and then a key used before.
      return { type: 'debit', account: t.account, asset: t.side === 'buy' ? 'QUOTE' : 'BASE', amount: quantity * (t.pick % 4 === 0 ? 1_000 : 3), key: t.pick % 7 === 0 ? 'debit-again' : `x${ts}-${t.pick}` };
  }
}
