import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../src/core/index.js';
import { BTC, LOT, ofType, stateWithoutClock, T0, TICK, usdt, withMarket } from './support/harness.js';

const DAY = 86_400_000;

test('a limit order rests, reserving exactly its price × quantity', () => {
  const h = withMarket();
  const { id } = h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(50_000), quantity: BTC / 10 });
  assert.equal(h.engine.openOrder(id)?.status, 'NEW');
  assert.deepEqual(h.engine.balance(20, 'USDT'), { asset: 'USDT', available: usdt(995_000), reserved: usdt(5_000), locked: 0 });
  assert.deepEqual(h.engine.book('BTC-USDT').bids, [{ price: usdt(50_000), quantity: BTC / 10, orders: 1 }]);
});

test('a crossing buy trades at the maker price and gets the price improvement back', () => {
  const h = withMarket();
  const maker = h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(50_000), quantity: BTC / 2 });
  const { id, events } = h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(51_000), quantity: BTC });
  const [trade] = ofType(events, 'trade');
  assert.equal(trade!.price, usdt(50_000));
  assert.equal(trade!.makerOrderId, maker.id);
  assert.equal(trade!.takerOrderId, id);
  const fills = ofType(events, 'order_fill');
  assert.deepEqual(fills.map((f) => [f.orderId, f.liquidity, f.status, f.leavesQuantity]), [
    [id, 'taker', 'PARTIALLY_FILLED', BTC / 2],
    [maker.id, 'maker', 'FILLED', 0],
  ]);
  // Paid 25,000 for half a BTC; the rest rests at 51,000 → 25,500 reserved.
  assert.deepEqual(h.engine.balance(20, 'USDT'), { asset: 'USDT', available: usdt(1_000_000 - 25_000 - 25_500), reserved: usdt(25_500), locked: 0 });
  assert.equal(h.engine.openOrder(id)?.status, 'PARTIALLY_FILLED');
});

test('matching follows price, then time priority', () => {
  const h = withMarket();
  const a = h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(101), quantity: LOT });
  const b = h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  const c = h.place({ account: 30, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  const { events } = h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(101), quantity: 3 * LOT });
  assert.deepEqual(ofType(events, 'trade').map((t) => t.makerOrderId), [b.id, c.id, a.id]);
});

test('IOC fills what it can and expires the rest', () => {
  const h = withMarket();
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  const { events } = h.place({ account: 20, side: 'buy', orderType: 'limit', timeInForce: 'IOC', price: usdt(100), quantity: 3 * LOT });
  const [expired] = ofType(events, 'order_expired');
  assert.equal(expired!.reason, 'IOC');
  assert.equal(expired!.cancelledQuantity, 2 * LOT);
  assert.equal(h.engine.balance(20, 'USDT').reserved, 0);
  assert.equal(h.engine.book('BTC-USDT').bids.length, 0);
});

test('FOK fills completely or is rejected without touching the book', () => {
  const h = withMarket();
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: 2 * LOT });
  const before = stateWithoutClock(h.engine);
  const refused = h.place({ account: 20, side: 'buy', orderType: 'limit', timeInForce: 'FOK', price: usdt(100), quantity: 3 * LOT });
  assert.equal(ofType(refused.events, 'order_rejected')[0]?.reason, 'FOK_CANNOT_FILL');
  assert.equal(stateWithoutClock(h.engine), before);
  const { events } = h.place({ account: 20, side: 'buy', orderType: 'limit', timeInForce: 'FOK', price: usdt(100), quantity: 2 * LOT });
  assert.equal(ofType(events, 'order_fill')[0]?.status, 'FILLED');
});

test('a DAY order expires at the next UTC midnight, as soon as a command passes it', () => {
  const h = withMarket();
  const { id } = h.place({ account: 20, side: 'buy', orderType: 'limit', timeInForce: 'DAY', price: usdt(100), quantity: LOT });
  const midnight = (Math.floor(T0 / DAY) + 1) * DAY;
  assert.equal(h.engine.openOrder(id)?.expireTime, midnight);
  assert.equal(ofType(h.apply({ type: 'tick' }, 1000), 'order_expired').length, 0);
  const events = h.apply({ type: 'tick' }, midnight - h.ts);
  assert.deepEqual(ofType(events, 'order_expired').map((e) => [e.orderId, e.reason]), [[id, 'EXPIRE_TIME']]);
  assert.equal(h.engine.balance(20, 'USDT').reserved, 0);
});

test('a GTD order expires at its time; an expiry in the past is refused', () => {
  const h = withMarket();
  const late = h.place({ account: 20, side: 'buy', orderType: 'limit', timeInForce: 'GTD', expireTime: h.ts, price: usdt(100), quantity: LOT });
  assert.equal(ofType(late.events, 'order_rejected')[0]?.reason, 'INVALID_EXPIRE_TIME');
  const { id } = h.place({ account: 20, side: 'buy', orderType: 'limit', timeInForce: 'GTD', expireTime: h.ts + 5_000, price: usdt(100), quantity: LOT });
  h.apply({ type: 'tick' }, 4_000);
  assert.ok(h.engine.openOrder(id));
  h.ts += 1_000;
  // The expiry happens before the command that passes it, so this order meets an empty book.
  const { events } = h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  assert.equal(ofType(events, 'order_expired')[0]?.orderId, id);
  assert.equal(ofType(events, 'trade').length, 0);
});

test('a post-only order rests when it adds liquidity', () => {
  const h = withMarket();
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(101), quantity: LOT });
  const { id } = h.place({ account: 20, side: 'buy', orderType: 'limit', postOnly: true, price: usdt(100), quantity: LOT });
  assert.equal(h.engine.openOrder(id)?.postOnly, true);
});

test('a market order by base quantity sweeps levels and expires for lack of liquidity', () => {
  const h = withMarket();
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(102), quantity: LOT });
  const { events } = h.place({ account: 20, side: 'buy', orderType: 'market', quantity: 3 * LOT });
  assert.deepEqual(ofType(events, 'trade').map((t) => t.price), [usdt(100), usdt(102)]);
  const [expired] = ofType(events, 'order_expired');
  assert.equal(expired!.reason, 'NO_LIQUIDITY');
  assert.equal(expired!.cumQuantity, 2 * LOT);
  assert.equal(expired!.avgPrice, usdt(101));
  assert.equal(h.engine.balance(20, 'USDT').reserved, 0);
  assert.equal(h.engine.balance(20, 'USDT').available, usdt(1_000_000) - (usdt(100) + usdt(102)) * LOT / BTC);
});

test('a market buy by base quantity stops when the account cannot pay for more', () => {
  const h = withMarket();
  h.apply({ type: 'create_user', user: 9 });
  h.apply({ type: 'create_account', account: 90, user: 9 });
  h.apply({ type: 'deposit', account: 90, asset: 'USDT', amount: usdt(100) * 3 * LOT / BTC, key: 'poor' });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: 10 * LOT });
  const { events } = h.place({ account: 90, side: 'buy', orderType: 'market', quantity: 5 * LOT });
  assert.equal(ofType(events, 'trade')[0]?.quantity, 3 * LOT);
  assert.equal(ofType(events, 'order_cancelled')[0]?.reason, 'INSUFFICIENT_BALANCE');
  assert.deepEqual(h.engine.balance(90, 'USDT'), { asset: 'USDT', available: 0, reserved: 0, locked: 0 });
});

test('a market buy by quote amount spends at most that amount and is filled when no further lot fits', () => {
  const h = withMarket();
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: 2 * LOT });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(200), quantity: 10 * LOT });
  // 2 lots at 100 cost 0.02 USDT, then 0.05 USDT buys 2 lots at 200 (0.04) with 0.01 left over.
  const { events } = h.place({ account: 20, side: 'buy', orderType: 'market', quoteQuantity: 70_000 });
  const fills = ofType(events, 'order_fill').filter((f) => f.liquidity === 'taker');
  assert.deepEqual(fills.map((f) => [f.quantity, f.quoteQuantity]), [[2 * LOT, 20_000], [2 * LOT, 40_000]]);
  assert.equal(fills[1]!.status, 'FILLED');
  assert.equal(h.engine.balance(20, 'USDT').available, usdt(1_000_000) - 60_000);
  assert.equal(h.engine.balance(20, 'USDT').reserved, 0);
});

test('a market sell by quote amount sells just enough base to receive it', () => {
  const h = withMarket();
  h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(100), quantity: 10 * LOT });
  const { events } = h.place({ account: 10, side: 'sell', orderType: 'market', quoteQuantity: 30_000 });
  assert.equal(ofType(events, 'trade')[0]?.quantity, 3 * LOT);
  assert.equal(ofType(events, 'order_fill')[0]?.status, 'FILLED');
  assert.equal(h.engine.balance(10, 'BTC').reserved, 0);
  assert.equal(h.engine.balance(10, 'BTC').available, 10 * BTC - 3 * LOT);
});

test('a stop-market buy triggers when the last price rises to its stop', () => {
  const h = withMarket();
  const stop = h.place({ account: 20, side: 'buy', orderType: 'stop_market', stopPrice: usdt(105), quantity: LOT });
  assert.equal(h.engine.openOrder(stop.id)?.status, 'PENDING_TRIGGER');
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(104), quantity: LOT });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(106), quantity: 2 * LOT });
  h.place({ account: 30, side: 'buy', orderType: 'limit', price: usdt(104), quantity: LOT });
  assert.ok(h.engine.openOrder(stop.id), 'a trade at 104 does not reach 105');
  const { events } = h.place({ account: 30, side: 'buy', orderType: 'limit', price: usdt(106), quantity: LOT });
  assert.deepEqual(ofType(events, 'order_triggered').map((e) => e.orderId), [stop.id]);
  assert.deepEqual(ofType(events, 'trade').map((t) => t.takerOrderId), [h.seq, stop.id]);
  assert.equal(h.engine.openOrder(stop.id), undefined);
});

test('stops at the same trigger fire oldest first, lower triggers before higher, and a snapshot keeps that order', () => {
  const h = withMarket();
  const stop = (price: number): number => h.place({ account: 20, side: 'buy', orderType: 'stop_market', stopPrice: usdt(price), quantity: LOT }).id;
  const a = stop(105);
  const b = stop(103);
  const c = stop(105);
  const d = stop(103);
  const cancelled = stop(104);
  const e = stop(104);
  h.apply({ type: 'cancel_order', account: 20, orderId: cancelled });
  // Snapshots record each list with the next to fire last, as they always have.
  const snapshot = h.engine.snapshot();
  assert.deepEqual(snapshot.markets[0]!.rising, [c, a, e, d, b]);
  const restored = Engine.restore(snapshot);
  assert.equal(restored.stateHash(), h.engine.stateHash());
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(105), quantity: 20 * LOT });
  const sweep = { seq: h.seq + 1, ts: h.ts + 1, cmd: { type: 'place_order', account: 30, market: 'BTC-USDT', side: 'buy', orderType: 'limit', price: usdt(105), quantity: LOT } } as const;
  restored.apply({ seq: h.seq, ts: h.ts, cmd: { type: 'place_order', account: 10, market: 'BTC-USDT', side: 'sell', orderType: 'limit', price: usdt(105), quantity: 20 * LOT } });
  const live = ofType(h.engine.apply(sweep), 'order_triggered').map((t) => t.orderId);
  assert.deepEqual(live, [b, d, e, a, c]);
  assert.deepEqual(ofType(restored.apply(sweep), 'order_triggered').map((t) => t.orderId), live);
  assert.equal(restored.stateHash(), h.engine.stateHash());
});

test('a stop-limit sell triggers when the price falls to its stop and then rests at its limit', () => {
  const h = withMarket();
  h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(100), quantity: LOT });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  const stop = h.place({ account: 10, side: 'sell', orderType: 'stop_limit', stopPrice: usdt(95), price: usdt(94), quantity: LOT });
  assert.equal(h.engine.balance(10, 'BTC').reserved, LOT, 'the stop holds its base from entry');
  h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(95), quantity: LOT });
  const { events } = h.place({ account: 30, side: 'sell', orderType: 'limit', price: usdt(95), quantity: LOT });
  assert.deepEqual(ofType(events, 'order_triggered').map((e) => e.orderId), [stop.id]);
  assert.equal(h.engine.openOrder(stop.id)?.status, 'NEW');
  assert.deepEqual(h.engine.book('BTC-USDT').asks[0], { price: usdt(94), quantity: LOT, orders: 1 });
});

test('take-profit orders trigger in the direction of profit', () => {
  const h = withMarket();
  h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(100), quantity: LOT });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  const sellTp = h.place({ account: 10, side: 'sell', orderType: 'take_profit', stopPrice: usdt(110), quantity: LOT });
  const buyTp = h.place({ account: 20, side: 'buy', orderType: 'take_profit_limit', stopPrice: usdt(90), price: usdt(90), quantity: LOT });
  h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(110), quantity: 2 * LOT });
  const up = h.place({ account: 30, side: 'sell', orderType: 'limit', price: usdt(110), quantity: LOT });
  assert.deepEqual(ofType(up.events, 'order_triggered').map((e) => e.orderId), [sellTp.id]);
  assert.equal(ofType(up.events, 'trade').at(-1)?.takerOrderId, sellTp.id);
  assert.ok(h.engine.openOrder(buyTp.id));
  h.place({ account: 30, side: 'sell', orderType: 'limit', price: usdt(90), quantity: 2 * LOT });
  const down = h.place({ account: 10, side: 'buy', orderType: 'limit', price: usdt(90), quantity: LOT });
  assert.deepEqual(ofType(down.events, 'order_triggered').map((e) => e.orderId), [buyTp.id]);
  assert.equal(ofType(down.events, 'trade').at(-1)?.takerOrderId, buyTp.id);
});

/** A trade at `price` between accounts 30 (buying) and 20 (selling); its events. */
function tradeAt(h: ReturnType<typeof withMarket>, price: number) {
  h.place({ account: 30, side: 'buy', orderType: 'limit', price: usdt(price), quantity: LOT });
  return h.place({ account: 20, side: 'sell', orderType: 'limit', price: usdt(price), quantity: LOT }).events;
}

test('a trailing sell stop follows the peak and fires after a drop of its callback rate', () => {
  const h = withMarket();
  const trade = (price: number) => tradeAt(h, price);
  trade(100);
  const trail = h.place({ account: 10, side: 'sell', orderType: 'trailing_stop', callbackBps: 500, quantity: LOT });
  trade(120); // peak 120 → fires at or below 114
  assert.equal(ofType(trade(115), 'order_triggered').length, 0);
  h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(110), quantity: LOT });
  const events = trade(114);
  assert.deepEqual(ofType(events, 'order_triggered').map((e) => e.orderId), [trail.id]);
  assert.equal(ofType(events, 'trade').at(-1)?.takerOrderId, trail.id);
});

test('a snapshot records each waiting trailing stop\'s extreme, and a restored engine fires the same stops', () => {
  const h = withMarket();
  const trade = (price: number) => tradeAt(h, price);
  trade(100);
  const sell = h.place({ account: 10, side: 'sell', orderType: 'trailing_stop', callbackBps: 1_000, quantity: LOT });
  const buy = h.place({ account: 10, side: 'buy', orderType: 'trailing_stop', callbackBps: 1_000, quantity: LOT });
  trade(105); // the sell's peak
  trade(97); // the buy's trough: it fires at 106.7 or above
  const snapshot = h.engine.snapshot();
  assert.deepEqual(snapshot.markets[0]!.trailing, [sell.id, buy.id]);
  const extreme = (id: number): number => snapshot.orders.find((row) => row[0] === id)![20];
  assert.deepEqual([extreme(sell.id), extreme(buy.id)], [usdt(105) / TICK, usdt(97) / TICK]);
  const restored = Engine.restore(snapshot);
  assert.equal(restored.stateHash(), h.engine.stateHash());
  const maker = { type: 'place_order', account: 20, market: 'BTC-USDT', side: 'sell', orderType: 'limit', price: usdt(107), quantity: 2 * LOT } as const;
  const taker = { type: 'place_order', account: 30, market: 'BTC-USDT', side: 'buy', orderType: 'limit', price: usdt(107), quantity: LOT } as const;
  const fired: number[][] = [];
  for (const engine of [h.engine, restored]) {
    engine.apply({ seq: h.seq + 1, ts: h.ts, cmd: maker });
    fired.push(ofType(engine.apply({ seq: h.seq + 2, ts: h.ts, cmd: taker }), 'order_triggered').map((e) => e.orderId));
  }
  assert.deepEqual(fired, [[buy.id], [buy.id]]);
  assert.equal(restored.stateHash(), h.engine.stateHash());
});

test('amending the quantity down keeps priority; a price change re-queues and may trade', () => {
  const h = withMarket();
  const a = h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: 3 * LOT });
  const b = h.place({ account: 30, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  const down = h.apply({ type: 'amend_order', account: 10, orderId: a.id, quantity: 2 * LOT });
  assert.equal(ofType(down, 'order_amended')[0]?.priorityKept, true);
  assert.equal(h.engine.balance(10, 'BTC').reserved, 2 * LOT);
  const up = h.apply({ type: 'amend_order', account: 30, orderId: b.id, quantity: 2 * LOT });
  assert.equal(ofType(up, 'order_amended')[0]?.priorityKept, false);
  const { events } = h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(100), quantity: LOT });
  assert.equal(ofType(events, 'trade')[0]?.makerOrderId, a.id, 'a kept its place ahead of b');
  const move = h.apply({ type: 'amend_order', account: 30, orderId: b.id, price: usdt(99) });
  assert.ok(ofType(move, 'order_amended')[0]);
  const buy = h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(99), quantity: LOT });
  assert.equal(ofType(buy.events, 'trade')[0]?.makerOrderId, b.id);
});

test('cancels by id, by client order id, all of an account, and all of a market', () => {
  const h = withMarket();
  const a = h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(101), quantity: LOT, clientOrderId: 'mine-1' });
  assert.equal(ofType(h.apply({ type: 'cancel_order', account: 10, orderId: a.id }), 'order_cancelled')[0]?.reason, 'USER');
  assert.equal(ofType(h.apply({ type: 'cancel_order', account: 10, clientOrderId: 'mine-1' }), 'order_cancelled').length, 1);
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  h.place({ account: 10, side: 'sell', orderType: 'stop_market', stopPrice: usdt(50), quantity: LOT });
  h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(90), quantity: LOT });
  assert.equal(ofType(h.apply({ type: 'cancel_all', account: 10 }), 'order_cancelled').length, 2);
  assert.equal(h.engine.balance(10, 'BTC').reserved, 0);
  const operator = ofType(h.apply({ type: 'cancel_market', market: 'BTC-USDT' }), 'order_cancelled');
  assert.deepEqual(operator.map((e) => [e.account, e.reason]), [[20, 'OPERATOR']]);
});

test('a client order id is unique among open orders and free again once the order closes', () => {
  const h = withMarket();
  h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT, clientOrderId: 'x' });
  const dup = h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT, clientOrderId: 'x' });
  assert.equal(ofType(dup.events, 'order_rejected')[0]?.reason, 'DUPLICATE_CLIENT_ORDER_ID');
  const other = h.place({ account: 20, side: 'buy', orderType: 'limit', price: usdt(90), quantity: LOT, clientOrderId: 'x' });
  assert.equal(ofType(other.events, 'order_accepted').length, 1, 'another account may use the same id');
  h.apply({ type: 'cancel_order', account: 10, clientOrderId: 'x' });
  const again = h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT, clientOrderId: 'x' });
  assert.equal(ofType(again.events, 'order_accepted').length, 1);
});

test('one user cannot cancel or amend another user\'s order', () => {
  const h = withMarket();
  const a = h.place({ account: 10, side: 'sell', orderType: 'limit', price: usdt(100), quantity: LOT });
  const events = h.apply({ type: 'cancel_order', account: 20, orderId: a.id });
  assert.equal(ofType(events, 'command_rejected')[0]?.reason, 'UNKNOWN_ORDER');
  assert.equal(ofType(h.apply({ type: 'amend_order', account: 20, orderId: a.id, quantity: LOT * 2 }), 'command_rejected')[0]?.reason, 'UNKNOWN_ORDER');
  assert.ok(h.engine.openOrder(a.id));
});
