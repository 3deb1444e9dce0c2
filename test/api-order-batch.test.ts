import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Credentials } from './support/api-client.js';
import { Venue } from './support/venue.js';

type Trader = Credentials & { account: number };

let venue: Venue;
let maker: Trader;
let other: Trader;

before(async () => {
  // A key budget of 30 a second: one batch of 20 fits, a second at once does not.
  venue = await Venue.start({ server: { keyWeightPerSecond: 30, ipWeightPerSecond: 10_000 } });
  maker = await venue.trader('batch-maker@example.com', { USDT: '1000' });
  other = await venue.trader('batch-other@example.com', { USDT: '1000' });
});

after(async () => {
  await venue.stop();
});

const bid = (price: string, extra: Record<string, unknown> = {}) => ({ market: 'BTC-USDT', side: 'buy', type: 'limit', price, quantity: '0.0010', ...extra });
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a batch places each order on its own and answers each outcome in the order sent: good ones rest, refused ones say why, nothing else changes', async () => {
  const batch = await venue.signed(maker, 'POST', '/api/v1/orders/batch', {
    orders: [
      bid('20000.00', { client_order_id: 'ladder-1' }),
      bid('20000.005'),
      bid('19000.00', { quantity: '100.0000' }),
      bid('18000.00', { client_order_id: 'ladder-1' }),
      bid('18000.00', { account: other.account }),
      bid('17000.00', { client_order_id: 'ladder-2' }),
    ],
  });
  assert.equal(batch.status, 200, JSON.stringify(batch.body));
  const outcomes: { id?: string; status?: string; client_order_id?: string; error?: { code: string; message: string } }[] = batch.body.orders;
  assert.deepEqual(outcomes.map((o) => o.error?.code ?? o.status), ['NEW', 'TICK_SIZE', 'INSUFFICIENT_BALANCE', 'DUPLICATE_CLIENT_ORDER_ID', 'ACCOUNT_NOT_ALLOWED', 'NEW']);
  assert.match(outcomes[1]!.error!.message, /tick size 0\.01 USDT/, 'worded as a refusal of a single order is');
  assert.ok(Number(outcomes[0]!.id) < Number(outcomes[5]!.id), 'placed in the order sent');
  const open = (await venue.signed(maker, 'GET', '/api/v1/orders?market=BTC-USDT')).body.orders.map((o: { client_order_id: string }) => o.client_order_id).sort();
  assert.deepEqual(open, ['ladder-1', 'ladder-2']);
  const usdt = (await venue.signed(maker, 'GET', '/api/v1/balances')).body.balances.find((b: { asset: string }) => b.asset === 'USDT');
  assert.deepEqual([usdt.available, usdt.reserved], ['963.000000', '37.000000'], 'only the two placed orders reserve funds');
  assert.equal((await venue.signed(other, 'GET', '/api/v1/orders')).body.orders.length, 0, 'nothing placed in the other user\'s account');
  await venue.signed(maker, 'DELETE', '/api/v1/orders');
  await pause(1_100);
});

test('a batch with one malformed order, too many orders or none is refused whole, and nothing is placed', async () => {
  for (const orders of [[bid('20000.00'), { ...bid('20000.00'), side: 'long' }], Array.from({ length: 21 }, () => bid('20000.00')), []]) {
    const refused = await venue.signed(maker, 'POST', '/api/v1/orders/batch', { orders });
    assert.deepEqual([refused.status, refused.body.error.code], [400, 'INVALID_REQUEST'], JSON.stringify(refused.body));
  }
  assert.equal((await venue.signed(maker, 'POST', '/api/v1/orders/batch', { orders: [bid('20000.00')], extra: 1 })).status, 400);
  assert.equal((await venue.signed(maker, 'GET', '/api/v1/orders')).body.orders.length, 0);
  await pause(1_100);
});

test('each order of a batch weighs as much as one sent alone: a second full batch within the second is refused with 429 before any of it is placed', async () => {
  const full = Array.from({ length: 20 }, (_, i) => bid(`${15000 + i}.00`));
  const first = await venue.signed(maker, 'POST', '/api/v1/orders/batch', { orders: full });
  assert.equal(first.status, 200);
  assert.ok(first.body.orders.every((o: { status?: string }) => o.status === 'NEW'));
  const second = await venue.signed(maker, 'POST', '/api/v1/orders/batch', { orders: full });
  assert.deepEqual([second.status, second.body.error.code], [429, 'RATE_LIMITED']);
  assert.ok(Number(second.headers.get('retry-after')) >= 1);
  await pause(1_100);
  assert.equal((await venue.signed(maker, 'GET', '/api/v1/orders?limit=500')).body.orders.length, 20, 'the refused batch placed nothing');
  await venue.signed(maker, 'DELETE', '/api/v1/orders');
  await pause(1_100);
});

test('a cancel batch cancels by order id, or by client order id within one account, answering each outcome in order; another user\'s orders stay', async () => {
  const placed = (await venue.signed(maker, 'POST', '/api/v1/orders/batch', {
    orders: [bid('14000.00', { client_order_id: 'q-1' }), bid('14001.00', { client_order_id: 'q-2' }), bid('14002.00', { client_order_id: 'q-3' })],
  })).body.orders as { id: string }[];
  const foreign = (await venue.signed(other, 'POST', '/api/v1/orders', bid('14003.00'))).body.id as string;

  const byId = await venue.signed(maker, 'POST', '/api/v1/orders/cancel-batch', { order_ids: [placed[0]!.id, foreign, placed[0]!.id, '99999999'] });
  assert.equal(byId.status, 200, JSON.stringify(byId.body));
  assert.deepEqual(byId.body.orders.map((o: { status?: string; error?: { code: string } }) => o.error?.code ?? o.status), ['CANCELLED', 'UNKNOWN_ORDER', 'UNKNOWN_ORDER', 'UNKNOWN_ORDER']);
  assert.equal((await venue.signed(other, 'GET', `/api/v1/orders/${foreign}`)).body.status, 'NEW', 'another user\'s order stays');

  const byClientId = await venue.signed(maker, 'POST', '/api/v1/orders/cancel-batch', { client_order_ids: ['q-3', 'q-2', 'q-1'] });
  assert.deepEqual(byClientId.body.orders.map((o: { client_order_id?: string; error?: { code: string } }) => o.error?.code ?? o.client_order_id), ['q-3', 'q-2', 'UNKNOWN_ORDER']);
  assert.equal((await venue.signed(maker, 'GET', '/api/v1/orders')).body.orders.length, 0);

  for (const body of [{}, { order_ids: ['1'], client_order_ids: ['q-1'] }, { client_order_ids: ['q 1'] }]) {
    assert.equal((await venue.signed(maker, 'POST', '/api/v1/orders/cancel-batch', body)).status, 400, JSON.stringify(body));
  }
  const elsewhere = await venue.signed(maker, 'POST', '/api/v1/orders/cancel-batch', { client_order_ids: ['q-1'], account: other.account });
  assert.deepEqual([elsewhere.status, elsewhere.body.error.code], [403, 'ACCOUNT_NOT_ALLOWED']);
});
