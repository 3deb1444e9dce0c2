import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeSnapshot, Engine, RULES_VERSION } from '../src/core/index.js';
import type { Command, EngineEvent, EngineSnapshot, PlaceOrder } from '../src/core/index.js';
import { BTC, LOT, ofType, rejection, stateWithoutClock, TICK, usdt, withMarket } from './support/harness.js';

type Order = Omit<PlaceOrder, 'type' | 'market'> & { market?: string };
const limitBuy = (extra: Partial<Order> = {}): Order => ({ account: 20, side: 'buy', orderType: 'limit', price: usdt(100), quantity: LOT, ...extra });

function expectRejected(h: ReturnType<typeof withMarket>, order: Order, reason: string): void {
  const before = stateWithoutClock(h.engine);
  const { events } = h.place(order);
  assert.equal(rejection(events), reason, JSON.stringify(events));
  assert.equal(events.length, 1, 'a rejection emits one event and nothing else');
  assert.equal(stateWithoutClock(h.engine), before, 'a rejection changes nothing');
}

test('rejects an order the account cannot pay for', () => {
  expectRejected(withMarket(), limitBuy({ price: usdt(100_000), quantity: 100 * BTC }), 'INSUFFICIENT_BALANCE');
  expectRejected(withMarket(), { account: 20, side: 'sell', orderType: 'limit', price: usdt(100), quantity: 11 * BTC }, 'INSUFFICIENT_BALANCE');
});

test('rejects prices off the tick and quantities off the lot', () => {
  expectRejected(withMarket(), limitBuy({ price: usdt(100) + 1 }), 'TICK_SIZE');
  expectRejected(withMarket(), limitBuy({ quantity: LOT + 1 }), 'LOT_SIZE');
  expectRejected(withMarket(), { account: 20, side: 'buy', orderType: 'stop_market', stopPrice: 5, quantity: LOT }, 'TICK_SIZE');
});

test('rejects quantities and notionals outside the market limits', () => {
  const h = withMarket({ minQuantity: 2 * LOT, maxQuantity: 100 * LOT, minNotional: usdt(1), maxNotional: usdt(1_000) });
  expectRejected(h, limitBuy({ quantity: LOT }), 'QUANTITY_TOO_SMALL');
  expectRejected(h, limitBuy({ quantity: 101 * LOT }), 'QUANTITY_TOO_LARGE');
  expectRejected(h, limitBuy({ price: usdt(10), quantity: 10 * LOT }), 'NOTIONAL_TOO_SMALL');
  expectRejected(h, limitBuy({ price: usdt(1_000_000), quantity: 100 * LOT }), 'NOTIONAL_TOO_LARGE');
  expectRejected(h, { account: 20, side: 'buy', orderType: 'market', quoteQuantity: usdt(1) - 1 }, 'NOTIONAL_TOO_SMALL');
});

test('rejects limit prices outside the band around the last price (Narkasa 40 % / 250 %)', () => {
  const h = withMarket({ bandLowBps: 4_000, bandHighBps: 25_000 });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  h.place(limitBuy());
  expectRejected(h, limitBuy({ price: usdt(39) }), 'PRICE_BELOW_BAND');
  expectRejected(h, { account: 10, side: 'sell', orderType: 'limit', price: usdt(251), quantity: LOT }, 'PRICE_ABOVE_BAND');
  assert.equal(rejection(h.place(limitBuy({ price: usdt(40) })).events), undefined, 'the bound itself is inside');
});

test('a market order trades only within the collar around the last price when it starts; the rest expires PRICE_COLLAR, and a market without a collar sweeps as before', () => {
  const ladder = (h: ReturnType<typeof withMarket>, side: 'buy' | 'sell', prices: number[]) => {
    for (const price of prices) h.place({ account: 10, side, orderType: 'limit', price: usdt(price), quantity: LOT });
  };
  const h = withMarket({ collarBps: 1_000 });
  // Last price 100: a market buy may pay up to 110, a market sell take down to 90.
  ladder(h, 'sell', [100]);
  h.place({ account: 20, side: 'buy', orderType: 'market', quantity: LOT });
  ladder(h, 'sell', [105, 110, 111, 150]);
  const buy = h.place({ account: 20, side: 'buy', orderType: 'market', quantity: 4 * LOT });
  assert.deepEqual(ofType(buy.events, 'trade').map((t) => t.price), [usdt(105), usdt(110)], 'the fills walk the book up to the collar, not beyond, though the last price rose meanwhile');
  assert.deepEqual(ofType(buy.events, 'order_expired').map((e) => [e.orderId, e.reason]), [[buy.id, 'PRICE_COLLAR']]);
  ladder(h, 'buy', [100, 99, 98]);
  const sell = h.place({ account: 20, side: 'sell', orderType: 'market', quantity: 3 * LOT });
  assert.deepEqual(ofType(sell.events, 'trade').map((t) => t.price), [usdt(100), usdt(99)], 'last 110: a sell takes down to 99');
  assert.deepEqual(ofType(sell.events, 'order_expired').map((e) => e.reason), ['PRICE_COLLAR']);
  // Last 99: a buy may pay up to 108.9, and the best ask is 111.
  const byQuote = h.place({ account: 20, side: 'buy', orderType: 'market', quoteQuantity: usdt(1_000) });
  assert.deepEqual([ofType(byQuote.events, 'trade').length, ofType(byQuote.events, 'order_expired')[0]?.reason], [0, 'PRICE_COLLAR'], 'sized in quote alike');
  assert.equal(h.engine.balance(20, 'USDT').reserved, 0, 'what it reserved is released');
  const copy = Engine.restore(JSON.parse(JSON.stringify(h.engine.snapshot())));
  assert.equal(copy.stateHash(), h.engine.stateHash());
  assert.equal(copy.markets.get('BTC-USDT')!.collarBps, 1_000, 'a snapshot keeps the collar');
  assert.equal(rejection(h.apply({ type: 'set_market_limits', market: 'BTC-USDT', collarBps: 10_001 })), 'INVALID_COMMAND');
  h.apply({ type: 'set_market_limits', market: 'BTC-USDT', collarBps: 0 });
  const sweep = h.place({ account: 20, side: 'buy', orderType: 'market', quantity: 2 * LOT });
  assert.deepEqual(ofType(sweep.events, 'trade').map((t) => t.price), [usdt(111), usdt(150)], 'without a collar a market order sweeps the book');
  h.engine.checkInvariants();

  const fresh = withMarket({ collarBps: 1_000 });
  ladder(fresh, 'sell', [100, 200]);
  const first = fresh.place({ account: 20, side: 'buy', orderType: 'market', quantity: 2 * LOT });
  assert.deepEqual(ofType(first.events, 'trade').map((t) => t.price), [usdt(100), usdt(200)], 'before the first trade there is no last price to collar around');
  ladder(fresh, 'sell', [205, 260]);
  fresh.place({ account: 20, side: 'buy', orderType: 'stop_market', stopPrice: usdt(205), quantity: 2 * LOT });
  const trigger = fresh.place({ account: 30, side: 'buy', orderType: 'market', quantity: LOT });
  assert.deepEqual(ofType(trigger.events, 'trade').map((t) => t.price), [usdt(205)], 'the trigger trades at 205 and fires the stop');
  assert.deepEqual(ofType(trigger.events, 'order_expired').map((e) => e.reason), ['PRICE_COLLAR'], 'the fired stop-market is collared around 205: 260 is beyond 225.5');
});

test('matching rules have versions: a journal replays each command under the rules in force when it was played; from rules 2 a market order before the first trade is collared around the best opposite price', () => {
  const commands: Command[] = [];
  const h = withMarket({ collarBps: 1_000 });
  const record = (cmd: Command) => { commands.push(cmd); return h.apply(cmd); };
  const sweep = (): EngineEvent[] => record({ type: 'place_order', market: 'BTC-USDT', account: 20, side: 'buy', orderType: 'market', quantity: 2 * LOT });
  const ladder = (prices: number[]) => { for (const price of prices) record({ type: 'place_order', market: 'BTC-USDT', account: 10, side: 'sell', orderType: 'limit', price: usdt(price), quantity: LOT }); };
  assert.equal(h.engine.rulesVersion, 1, 'a new engine plays the first rules, as every journal began');
  const genesisHash = h.engine.stateHash();
  ladder([100, 200]);
  assert.deepEqual(ofType(sweep(), 'trade').map((t) => t.price), [usdt(100), usdt(200)], 'rules 1: no trade yet, no collar');
  const adopted = record({ type: 'adopt_rules', version: RULES_VERSION });
  assert.deepEqual(adopted, [{ type: 'rules_adopted', version: 2 }]);
  assert.equal(rejection(record({ type: 'adopt_rules', version: 2 })), 'INVALID_COMMAND', 'only newer rules are adopted');
  assert.equal(rejection(record({ type: 'adopt_rules', version: 1 })), 'INVALID_COMMAND');
  // A market with no trade yet, under rules 2.
  record({ type: 'create_asset', code: 'ETH', precision: 8 });
  record({ type: 'create_market', market: 'ETH-USDT', base: 'ETH', quote: 'USDT', tick: TICK, lot: LOT, collarBps: 1_000 });
  record({ type: 'deposit', account: 10, asset: 'ETH', amount: 10 * BTC, key: 'eth-1' });
  for (const price of [300, 320, 340]) record({ type: 'place_order', market: 'ETH-USDT', account: 10, side: 'sell', orderType: 'limit', price: usdt(price), quantity: LOT });
  const eth = record({ type: 'place_order', market: 'ETH-USDT', account: 20, side: 'buy', orderType: 'market', quantity: 3 * LOT });
  assert.deepEqual(ofType(eth, 'trade').map((t) => t.price), [usdt(300), usdt(320)], 'rules 2: collared at 330 around the best ask, 300, when it started');
  assert.deepEqual(ofType(eth, 'order_expired').map((e) => e.reason), ['PRICE_COLLAR']);
  h.engine.checkInvariants();

  // Replaying what was played, from the same start, reaches the same state: the sweep under 1, the collar under 2.
  const replay = withMarket({ collarBps: 1_000 });
  assert.equal(replay.engine.stateHash(), genesisHash);
  for (const cmd of commands) replay.apply(cmd);
  assert.equal(replay.engine.stateHash(), h.engine.stateHash());
  const copy = Engine.restore(JSON.parse(JSON.stringify(h.engine.snapshot())));
  assert.equal(copy.rulesVersion, 2, 'a snapshot keeps the rules in force');
  assert.equal(copy.stateHash(), h.engine.stateHash());
  assert.equal(JSON.parse(encodeSnapshot(withMarket().engine.snapshot())).rulesVersion, undefined, 'under rules 1, snapshots and hashes are as before rules had versions');

  // A journal from a newer build cannot be replayed by this one: it stops, it does not carry on under older rules.
  const older = withMarket();
  assert.throws(() => older.engine.apply({ seq: older.seq + 1, ts: older.ts + 1, cmd: { type: 'adopt_rules', version: RULES_VERSION + 1 } }), /plays up to 2: run the newer Bourse/);
  const newer = JSON.parse(JSON.stringify(h.engine.snapshot())) as EngineSnapshot;
  newer.rulesVersion = RULES_VERSION + 1;
  assert.throws(() => Engine.restore(newer), /plays matching rules version 3; this build plays up to 2/);
});

test('rejects a post-only order that would take liquidity', () => {
  const h = withMarket();
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  expectRejected(h, limitBuy({ postOnly: true }), 'POST_ONLY_WOULD_TAKE');
});

test('rejects by market state: halted, cancel-only, post-only', () => {
  const h = withMarket();
  const resting = h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(101), quantity: LOT });
  h.apply({ type: 'set_market_state', market: 'BTC-USDT', state: 'halted' });
  expectRejected(h, limitBuy(), 'MARKET_HALTED');
  assert.equal(rejection(h.apply({ type: 'cancel_order', account: 10, orderId: resting.id })), 'MARKET_HALTED');
  h.apply({ type: 'set_market_state', market: 'BTC-USDT', state: 'cancel_only' });
  expectRejected(h, limitBuy(), 'MARKET_CANCEL_ONLY');
  assert.equal(ofType(h.apply({ type: 'cancel_order', account: 10, orderId: resting.id }), 'order_cancelled').length, 1);
  h.apply({ type: 'set_market_state', market: 'BTC-USDT', state: 'post_only' });
  expectRejected(h, { account: 20, side: 'buy', orderType: 'market', quantity: LOT }, 'MARKET_POST_ONLY');
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  expectRejected(h, limitBuy(), 'POST_ONLY_WOULD_TAKE');
  assert.equal(rejection(h.place(limitBuy({ price: usdt(99) })).events), undefined);
});

test('rejects trading against an account restriction', () => {
  const h = withMarket();
  h.apply({ type: 'set_restriction', account: 20, restriction: 'sell_only' });
  expectRejected(h, limitBuy(), 'DIRECTION_RESTRICTED');
  h.apply({ type: 'set_restriction', account: 20, restriction: 'no_trading' });
  expectRejected(h, { account: 20, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT }, 'DIRECTION_RESTRICTED');
});

test('an account at the market\'s open-order limit may place no order that would stay open, and may still trade out', () => {
  const h = withMarket({ maxOpenOrders: 2 });
  const first = h.place(limitBuy());
  h.place({ account: 20, side: 'sell', orderType: 'stop_limit', stopPrice: usdt(90), price: usdt(90), quantity: LOT });
  expectRejected(h, limitBuy({ price: usdt(99) }), 'TOO_MANY_OPEN_ORDERS');
  expectRejected(h, { account: 20, side: 'buy', orderType: 'stop_market', stopPrice: usdt(110), quantity: LOT }, 'TOO_MANY_OPEN_ORDERS');
  expectRejected(h, limitBuy({ timeInForce: 'GTD', expireTime: h.ts + 60_000 }), 'TOO_MANY_OPEN_ORDERS');
  // Another account, and orders that cannot stay open, are not limited.
  assert.equal(rejection(h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(101), quantity: 3 * LOT }).events), undefined);
  assert.equal(ofType(h.place({ account: 20, side: 'buy', orderType: 'market', quantity: LOT }).events, 'trade').length, 1);
  assert.equal(ofType(h.place(limitBuy({ price: usdt(101), timeInForce: 'IOC' })).events, 'trade').length, 1);
  assert.equal(ofType(h.place(limitBuy({ price: usdt(101), timeInForce: 'FOK' })).events, 'trade').length, 1);
  // A cancel frees a place.
  h.apply({ type: 'cancel_order', account: 20, orderId: first.id });
  assert.equal(rejection(h.place(limitBuy({ price: usdt(98) })).events), undefined);
  expectRejected(h, limitBuy({ price: usdt(97) }), 'TOO_MANY_OPEN_ORDERS');
});

test('lowering the open-order limit keeps the orders already open; 0 lifts it', () => {
  const h = withMarket({ maxOpenOrders: 3 });
  for (const price of [97, 98, 99]) h.place(limitBuy({ price: usdt(price) }));
  const updated = ofType(h.apply({ type: 'set_open_order_limit', market: 'BTC-USDT', maxOpenOrders: 1 }), 'market_updated');
  assert.equal(updated[0]?.market.maxOpenOrders, 1);
  assert.equal(h.engine.openOrdersOf(20, {}).length, 3);
  expectRejected(h, limitBuy(), 'TOO_MANY_OPEN_ORDERS');
  // The limit holds across a snapshot.
  const copy = Engine.restore(JSON.parse(JSON.stringify(h.engine.snapshot())));
  assert.equal(rejection(copy.apply({ seq: h.seq + 1, ts: h.ts + 1, cmd: { type: 'place_order', market: 'BTC-USDT', ...limitBuy() } })), 'TOO_MANY_OPEN_ORDERS');
  h.apply({ type: 'set_open_order_limit', market: 'BTC-USDT', maxOpenOrders: 0 });
  assert.equal(rejection(h.place(limitBuy()).events), undefined);
  assert.equal(rejection(h.apply({ type: 'set_open_order_limit', market: 'BTC-USDT', maxOpenOrders: -1 })), 'INVALID_COMMAND');
  assert.equal(rejection(h.apply({ type: 'set_open_order_limit', market: 'BTC-USDT', maxOpenOrders: 1.5 })), 'INVALID_COMMAND');
  assert.equal(rejection(h.apply({ type: 'set_open_order_limit', market: 'DOGE-USDT', maxOpenOrders: 1 })), 'UNKNOWN_MARKET');
});

test('a market without an open-order limit snapshots as before limits existed, so that older snapshots restore to the state they hashed', () => {
  const unlimited = withMarket();
  unlimited.place(limitBuy());
  const old = unlimited.engine.snapshot();
  assert.ok(!('maxOpenOrders' in old.markets[0]!), 'no field for no limit');
  // Recovery accepts a stored snapshot only if the restored engine encodes to the same bytes.
  assert.equal(encodeSnapshot(Engine.restore(JSON.parse(encodeSnapshot(old))).snapshot()), encodeSnapshot(old));
  const limited = withMarket({ maxOpenOrders: 7 });
  const copy = Engine.restore(JSON.parse(encodeSnapshot(limited.engine.snapshot())));
  assert.equal(copy.marketView(copy.markets.get('BTC-USDT')!).maxOpenOrders, 7);
  assert.equal(copy.stateHash(), limited.engine.stateHash());
});

test('a dead man\'s switch cancels every open order of its account once a command reaches the deadline, unless set again in time', () => {
  const h = withMarket();
  const resting = h.place(limitBuy());
  const stop = h.place({ account: 20, side: 'sell', orderType: 'stop_market', stopPrice: usdt(90), quantity: LOT });
  const other = h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(120), quantity: LOT });
  const set = ofType(h.apply({ type: 'set_cancel_after', account: 20, timeoutMs: 5_000 }), 'cancel_after_set')[0]!;
  assert.equal(set.triggerTime, h.ts + 5_000);
  assert.equal(h.engine.cancelAfterOf(20), h.ts + 5_000);
  assert.equal(h.engine.nextDueAt(), h.ts + 5_000);
  // Set again before the deadline: the deadline moves, nothing is cancelled.
  assert.equal(ofType(h.apply({ type: 'set_cancel_after', account: 20, timeoutMs: 5_000 }, 4_000), 'cancel_after_set')[0]!.triggerTime, h.ts + 5_000);
  const deadline = h.ts + 5_000;
  assert.equal(h.apply({ type: 'tick' }, 4_999).length, 0, 'one millisecond early: nothing');
  const fired = h.apply({ type: 'tick' }, 1);
  assert.deepEqual(fired[0], { type: 'cancel_after_triggered', account: 20, triggerTime: deadline });
  const cancelled = ofType(fired, 'order_cancelled');
  assert.deepEqual(cancelled.map((e) => [e.orderId, e.reason]), [[resting.id, 'CANCEL_AFTER'], [stop.id, 'CANCEL_AFTER']], 'the resting and the waiting stop order, oldest first');
  assert.equal(h.engine.balance(20, 'USDT').reserved, 0, 'the reservation is released');
  assert.ok(h.engine.openOrder(other.id), 'other accounts keep their orders');
  assert.equal(h.engine.cancelAfterOf(20), null, 'firing disarms the switch');
  assert.equal(h.engine.nextDueAt(), null);
  h.place(limitBuy());
  assert.equal(ofType(h.apply({ type: 'tick' }, 10 * 86_400_000), 'order_cancelled').length, 0, 'a fired switch does not fire again');
});

test('a dead man\'s switch is turned off with 0, fires before the command that reaches it, and leaves a halted market\'s orders', () => {
  const h = withMarket();
  h.place(limitBuy());
  h.apply({ type: 'set_cancel_after', account: 20, timeoutMs: 1_000 });
  assert.deepEqual(h.apply({ type: 'set_cancel_after', account: 20, timeoutMs: 0 }), [{ type: 'cancel_after_set', account: 20, triggerTime: null }]);
  assert.equal(ofType(h.apply({ type: 'tick' }, 5_000), 'order_cancelled').length, 0, 'off: nothing fires');

  h.apply({ type: 'set_cancel_after', account: 20, timeoutMs: 1_000 });
  // A command that arrives after the deadline sees the switch fire first: setting it again is too late.
  const late = h.apply({ type: 'set_cancel_after', account: 20, timeoutMs: 1_000 }, 1_500);
  assert.deepEqual(late.map((e) => e.type), ['cancel_after_triggered', 'order_cancelled', 'cancel_after_set', 'balance']);

  const halted = withMarket();
  const kept = halted.place(limitBuy());
  halted.apply({ type: 'set_cancel_after', account: 20, timeoutMs: 1_000 });
  halted.apply({ type: 'set_market_state', market: 'BTC-USDT', state: 'halted' });
  const fired = halted.apply({ type: 'tick' }, 2_000);
  assert.equal(ofType(fired, 'cancel_after_triggered').length, 1);
  assert.equal(ofType(fired, 'order_cancelled').length, 0, 'a halt freezes the book, as for any cancel');
  assert.ok(halted.engine.openOrder(kept.id));
});

test('a dead man\'s switch refuses bad timeouts and unknown accounts, and switches of several accounts fire in deadline order', () => {
  const h = withMarket();
  const before = stateWithoutClock(h.engine);
  for (const timeoutMs of [-1, 1.5, 86_400_001, Number.NaN, '60000' as unknown as number]) {
    assert.equal(rejection(h.apply({ type: 'set_cancel_after', account: 20, timeoutMs })), 'INVALID_COMMAND', String(timeoutMs));
  }
  assert.equal(rejection(h.apply({ type: 'set_cancel_after', account: 999, timeoutMs: 1_000 })), 'UNKNOWN_ACCOUNT');
  assert.equal(rejection(h.apply({ type: 'set_cancel_after', account: -2, timeoutMs: 1_000 })), 'INVALID_COMMAND');
  assert.equal(rejection(h.apply({ type: 'cancel_all', account: 20, cause: 'other' as 'disconnect' })), 'INVALID_COMMAND');
  assert.equal(stateWithoutClock(h.engine), before, 'refusals change nothing');
  assert.equal(ofType(h.apply({ type: 'set_cancel_after', account: 20, timeoutMs: 86_400_000 }), 'cancel_after_set').length, 1, 'a day is allowed');

  h.place(limitBuy());
  h.place({ account: 30, side: 'sell', orderType: 'limit', price: usdt(130), quantity: LOT });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(120), quantity: LOT });
  h.apply({ type: 'set_cancel_after', account: 30, timeoutMs: 3_000 });
  h.apply({ type: 'set_cancel_after', account: 10, timeoutMs: 2_000 });
  h.apply({ type: 'set_cancel_after', account: 20, timeoutMs: 1_000 });
  const fired = ofType(h.apply({ type: 'tick' }, 10_000), 'cancel_after_triggered');
  assert.deepEqual(fired.map((e) => e.account), [20, 10, 30]);
});

test('cancel-all on disconnect cancels with reason DISCONNECT', () => {
  const h = withMarket();
  h.place(limitBuy());
  const events = ofType(h.apply({ type: 'cancel_all', account: 20, cause: 'disconnect' }), 'order_cancelled');
  assert.deepEqual(events.map((e) => e.reason), ['DISCONNECT']);
});

test('an armed dead man\'s switch survives a snapshot and fires after the restore; accounts without one snapshot as before switches existed', () => {
  const h = withMarket();
  h.place(limitBuy());
  const plain = h.engine.snapshot();
  assert.ok(plain.accounts.every((a) => a.length === 4), 'no field without a switch');
  h.apply({ type: 'set_cancel_after', account: 20, timeoutMs: 60_000 });
  const armed = JSON.parse(encodeSnapshot(h.engine.snapshot())) as ReturnType<Engine['snapshot']>;
  assert.deepEqual(armed.accounts.find((a) => a[0] === 20)?.[4], h.ts + 60_000);
  const copy = Engine.restore(armed);
  assert.equal(encodeSnapshot(copy.snapshot()), encodeSnapshot(armed));
  assert.equal(copy.stateHash(), h.engine.stateHash());
  const envelope = { seq: h.seq + 1, ts: h.ts + 60_000, cmd: { type: 'tick' as const } };
  const fired = copy.apply(envelope);
  assert.deepEqual(fired, h.engine.apply(envelope), 'the restored engine fires as the original does');
  assert.equal(ofType(fired, 'order_cancelled')[0]?.reason, 'CANCEL_AFTER');
});

test('rejects unknown markets, accounts and orders', () => {
  const h = withMarket();
  expectRejected(h, limitBuy({ market: 'DOGE-USDT' }), 'UNKNOWN_MARKET');
  expectRejected(h, limitBuy({ account: 999 }), 'UNKNOWN_ACCOUNT');
  expectRejected(h, limitBuy({ account: -2 }), 'INVALID_COMMAND');
  assert.equal(rejection(h.apply({ type: 'cancel_order', account: 20, orderId: 12345 })), 'UNKNOWN_ORDER');
});

test('rejects malformed orders as invalid commands without throwing', () => {
  const h = withMarket();
  const bad: unknown[] = [
    limitBuy({ price: 1.5 }), limitBuy({ price: -100 }), limitBuy({ quantity: Number.MAX_SAFE_INTEGER + 1 }),
    limitBuy({ side: 'up' as never }), limitBuy({ orderType: 'iceberg' as never }), limitBuy({ timeInForce: 'GTX' as never }),
    limitBuy({ price: undefined }), limitBuy({ quoteQuantity: 5 }), limitBuy({ postOnly: true, timeInForce: 'IOC' }),
    limitBuy({ clientOrderId: 'has space' }), limitBuy({ expireTime: 5 }),
    { account: 20, side: 'buy', orderType: 'market', price: usdt(1), quantity: LOT },
    { account: 20, side: 'buy', orderType: 'trailing_stop', callbackBps: 10_000, quantity: LOT },
  ];
  for (const order of bad) expectRejected(h, order as Order, 'INVALID_COMMAND');
  assert.equal(rejection(h.apply({ type: 'no_such' } as never)), 'INVALID_COMMAND');
});

test('rejects a price × quantity beyond the supported range', () => {
  const h = withMarket();
  expectRejected(h, limitBuy({ price: usdt(1_000_000_000), quantity: 1_000_000 * BTC }), 'OUT_OF_RANGE');
});

test('markets whose tick × lot is not a whole quote unit are refused', () => {
  const h = withMarket();
  const events = h.apply({ type: 'create_market', market: 'BTC-EUR', base: 'BTC', quote: 'USDT', tick: 1, lot: 1 });
  assert.equal(rejection(events), 'INVALID_COMMAND');
});

function stpScenario(stp: 'cancel_taker' | 'cancel_maker' | 'cancel_both' | 'decrement'): EngineEvent[] {
  const h = withMarket();
  h.apply({ type: 'create_account', account: 11, user: 1 }); // a second account of user 1
  h.apply({ type: 'deposit', account: 11, asset: 'USDT', amount: usdt(1_000), key: 'sub' });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: 2 * LOT });
  h.place({ account: 30, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  return h.place({ account: 11, side: 'buy', orderType: 'limit', price: usdt(100), quantity: 3 * LOT, stp }).events;
}

test('self-trade prevention: cancel taker stops the taker at its own order (Narkasa 10041)', () => {
  const events = stpScenario('cancel_taker');
  assert.equal(ofType(events, 'trade').length, 0);
  assert.deepEqual(ofType(events, 'order_cancelled').map((e) => [e.account, e.reason]), [[11, 'SELF_TRADE']]);
});

test('self-trade prevention: cancel maker removes the own order and trades on', () => {
  const events = stpScenario('cancel_maker');
  assert.deepEqual(ofType(events, 'order_cancelled').map((e) => e.account), [10]);
  assert.deepEqual(ofType(events, 'trade').map((t) => t.makerAccount), [30]);
});

test('self-trade prevention: cancel both cancels maker and taker', () => {
  const events = stpScenario('cancel_both');
  assert.deepEqual(ofType(events, 'order_cancelled').map((e) => e.account), [10, 11]);
  assert.equal(ofType(events, 'trade').length, 0);
});

test('self-trade prevention: decrement shrinks both by the overlap without a trade', () => {
  const events = stpScenario('decrement');
  const cancelled = ofType(events, 'order_cancelled');
  assert.deepEqual(cancelled.map((e) => [e.account, e.cancelledQuantity]), [[10, 2 * LOT]]);
  const [trade] = ofType(events, 'trade');
  assert.equal(trade!.makerAccount, 30);
  assert.equal(trade!.quantity, LOT);
});

test('fees: maker and taker rates, charged in the received asset, rounded up by less than one unit', () => {
  const h = withMarket({ makerFeePpm: 1_000, takerFeePpm: 2_000 });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100) + 10_000, quantity: 3 * LOT });
  const { events } = h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(101), quantity: 3 * LOT });
  const [trade] = ofType(events, 'trade');
  // Taker (buyer) receives 30,000 sat: 0.2 % = 60 sat. Maker receives 30,300 USDT minor: 0.1 % = 30.3 → 31.
  assert.equal(trade!.buyerFee, 60);
  assert.equal(trade!.sellerFee, 31);
  assert.equal(h.engine.balance(-2, 'BTC').available, 60);
  assert.equal(h.engine.balance(-2, 'USDT').available, 31);
  assert.equal(h.engine.balance(20, 'BTC').available, 10 * BTC + 3 * LOT - 60);
});

test('fees: volume tiers and user levels lower the rate; the minimum fee applies', () => {
  const h = withMarket();
  h.apply({ type: 'set_fees', market: 'BTC-USDT', makerFeePpm: 1_000, takerFeePpm: 2_000, tiers: [{ minVolume: usdt(10), makerFeePpm: 500, takerFeePpm: 1_000 }] });
  const trade = (price: number) => {
    h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(price), quantity: 10 * LOT });
    return ofType(h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(price), quantity: 10 * LOT }).events, 'trade')[0]!;
  };
  assert.equal(trade(10_000).buyerFee, 200, 'first trade at the base taker rate');
  assert.equal(trade(10_000).buyerFee, 100, 'after 10 USDT of 30-day volume the tier applies');
  h.apply({ type: 'set_fee_level', level: 3, makerFeePpm: 0, takerFeePpm: 0 });
  h.apply({ type: 'set_user_level', user: 2, level: 3 });
  assert.equal(trade(10_000).buyerFee, 0, 'level 3 trades free');
  h.apply({ type: 'create_asset', code: 'ETH', precision: 8, minFee: 50 });
  h.apply({ type: 'create_market', market: 'ETH-USDT', base: 'ETH', quote: 'USDT', tick: 10_000, lot: 10_000, takerFeePpm: 1 });
  h.apply({ type: 'deposit', account: 10, asset: 'ETH', amount: BTC, key: 'eth' });
  h.place({ market: 'ETH-USDT', account: 10, side: 'sell', orderType: 'limit', price: usdt(10), quantity: LOT });
  const { events } = h.place({ market: 'ETH-USDT', account: 30, side: 'buy', orderType: 'limit', price: usdt(10), quantity: LOT });
  assert.equal(ofType(events, 'trade')[0]!.buyerFee, 50, 'the minimum fee of the received asset');
});

test('deposits apply once per key; holds lock, unlock and settle exactly once', () => {
  const h = withMarket();
  assert.equal(rejection(h.apply({ type: 'deposit', account: 10, asset: 'BTC', amount: 5, key: 'btc-1' })), 'DUPLICATE_KEY');
  h.apply({ type: 'lock_funds', account: 10, asset: 'BTC', amount: BTC, hold: 'w1' });
  assert.deepEqual(h.engine.balance(10, 'BTC'), { asset: 'BTC', available: 9 * BTC, reserved: 0, locked: BTC });
  assert.equal(rejection(h.apply({ type: 'lock_funds', account: 10, asset: 'BTC', amount: 1, hold: 'w1' })), 'DUPLICATE_KEY');
  assert.equal(rejection(h.apply({ type: 'lock_funds', account: 10, asset: 'BTC', amount: 10 * BTC, hold: 'w2' })), 'INSUFFICIENT_BALANCE');
  h.apply({ type: 'settle_funds', hold: 'w1' });
  assert.equal(rejection(h.apply({ type: 'settle_funds', hold: 'w1' })), 'DUPLICATE_KEY');
  assert.equal(rejection(h.apply({ type: 'unlock_funds', hold: 'w1' })), 'DUPLICATE_KEY');
  assert.deepEqual(h.engine.balance(10, 'BTC'), { asset: 'BTC', available: 9 * BTC, reserved: 0, locked: 0 });
  assert.equal(h.engine.balance(-1, 'BTC').available, -29 * BTC, 'the world holds what left the exchange');
  h.apply({ type: 'lock_funds', account: 10, asset: 'BTC', amount: BTC, hold: 'w3' });
  h.apply({ type: 'unlock_funds', hold: 'w3' });
  assert.equal(h.engine.balance(10, 'BTC').available, 9 * BTC);
  h.apply({ type: 'transfer', from: 10, to: 20, asset: 'BTC', amount: BTC, key: 't1' });
  assert.equal(rejection(h.apply({ type: 'transfer', from: 10, to: 20, asset: 'BTC', amount: BTC, key: 't1' })), 'DUPLICATE_KEY');
  assert.equal(h.engine.balance(20, 'BTC').available, 11 * BTC);
});

test('a market\'s limits and band change for what comes next: resting orders stay, refused changes leave every limit as it was', () => {
  const h = withMarket({ bandLowBps: 4_000, bandHighBps: 25_000 });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(100), quantity: LOT });
  const resting = h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(50), quantity: LOT });
  assert.equal(ofType(resting.events, 'order_accepted').length, 1);
  const before = stateWithoutClock(h.engine);
  for (const bad of [{ bandLowBps: 10_001 }, { bandHighBps: 9_999 }, { minQuantity: 2 * LOT, maxQuantity: LOT }, { minNotional: -1 }]) {
    assert.equal(rejection(h.apply({ type: 'set_market_limits', market: 'BTC-USDT', ...bad })), 'INVALID_COMMAND', JSON.stringify(bad));
  }
  assert.equal(stateWithoutClock(h.engine), before, 'refusals change nothing');
  // One lot at 100 USDT is worth 10,000 minor units of USDT.
  h.apply({ type: 'set_market_limits', market: 'BTC-USDT', bandLowBps: 8_000, minNotional: 10_001 });
  const market = h.engine.markets.get('BTC-USDT')!;
  assert.deepEqual([market.bandLowBps, market.bandHighBps, market.minNotional, market.minQuantity], [8_000, 25_000, 10_001, LOT], 'what is left out stays');
  assert.equal(rejection(h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(79), quantity: 2 * LOT }).events), 'PRICE_BELOW_BAND');
  assert.equal(rejection(h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(90), quantity: LOT }).events), 'NOTIONAL_TOO_SMALL');
  assert.equal(h.engine.openOrder(ofType(resting.events, 'order_accepted')[0]!.orderId)?.price, usdt(50), 'the order resting below the new band stays');
  h.apply({ type: 'set_market_limits', market: 'BTC-USDT', bandLowBps: 0, bandHighBps: 0 });
  assert.equal(rejection(h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(1), quantity: LOT * 200 }).events), undefined, '0 lifts a band');
  assert.equal(rejection(h.apply({ type: 'set_market_limits', market: 'DOGE-USDT', minQuantity: 1 })), 'UNKNOWN_MARKET');
  const copy = Engine.restore(JSON.parse(JSON.stringify(h.engine.snapshot())));
  assert.equal(copy.stateHash(), h.engine.stateHash(), 'a snapshot keeps the new limits');
});

test('collected fees move from the fee account to a user account once per key, never more than it holds, and the books stay balanced', () => {
  const h = withMarket();
  h.apply({ type: 'lock_funds', account: 10, asset: 'BTC', amount: BTC, hold: 'w1' });
  h.apply({ type: 'settle_funds', hold: 'w1', fee: 1_000 });
  assert.equal(h.engine.balance(-2, 'BTC').available, 1_000, 'the withdrawal fee is collected');
  const events = h.apply({ type: 'collect_fees', to: 20, asset: 'BTC', amount: 600, key: 'f1' });
  assert.deepEqual(ofType(events, 'transferred'), [{ type: 'transferred', account: -2, counterparty: 20, asset: 'BTC', amount: 600, key: 'f1' }]);
  assert.deepEqual([h.engine.balance(-2, 'BTC').available, h.engine.balance(20, 'BTC').available], [400, 10 * BTC + 600]);
  assert.equal(rejection(h.apply({ type: 'collect_fees', to: 20, asset: 'BTC', amount: 100, key: 'f1' })), 'DUPLICATE_KEY');
  assert.equal(rejection(h.apply({ type: 'collect_fees', to: 20, asset: 'BTC', amount: 401, key: 'f2' })), 'INSUFFICIENT_BALANCE');
  assert.equal(rejection(h.apply({ type: 'collect_fees', to: -1, asset: 'BTC', amount: 1, key: 'f3' })), 'INVALID_COMMAND', 'only to a user account');
  assert.equal(rejection(h.apply({ type: 'collect_fees', to: 999, asset: 'BTC', amount: 1, key: 'f3' })), 'UNKNOWN_ACCOUNT');
  assert.equal(rejection(h.apply({ type: 'collect_fees', to: 20, asset: 'DOGE', amount: 1, key: 'f4' })), 'UNKNOWN_ASSET');
  assert.equal(h.engine.balance(-2, 'BTC').available, 400, 'refusals change nothing');
  const btc = h.engine.ledgerTotals().find((t) => t.asset === 'BTC')!;
  // 30 BTC deposited; 1 BTC withdrawn, of which its fee stayed: 29 BTC + 1,000 net came in.
  const inflow = 29n * BigInt(BTC) + 1_000n;
  assert.deepEqual([btc.fees, btc.available + btc.reserved + btc.locked + btc.fees, btc.netInflow], [400n, inflow, inflow]);
});

test('a debit takes only available funds out to the outside world, once per key, and the books stay balanced', () => {
  const h = withMarket();
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: 6 * BTC });
  const events = h.apply({ type: 'debit', account: 10, asset: 'BTC', amount: 3 * BTC, key: 'fix-1' });
  assert.deepEqual(ofType(events, 'debited'), [{ type: 'debited', account: 10, counterparty: -1, asset: 'BTC', amount: 3 * BTC, key: 'fix-1' }]);
  assert.deepEqual(h.engine.balance(10, 'BTC'), { asset: 'BTC', available: BTC, reserved: 6 * BTC, locked: 0 });
  assert.equal(rejection(h.apply({ type: 'debit', account: 10, asset: 'BTC', amount: BTC + 1, key: 'fix-2' })), 'INSUFFICIENT_BALANCE', 'funds reserved for an order stay');
  assert.equal(rejection(h.apply({ type: 'debit', account: 10, asset: 'BTC', amount: 1, key: 'fix-1' })), 'DUPLICATE_KEY');
  assert.equal(rejection(h.apply({ type: 'debit', account: 10, asset: 'BTC', amount: 1, key: 'btc-1' })), 'DUPLICATE_KEY', 'keys are shared with deposits');
  assert.equal(rejection(h.apply({ type: 'debit', account: -2, asset: 'BTC', amount: 1, key: 'fix-3' })), 'INVALID_COMMAND', 'not the fee account');
  assert.equal(rejection(h.apply({ type: 'debit', account: 999, asset: 'BTC', amount: 1, key: 'fix-3' })), 'UNKNOWN_ACCOUNT');
  assert.equal(rejection(h.apply({ type: 'debit', account: 10, asset: 'DOGE', amount: 1, key: 'fix-3' })), 'UNKNOWN_ASSET');
  for (const amount of [0, -1, 0.5]) assert.equal(rejection(h.apply({ type: 'debit', account: 10, asset: 'BTC', amount, key: 'fix-3' })), 'INVALID_COMMAND');
  assert.deepEqual(h.engine.balance(10, 'BTC'), { asset: 'BTC', available: BTC, reserved: 6 * BTC, locked: 0 }, 'refusals change nothing');
  const btc = h.engine.ledgerTotals().find((t) => t.asset === 'BTC')!;
  const inflow = 27n * BigInt(BTC);
  assert.deepEqual([btc.available + btc.reserved + btc.locked + btc.fees, btc.netInflow], [inflow, inflow], '30 BTC in, 3 out');
  h.engine.checkInvariants();
  const copy = Engine.restore(JSON.parse(JSON.stringify(h.engine.snapshot())));
  assert.equal(rejection(copy.apply({ seq: h.seq + 1, ts: h.ts, cmd: { type: 'debit', account: 10, asset: 'BTC', amount: 1, key: 'fix-1' } })), 'DUPLICATE_KEY', 'a snapshot keeps the key');
});

test('snapshot and restore give the same state hash and the same behaviour afterwards', () => {
  const h = withMarket({ makerFeePpm: 100, takerFeePpm: 200 });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: 5 * LOT, clientOrderId: 'c1' });
  h.place({ account: 10, side: 'sell', orderType: 'limit', timeInForce: 'DAY', price: usdt(101), quantity: 5 * LOT });
  h.place({ account: 20, side: 'buy', orderType: 'stop_limit', stopPrice: usdt(101), price: usdt(102), quantity: LOT });
  h.place({ account: 30, side: 'sell', orderType: 'trailing_stop', callbackBps: 100, quantity: LOT });
  h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(100), quantity: 2 * LOT });
  const copy = Engine.restore(JSON.parse(JSON.stringify(h.engine.snapshot())));
  assert.equal(copy.stateHash(), h.engine.stateHash());
  copy.checkInvariants();
  const next = { seq: h.seq + 1, ts: h.ts + 86_400_000, cmd: { type: 'place_order', account: 30, market: 'BTC-USDT', side: 'buy', orderType: 'limit', price: usdt(101), quantity: 4 * LOT } } as const;
  assert.deepEqual(copy.apply(next), h.engine.apply(next));
  assert.equal(copy.stateHash(), h.engine.stateHash());
});

test('rejects amending an order that is not resting, and unknown holds, users and duplicates', () => {
  const h = withMarket();
  const stop = h.place({ account: 20, side: 'buy', orderType: 'stop_limit', stopPrice: usdt(200), price: usdt(200), quantity: LOT });
  assert.equal(rejection(h.apply({ type: 'amend_order', account: 20, orderId: stop.id, quantity: 2 * LOT })), 'ORDER_NOT_AMENDABLE');
  assert.equal(rejection(h.apply({ type: 'settle_funds', hold: 'never-made' })), 'UNKNOWN_HOLD');
  assert.equal(rejection(h.apply({ type: 'create_account', account: 77, user: 404 })), 'UNKNOWN_USER');
  assert.equal(rejection(h.apply({ type: 'create_user', user: 1 })), 'ALREADY_EXISTS');
  assert.equal(rejection(h.apply({ type: 'create_asset', code: 'BTC', precision: 8 })), 'ALREADY_EXISTS');
  assert.equal(rejection(h.apply({ type: 'deposit', account: 10, asset: 'DOGE', amount: 1, key: 'x' })), 'UNKNOWN_ASSET');
});
