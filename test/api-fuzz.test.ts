import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { call } from './support/api-client.js';
import { Venue } from './support/venue.js';

const PATHS = ['/api/v1/orders', '/api/v1/orders/1', '/api/v1/markets/BTC-USDT/depth', '/api/v1/markets/BTC-USDT/candles', '/api/v1/ledger', '/api/v1/trades', '/api/v1/auth/login', '/admin/v1/users', '/api/v1/tickers'];

const jsonValue = fc.oneof(
  fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
  fc.constantFrom('1e5', 'NaN', 'Infinity', '-1', '0.000000000001', ' 1', '１２３', '9'.repeat(60), 'BTC-USDT', 'buy', 'limit', 'GTC'),
);
const orderish = fc.dictionary(
  fc.constantFrom('market', 'side', 'type', 'price', 'quantity', 'quote_quantity', 'stop_price', 'callback_rate', 'time_in_force', 'expire_time', 'post_only', 'stp', 'client_order_id', 'junk'),
  jsonValue,
);

test('schema-valid and mutated requests never get a 5xx and never break the ledger', async () => {
  const venue = await Venue.start();
  try {
    const trader = await venue.trader('fuzz@example.com', { USDT: '100000', BTC: '1' });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE'), fc.constantFrom(...PATHS),
        fc.oneof(orderish.map((o) => JSON.stringify(o)), fc.string({ maxLength: 200, size: 'max' }), fc.constant('{"a":'), fc.json()),
        fc.constantFrom('?limit=5', '?limit=-1', '?limit=99999', '?market=%00', '?interval=7m', '', '?before=abc'),
        fc.boolean(),
        async (method, path, body, query, signed) => {
          const response = await call(venue.url, method, `${path}${query}`, {
            rawBody: method === 'GET' || method === 'DELETE' ? '' : body, credentials: signed ? trader : undefined,
          });
          assert.ok(response.status < 500, `${method} ${path}${query} ${body} → ${response.status} ${JSON.stringify(response.body)}`);
          if (response.status >= 400) assert.equal(typeof response.body.error.code, 'string');
        },
      ),
      { numRuns: 400 },
    );
    venue.exchange.engine.checkInvariants();
  } finally {
    await venue.stop();
  }
});
