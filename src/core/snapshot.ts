/**
 * Snapshot, restore and state hash of the engine.
 *
 * The snapshot is a plain JSON-able object built in a canonical order (ids ascending, books best
 * first in queue order), so that equal states give byte-identical encodings and equal hashes.
 */
import { createHash } from 'node:crypto';
import { Engine, RULES_VERSION } from './engine.js';
import { Account, Asset, Market, Order, PENDING, User, VolumeWindow, WORKING } from './state.js';
import type { FeeTier, MarketState, OrderType, Restriction, StpMode, TimeInForce } from './types.js';

export const SNAPSHOT_VERSION = 1;

type OrderRecord = [
  id: number, account: number, market: number, side: number, orderType: OrderType, timeInForce: TimeInForce,
  stp: StpMode, clientOrderId: string | null, state: number, priceTicks: number, quantityLots: number,
  leavesLots: number, filledLots: number, cumQuote: number, quoteLeft: number, quoteQuantity: number,
  byQuote: boolean, reserved: number, stopTicks: number, callbackBps: number, extremeTicks: number,
  isMarket: boolean, postOnly: boolean, expireAt: number, priority: number,
];

export interface EngineSnapshot {
  version: number;
  /** Present only past 1, so that snapshots and state hashes from before rules had versions are as they were. */
  rulesVersion?: number;
  lastSeq: number;
  lastTs: number;
  nextTradeId: number;
  assets: [code: string, precision: number, minFee: number][];
  markets: {
    id: string; base: string; quote: string; tick: number; lot: number; minQuantity: number; maxQuantity: number;
    minNotional: number; maxNotional: number; bandLowBps: number; bandHighBps: number; state: MarketState;
    makerFeePpm: number; takerFeePpm: number; tiers: FeeTier[]; lastPriceTicks: number; unitNotional: number;
    /**
     * Present only when set: a market without a limit encodes, and hashes, as it did before
     * limits existed, so that snapshots from then still restore to the state they hashed.
     */
    maxOpenOrders?: number;
    /** Present only when the market has a collar, so that snapshots and state hashes of markets without one are as before. */
    collarBps?: number;
    bids: number[]; asks: number[]; rising: number[]; falling: number[]; trailing: number[];
  }[];
  feeLevels: [level: number, maker: number, taker: number][];
  users: [id: number, level: number, volumes: [market: number, days: number[], amounts: number[]][]][];
  /** cancelAllAt is present only when the account's dead man's switch is armed (as maxOpenOrders above). */
  accounts: [
    id: number, user: number | null, restriction: Restriction, balances: [asset: number, available: number, reserved: number, locked: number][],
    cancelAllAt?: number,
  ][];
  orders: OrderRecord[];
  usedKeys: string[];
  holds: [key: string, account: number, asset: number, amount: number, state: 'locked' | 'unlocked' | 'settled'][];
}

const byNumber = (a: number, b: number): number => a - b;
const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function takeSnapshot(engine: Engine): EngineSnapshot {
  const orderIds = (it: Iterable<Order>): number[] => [...it].map((o) => o.id);
  const queue = (side: Market['bids']): number[] => {
    const ids: number[] = [];
    for (const level of side.levelsBestFirst()) for (let o = level.head; o !== null; o = o.next) ids.push(o.id);
    return ids;
  };
  // Trailing stops keep their extremes in their own structure until asked.
  for (const m of engine.marketList) m.triggers.trailing.settle();
  return {
    version: SNAPSHOT_VERSION,
    ...(engine.rulesVersion > 1 ? { rulesVersion: engine.rulesVersion } : {}),
    lastSeq: engine.lastSeq,
    lastTs: engine.lastTs,
    nextTradeId: engine.nextTradeId,
    assets: engine.assetList.map((a) => [a.code, a.precision, a.minFee]),
    markets: engine.marketList.map((m) => ({
      id: m.id, base: m.base.code, quote: m.quote.code, tick: m.tick, lot: m.lot, minQuantity: m.minQuantity,
      maxQuantity: m.maxQuantity, minNotional: m.minNotional, maxNotional: m.maxNotional, bandLowBps: m.bandLowBps,
      bandHighBps: m.bandHighBps, state: m.state, makerFeePpm: m.makerFeePpm, takerFeePpm: m.takerFeePpm,
      tiers: m.tiers.map((t) => ({ minVolume: t.minVolume, makerFeePpm: t.makerFeePpm, takerFeePpm: t.takerFeePpm })),
      lastPriceTicks: m.lastPriceTicks, unitNotional: m.unitNotional, ...(m.maxOpenOrders > 0 ? { maxOpenOrders: m.maxOpenOrders } : {}),
      ...(m.collarBps > 0 ? { collarBps: m.collarBps } : {}),
      bids: queue(m.bids), asks: queue(m.asks),
      rising: orderIds(m.triggers.rising), falling: orderIds(m.triggers.falling), trailing: orderIds(m.triggers.trailing),
    })),
    feeLevels: [...engine.feeLevels.entries()].sort((a, b) => a[0] - b[0]).map(([l, f]) => [l, f.makerFeePpm, f.takerFeePpm]),
    users: [...engine.users.values()].sort((a, b) => a.id - b.id).map((u) => [
      u.id, u.level,
      [...u.volumes.entries()].sort((a, b) => a[0] - b[0]).map(([m, w]) => [m, [...w.days], [...w.amounts]]),
    ]),
    accounts: [...engine.accounts.values()].sort((a, b) => a.id - b.id).map((a) => {
      const balances = a.balances
        .filter((b) => b !== undefined && (b.available !== 0 || b.reserved !== 0 || b.locked !== 0))
        .map((b): [number, number, number, number] => [b!.asset.index, b!.available, b!.reserved, b!.locked]);
      const id = a.user === null ? null : a.user.id;
      return a.cancelAllAt > 0 ? [a.id, id, a.restriction, balances, a.cancelAllAt] : [a.id, id, a.restriction, balances];
    }),
    orders: [...engine.orders.keys()].sort(byNumber).map((id) => {
      const o = engine.orders.get(id)!;
      return [
        o.id, o.account.id, o.market.index, o.side, o.orderType, o.timeInForce, o.stp, o.clientOrderId, o.state,
        o.priceTicks, o.quantityLots, o.leavesLots, o.filledLots, o.cumQuote, o.quoteLeft, o.quoteQuantity, o.byQuote,
        o.reserved, o.stopTicks, o.callbackBps, o.extremeTicks, o.isMarket, o.postOnly, o.expireAt, o.priority,
      ];
    }),
    usedKeys: [...engine.usedKeys].sort(byString),
    holds: [...engine.holds.keys()].sort(byString).map((key) => {
      const h = engine.holds.get(key)!;
      return [key, h.account.id, h.asset.index, h.amount, h.state];
    }),
  };
}

export function restoreSnapshot(snapshot: EngineSnapshot): Engine {
  if (snapshot.version !== SNAPSHOT_VERSION) throw new Error(`snapshot version ${snapshot.version} is not ${SNAPSHOT_VERSION}`);
  const engine = new Engine();
  engine.lastSeq = snapshot.lastSeq;
  engine.rulesVersion = snapshot.rulesVersion ?? 1;
  if (engine.rulesVersion > RULES_VERSION) throw new Error(`snapshot at seq ${snapshot.lastSeq} plays matching rules version ${engine.rulesVersion}; this build plays up to ${RULES_VERSION}`);
  engine.lastTs = snapshot.lastTs;
  engine.nextTradeId = snapshot.nextTradeId;
  for (const [code, precision, minFee] of snapshot.assets) {
    const asset = new Asset(engine.assetList.length, code, precision, minFee);
    engine.assets.set(code, asset);
    engine.assetList.push(asset);
  }
  for (const m of snapshot.markets) {
    const market = new Market(
      engine.marketList.length, m.id, engine.assets.get(m.base)!, engine.assets.get(m.quote)!, m.tick, m.lot,
      m.minQuantity, m.maxQuantity, m.minNotional, m.maxNotional, m.bandLowBps, m.bandHighBps, m.state,
      m.makerFeePpm, m.takerFeePpm, m.unitNotional,
    );
    market.tiers = m.tiers.map((t) => ({ ...t }));
    market.lastPriceTicks = m.lastPriceTicks;
    market.maxOpenOrders = m.maxOpenOrders ?? 0;
    market.collarBps = m.collarBps ?? 0;
    engine.markets.set(m.id, market);
    engine.marketList.push(market);
  }
  for (const [level, makerFeePpm, takerFeePpm] of snapshot.feeLevels) engine.feeLevels.set(level, { makerFeePpm, takerFeePpm });
  for (const [id, level, volumes] of snapshot.users) {
    const user = new User(id, level);
    for (const [marketIndex, days, amounts] of volumes) {
      const window = new VolumeWindow();
      days.forEach((d, i) => { window.days[i] = d; });
      amounts.forEach((a, i) => { window.amounts[i] = a; });
      user.volumes.set(marketIndex, window);
    }
    engine.users.set(id, user);
  }
  for (const [id, userId, restriction, balances, cancelAllAt] of snapshot.accounts) {
    let account = engine.accounts.get(id);
    if (account === undefined) {
      account = new Account(id, userId === null ? null : engine.users.get(userId)!);
      engine.accounts.set(id, account);
    }
    account.restriction = restriction;
    if (cancelAllAt !== undefined) engine.cancelAfter.set(account, cancelAllAt);
    for (const [assetIndex, available, reserved, locked] of balances) {
      const balance = account.balance(engine.assetList[assetIndex]!);
      balance.available = available;
      balance.reserved = reserved;
      balance.locked = locked;
    }
  }
  for (const r of snapshot.orders) {
    const order = new Order(r[0], engine.accounts.get(r[1])!, engine.marketList[r[2]]!, r[3], r[4], r[5], r[6], r[7]);
    order.state = r[8];
    order.priceTicks = r[9];
    order.quantityLots = r[10];
    order.leavesLots = r[11];
    order.filledLots = r[12];
    order.cumQuote = r[13];
    order.quoteLeft = r[14];
    order.quoteQuantity = r[15];
    order.byQuote = r[16];
    order.reserved = r[17];
    order.stopTicks = r[18];
    order.callbackBps = r[19];
    order.extremeTicks = r[20];
    order.isMarket = r[21];
    order.postOnly = r[22];
    order.expireAt = r[23];
    order.priority = r[24];
    engine.orders.set(order.id, order);
    order.account.addOpen(order);
    if (order.clientOrderId !== null) order.account.openByClientId.set(order.clientOrderId, order);
    if (order.expireAt > 0) engine.expiry.push(order);
  }
  snapshot.markets.forEach((m, index) => {
    const market = engine.marketList[index]!;
    for (const id of m.bids) market.bids.append(engine.orders.get(id)!);
    for (const id of m.asks) market.asks.append(engine.orders.get(id)!);
    // Recorded with the next to fire last: added from the end, each order lands at its level's end.
    for (let i = m.rising.length - 1; i >= 0; i--) market.triggers.rising.add(engine.orders.get(m.rising[i]!)!);
    for (let i = m.falling.length - 1; i >= 0; i--) market.triggers.falling.add(engine.orders.get(m.falling[i]!)!);
    for (const id of m.trailing) market.triggers.trailing.push(engine.orders.get(id)!);
  });
  for (const key of snapshot.usedKeys) engine.usedKeys.add(key);
  for (const [key, accountId, assetIndex, amount, state] of snapshot.holds) {
    engine.holds.set(key, { account: engine.accounts.get(accountId)!, asset: engine.assetList[assetIndex]!, amount, state });
  }
  for (const order of engine.orders.values()) {
    if (order.state !== PENDING && order.state !== WORKING) throw new Error(`snapshot holds closed order ${order.id}`);
  }
  return engine;
}

export function encodeSnapshot(snapshot: EngineSnapshot): string {
  return JSON.stringify(snapshot);
}

/** SHA-256 over the canonical encoding of the state, hex. */
export function hashState(engine: Engine): string {
  return createHash('sha256').update(encodeSnapshot(takeSnapshot(engine))).digest('hex');
}
