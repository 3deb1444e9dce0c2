/**
 * The ledger and book invariants of DESIGN.md §3, checked against the whole state.
 * Returns the list of violations (empty when all hold). Cost is linear in the state size:
 * tests run it after every command, production every N commands and at start.
 */
import type { Engine } from './engine.js';
import { BUY, PENDING } from './state.js';
import type { Account, BookSide, Order } from './state.js';
import type { EngineEvent } from './types.js';
import { EXTERNAL_ACCOUNT } from './types.js';

/**
 * Whether a full check is due after `since` commands, checking every `every` (0: never; 1: after
 * every batch). Otherwise at least as many commands as there are open orders pass between checks,
 * which keeps the check's cost per command constant however deep the books get.
 */
export function invariantCheckDue(since: number, every: number, engine: Engine): boolean {
  if (every <= 0) return false;
  return since >= (every === 1 ? 1 : Math.max(every, engine.orders.size));
}

export function findViolations(engine: Engine): string[] {
  const problems: string[] = [];
  const assetCount = engine.assetList.length;
  const totals = new Array<bigint>(assetCount).fill(0n);
  // account → reserved per asset index, summed over its open orders (no per-order string keys:
  // this runs over every open order).
  const reservedByOrders = new Map<Account, number[]>();

  for (const order of engine.orders.values()) {
    checkOrderReservation(order, problems);
    const market = order.market;
    const asset = order.side === BUY ? market.quote : market.base;
    let sums = reservedByOrders.get(order.account);
    if (sums === undefined) {
      sums = new Array<number>(assetCount).fill(0);
      reservedByOrders.set(order.account, sums);
    }
    sums[asset.index]! += order.reserved;
    if (order.clientOrderId !== null && order.account.openByClientId.get(order.clientOrderId) !== order) {
      problems.push(`I6: client order id ${order.clientOrderId} of order ${order.id} is not indexed to it`);
    }
  }

  const openByAccount = new Map<number, number>();
  for (const order of engine.orders.values()) openByAccount.set(order.account.id, (openByAccount.get(order.account.id) ?? 0) + 1);

  for (const account of engine.accounts.values()) {
    let listed = 0;
    const inMarket: number[] = [];
    for (let o = account.openHead; o !== null; o = o.accountNext) {
      listed += 1;
      inMarket[o.market.index] = (inMarket[o.market.index] ?? 0) + 1;
      if (o.account !== account || engine.orders.get(o.id) !== o) problems.push(`account ${account.id} lists order ${o.id} that is not its open order`);
      // Listings page through it newest first (Engine.openOrdersOf).
      if (o.accountNext !== null && o.accountNext.id >= o.id) problems.push(`account ${account.id} lists order ${o.accountNext.id} after ${o.id}`);
    }
    if (listed !== (openByAccount.get(account.id) ?? 0)) {
      problems.push(`account ${account.id} lists ${listed} open orders, owns ${openByAccount.get(account.id) ?? 0}`);
    }
    for (const market of engine.marketList) {
      const counted = account.openInMarket[market.index] ?? 0;
      if (counted !== (inMarket[market.index] ?? 0)) problems.push(`account ${account.id} counts ${counted} open orders in ${market.id}, lists ${inMarket[market.index] ?? 0}`);
    }
    for (const balance of account.balances) {
      if (balance === undefined) continue;
      const { available, reserved, locked } = balance;
      for (const value of [available, reserved, locked]) {
        if (!Number.isSafeInteger(value)) problems.push(`balance of ${account.id} in ${balance.asset.code} is not a safe integer: ${value}`);
      }
      totals[balance.asset.index]! += BigInt(available) + BigInt(reserved) + BigInt(locked);
      const external = account.id === EXTERNAL_ACCOUNT;
      if ((!external && available < 0) || reserved < 0 || locked < 0) {
        problems.push(`I3: negative balance of account ${account.id} in ${balance.asset.code}: ${available}/${reserved}/${locked}`);
      }
      const sums = reservedByOrders.get(account);
      const expected = sums?.[balance.asset.index] ?? 0;
      if (reserved !== expected) {
        problems.push(`I2: account ${account.id} reserves ${reserved} ${balance.asset.code} but its open orders need ${expected}`);
      }
      if (sums !== undefined) sums[balance.asset.index] = 0;
    }
    let clientIds = 0;
    for (const order of account.openByClientId.values()) {
      clientIds += 1;
      if (!engine.orders.has(order.id)) problems.push(`I6: closed order ${order.id} still holds its client order id`);
    }
    if (clientIds > listed) problems.push(`I6: account ${account.id} has more client ids than open orders`);
  }
  for (const [account, sums] of reservedByOrders) {
    sums.forEach((amount, index) => {
      if (amount !== 0) problems.push(`I2: orders of account ${account.id} reserve ${amount} ${engine.assetList[index]!.code} with no balance`);
    });
  }
  totals.forEach((total, index) => {
    if (total !== 0n) problems.push(`I1: ${engine.assetList[index]!.code} sums to ${total}, not 0`);
  });

  checkCancelAfter(engine, problems);

  let booked = 0;
  for (const market of engine.marketList) {
    booked += checkSide(market.bids, problems, market.id) + checkSide(market.asks, problems, market.id);
    const bestBid = market.bids.best();
    const bestAsk = market.asks.best();
    if (bestBid !== undefined && bestAsk !== undefined && bestBid.priceTicks >= bestAsk.priceTicks) {
      problems.push(`I7: ${market.id} book is crossed: bid ${bestBid.priceTicks} >= ask ${bestAsk.priceTicks}`);
    }
    for (const order of [...market.triggers.rising, ...market.triggers.falling, ...market.triggers.trailing]) {
      if (order.state !== PENDING || !engine.orders.has(order.id)) problems.push(`trigger list of ${market.id} holds order ${order.id} that is not pending`);
      booked += 1;
    }
  }
  if (booked !== engine.orders.size) problems.push(`${engine.orders.size} open orders but ${booked} on books and trigger lists`);
  return problems;
}

/** Armed switches are in the heap, in their slots, and none is overdue (each fires when reached). */
function checkCancelAfter(engine: Engine, problems: string[]): void {
  const armed = engine.cancelAfter.accounts();
  armed.forEach((account, slot) => {
    if (engine.accounts.get(account.id) !== account) problems.push(`dead man's switch of unknown account ${account.id}`);
    if (account.cancelAfterSlot !== slot) problems.push(`account ${account.id}'s switch is in slot ${slot}, thinks ${account.cancelAfterSlot}`);
    if (account.cancelAllAt <= engine.lastTs) problems.push(`account ${account.id}'s switch at ${account.cancelAllAt} did not fire by ${engine.lastTs}`);
    const parent = armed[(slot - 1) >> 1];
    if (slot > 0 && parent !== undefined && parent.cancelAllAt > account.cancelAllAt) problems.push(`switch heap out of order at account ${account.id}`);
  });
  let counted = 0;
  for (const account of engine.accounts.values()) if (account.cancelAllAt > 0) counted += 1;
  if (counted !== armed.length) problems.push(`${counted} accounts have a switch armed, ${armed.length} in the heap`);
}

function checkOrderReservation(order: Order, problems: string[]): void {
  const market = order.market;
  if (order.leavesLots < 0 || order.filledLots < 0 || order.reserved < 0) {
    problems.push(`I3: order ${order.id} has negative quantities`);
  }
  if (order.state === PENDING) return; // a conditional order holds what it was given at entry
  if (order.level === null) {
    problems.push(`order ${order.id} is open, not pending and not on the book`);
    return;
  }
  const needed = order.side === BUY
    ? order.leavesLots * order.priceTicks * market.unitNotional
    : order.leavesLots * market.lot;
  if (order.reserved !== needed) problems.push(`I2: order ${order.id} reserves ${order.reserved} but needs ${needed}`);
}

/** Checks level order, totals and time priority; returns the number of orders on the side. */
function checkSide(side: BookSide, problems: string[], marketId: string): number {
  let count = 0;
  let previous: number | null = null;
  for (let i = 0; i < side.prices.length; i++) {
    const price = side.prices[i]!;
    if (previous !== null && !side.better(price, previous)) problems.push(`I7: ${marketId} price levels out of order`);
    previous = price;
    const level = side.levels.get(price);
    if (level === undefined) { problems.push(`${marketId} level ${price} missing`); continue; }
    let lots = 0;
    let orders = 0;
    let lastPriority = -1;
    for (let o = level.head; o !== null; o = o.next) {
      if (o.priceTicks !== price || o.level !== level) problems.push(`order ${o.id} sits at the wrong level`);
      if (o.leavesLots <= 0) problems.push(`order ${o.id} rests with nothing left`);
      if (o.priority < lastPriority) problems.push(`I7: ${marketId} level ${price} breaks time priority at order ${o.id}`);
      lastPriority = o.priority;
      lots += o.leavesLots;
      orders += 1;
    }
    if (lots !== level.totalLots || orders !== level.count) problems.push(`${marketId} level ${price} totals are wrong`);
    count += orders;
  }
  if (side.levels.size !== side.prices.length) problems.push(`${marketId} level index and price list disagree`);
  return count;
}

/**
 * I4: each trade moves exactly price × quantity of quote against quantity of base, and the fees
 * stay within what each side receives; with I1 this makes every trade's legs sum to zero.
 */
export function findTradeViolations(engine: Engine, events: readonly EngineEvent[]): string[] {
  const problems: string[] = [];
  for (const event of events) {
    if (event.type !== 'trade') continue;
    const market = engine.markets.get(event.market);
    if (market === undefined) { problems.push(`I4: trade ${event.tradeId} in unknown market`); continue; }
    const scale = 10n ** BigInt(market.base.precision);
    if (BigInt(event.quoteQuantity) * scale !== BigInt(event.price) * BigInt(event.quantity)) {
      problems.push(`I4: trade ${event.tradeId} quote ${event.quoteQuantity} is not price × quantity`);
    }
    if (event.buyerFee < 0 || event.sellerFee < 0 || event.buyerFee > event.quantity || event.sellerFee > event.quoteQuantity) {
      problems.push(`I4: trade ${event.tradeId} has a fee outside [0, amount received]`);
    }
  }
  return problems;
}
