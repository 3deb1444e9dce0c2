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

interface OpenApiOperation { requestBody?: { content?: { 'application/json'?: { schema?: { properties?: Record<string, unknown> } } } }; parameters?: { in: string; name: string }[] }

test('every route of the OpenAPI document, fed its own field names with values of every kind, never answers 5xx', async () => {
  const venue = await Venue.start({ server: { keyWeightPerSecond: 1_000_000, ipWeightPerSecond: 1_000_000 }, auth: { failuresBeforeLockout: 1_000_000 } });
  try {
    const trader = await venue.trader('routes@example.com', { USDT: '100000', BTC: '2' }, ['read', 'trade', 'withdraw'], ['127.0.0.1']);
    const document = (await call(venue.url, 'GET', '/openapi.json')).body as { paths: Record<string, Record<string, OpenApiOperation>> };
    const scalar = fc.oneof(
      fc.string({ maxLength: 12 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
      fc.constantFrom('__proto__', 'toString', 'BTC', 'USDT', 'BTC-USDT', '1', '0', '-1', '1.5', '0.0100', '30000.00', '9'.repeat(30), '１２',
        'buy', 'limit', 'halted', 'read', 'routes@example.com', 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq', 'DE89370400440532013000', '1m'),
    );
    const value = fc.oneof({ weight: 5, arbitrary: scalar }, fc.array(scalar, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), scalar, { maxKeys: 3 }));
    const pathValue = fc.constantFrom('1', '2', 'BTC-USDT', 'abc', '99999999999', '%00', '__proto__', 'toString', '-1', trader.key);
    let requests = 0;
    for (const [template, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const fields = Object.keys(operation.requestBody?.content?.['application/json']?.schema?.properties ?? {});
        const queryNames = (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
        const body = fields.length > 0 ? fc.dictionary(fc.constantFrom(...fields, 'junk'), value, { maxKeys: fields.length + 1 }) : fc.option(fc.dictionary(fc.string({ maxLength: 4 }), scalar, { maxKeys: 2 }), { nil: undefined });
        const query = queryNames.length > 0 ? fc.dictionary(fc.constantFrom(...queryNames), fc.constantFrom('1', '-1', 'abc', '', '99999999999999999', 'BTC-USDT', '__proto__', '1m', 'all'), { maxKeys: queryNames.length }) : fc.constant({});
        const path = fc.array(pathValue, { minLength: 4, maxLength: 4 }).map((values) => template.replace(/\{[^}]+\}/g, () => values.pop()!));
        await fc.assert(
          fc.asyncProperty(path, body, query, fc.constantFrom('signed', 'admin', 'anonymous'), async (url, payload, search, who) => {
            const queryString = new URLSearchParams(search).toString();
            const target = `${url}${queryString === '' ? '' : `?${queryString}`}`;
            const verb = method.toUpperCase();
            const response = await call(venue.url, verb, target, {
              body: verb === 'GET' || verb === 'DELETE' ? undefined : payload,
              credentials: who === 'signed' ? trader : undefined,
              headers: who === 'admin' ? { authorization: `Bearer ${venue.exchange.adminToken}` } : {},
            });
            requests += 1;
            assert.ok(response.status < 500, `${verb} ${target} (${who}) ${JSON.stringify(payload)} → ${response.status} ${JSON.stringify(response.body)}`);
          }),
          { numRuns: 30 },
        );
      }
    }
    assert.ok(requests > 60 * 30, `every route was fuzzed (${requests} requests)`);
    venue.exchange.engine.checkInvariants();
  } finally {
    await venue.stop();
  }
});
