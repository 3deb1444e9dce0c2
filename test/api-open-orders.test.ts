import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Venue } from './support/venue.js';
import { SocketClient } from './support/ws-client.js';
import type { ApiResponse } from './support/api-client.js';

const PROJECTION_DELAY_MS = 1_000;
const order = (extra: Record<string, unknown> = {}) => ({ market: 'BTC-USDT', side: 'buy', type: 'limit', price: '31000.00', quantity: '0.0100', ...extra });

function ok(response: ApiResponse, status = 200): ApiResponse['body'] {
  assert.equal(response.status, status, JSON.stringify(response.body));
  return response.body;
}

/** An order as GET /orders/:id shows it once the read model has it, without its fills. */
async function stored(venue: Venue, credentials: Parameters<Venue['signed']>[0], id: string): Promise<Record<string, unknown>> {
  const { fills: _fills, ...rest } = ok(await venue.signed(credentials, 'GET', `/api/v1/orders/${id}`)) as Record<string, unknown>;
  return rest;
}

test('open orders and cancels are answered from the engine at once, though the read model lags a second, and agree with what it shows later', async () => {
  const venue = await Venue.start({ projectionDelayMs: PROJECTION_DELAY_MS });
  try {
    const alice = await venue.trader('open-alice@example.com', { USDT: '100000' });
    const bob = await venue.trader('open-bob@example.com', { BTC: '1' });
    const partial = ok(await venue.signed(alice, 'POST', '/api/v1/orders', order({ client_order_id: 'partial' })), 201);
    ok(await venue.signed(bob, 'POST', '/api/v1/orders', order({ side: 'sell', quantity: '0.0040' })), 201);
    const stop = ok(await venue.signed(alice, 'POST', '/api/v1/orders', order({ type: 'stop_limit', stop_price: '35000.00', price: '35100.00' })), 201);
    const resting = ok(await venue.signed(alice, 'POST', '/api/v1/orders', order({ price: '29000.00' })), 201);

    const started = performance.now();
    const amended = ok(await venue.signed(alice, 'PATCH', `/api/v1/orders/${partial.id}`, { quantity: '0.0080' }));
    assert.deepEqual([amended.status, amended.quantity, amended.filled_quantity, amended.remaining_quantity], ['PARTIALLY_FILLED', '0.00800000', '0.00400000', '0.00400000']);
    assert.equal(amended.created_at, partial.created_at);
    const listed = ok(await venue.signed(alice, 'GET', '/api/v1/orders')).orders as Record<string, unknown>[];
    assert.deepEqual(listed.map((o) => o.id), [resting.id, stop.id, partial.id]);
    assert.deepEqual(listed[2], amended, 'the listing shows the amended order as the amendment answered it');
    assert.deepEqual(listed[0], resting, 'and an untouched order as its placement answered it');
    const byClientId = ok(await venue.signed(alice, 'GET', '/api/v1/orders?client_order_id=partial')).orders;
    assert.deepEqual(byClientId, [amended]);
    assert.deepEqual(ok(await venue.signed(alice, 'GET', `/api/v1/orders/${resting.id}`)), { ...resting, fills: [] }, 'an open order nothing filled has no fills to wait for');

    const cancelled = ok(await venue.signed(alice, 'DELETE', `/api/v1/orders/${partial.id}`));
    const rest = ok(await venue.signed(alice, 'DELETE', '/api/v1/orders?market=BTC-USDT')).cancelled as Record<string, unknown>[];
    const elapsed = performance.now() - started;
    assert.ok(elapsed < PROJECTION_DELAY_MS, `amend, listings and cancels took ${elapsed.toFixed(0)} ms: they waited for the read model`);
    assert.deepEqual(
      [cancelled.status, cancelled.reason, cancelled.quantity, cancelled.filled_quantity, cancelled.remaining_quantity, cancelled.average_price, cancelled.created_at],
      ['CANCELLED', 'USER', '0.00800000', '0.00400000', '0.00000000', '31000.000000', partial.created_at],
    );
    assert.deepEqual(rest.map((o) => [o.id, o.status, o.created_at]), [[stop.id, 'CANCELLED', stop.created_at], [resting.id, 'CANCELLED', resting.created_at]]);

    // The read model, once caught up, holds exactly what the cancels answered.
    assert.deepEqual(await stored(venue, alice, partial.id), cancelled);
    for (const answer of rest) assert.deepEqual(await stored(venue, alice, answer.id as string), answer);
    assert.deepEqual(ok(await venue.signed(alice, 'GET', '/api/v1/orders?client_order_id=partial')).orders, [cancelled], 'found by client id once closed');
    assert.deepEqual(ok(await venue.signed(alice, 'GET', '/api/v1/orders?status=all')).orders, [rest[1], rest[0], cancelled], 'and in the history, newest first');

    const cancelledAgain = await venue.signed(alice, 'DELETE', `/api/v1/orders/${partial.id}`);
    assert.deepEqual([cancelledAgain.status, cancelledAgain.body.error.code], [404, 'UNKNOWN_ORDER'], 'a closed order cannot be cancelled again');
  } finally {
    await venue.stop();
  }
});

test('a cancel over the socket answers the order as it ended, as the read model later shows it', async () => {
  const venue = await Venue.start({ projectionDelayMs: PROJECTION_DELAY_MS });
  try {
    const carol = await venue.trader('open-carol@example.com', { USDT: '100000' });
    const placed = ok(await venue.signed(carol, 'POST', '/api/v1/orders', order({ client_order_id: 'by-socket' })), 201);
    const client = await SocketClient.connect(venue.url);
    try {
      await client.login(carol);
      const started = performance.now();
      client.send({ op: 'cancel', id: 'c1', order_id: placed.id });
      const answer = (await client.next((m) => m.event === 'cancelled' && m.id === 'c1')).order;
      assert.ok(performance.now() - started < PROJECTION_DELAY_MS, 'the socket cancel did not wait for the read model');
      assert.deepEqual([answer.status, answer.client_order_id, answer.created_at], ['CANCELLED', 'by-socket', placed.created_at]);
      assert.deepEqual(await stored(venue, carol, placed.id), answer);
    } finally {
      client.close();
    }
  } finally {
    await venue.stop();
  }
});

test('after a restart, open orders keep the times they had: created, filled into, triggered, amended', async () => {
  const first = await Venue.start();
  const dataDir = first.dataDir;
  const dave = await first.trader('open-dave@example.com', { USDT: '100000', BTC: '1' });
  const erin = await first.trader('open-erin@example.com', { USDT: '100000', BTC: '1' });
  const filledInto = ok(await first.signed(dave, 'POST', '/api/v1/orders', order()), 201);
  ok(await first.signed(erin, 'POST', '/api/v1/orders', order({ side: 'sell', quantity: '0.0030' })), 201);
  // A buy stop at 31,500 that, once triggered, rests as a bid at 31,400.
  const stop = ok(await first.signed(dave, 'POST', '/api/v1/orders', order({ type: 'stop_limit', stop_price: '31500.00', price: '31400.00' })), 201);
  ok(await first.signed(erin, 'POST', '/api/v1/orders', order({ side: 'sell', price: '31500.00', quantity: '0.0010' })), 201);
  await new Promise((r) => setTimeout(r, 5));
  ok(await first.signed(dave, 'POST', '/api/v1/orders', order({ type: 'market', price: undefined, quantity: '0.0010' })), 201);
  const amended = ok(await first.signed(dave, 'PATCH', `/api/v1/orders/${stop.id}`, { price: '31300.00' }));
  assert.equal(amended.status, 'NEW', 'the stop triggered and rests');
  const before = ok(await first.signed(dave, 'GET', '/api/v1/orders')).orders as Record<string, unknown>[];
  assert.deepEqual(before.map((o) => o.id), [stop.id, filledInto.id]);
  assert.ok((before[0]!.updated_at as number) > (stop.created_at as number), 'triggering and amending moved updated_at');
  await first.stop(true);

  const second = await Venue.start({ dataDir });
  try {
    const after = ok(await second.signed(dave, 'GET', '/api/v1/orders')).orders;
    assert.deepEqual(after, before);
    const cancelled = ok(await second.signed(dave, 'DELETE', `/api/v1/orders/${filledInto.id}`));
    assert.deepEqual([cancelled.status, cancelled.filled_quantity, cancelled.created_at], ['CANCELLED', '0.00300000', filledInto.created_at]);
  } finally {
    await second.stop();
  }
});
