import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from './support/api-client.js';
import { Venue } from './support/venue.js';
import { DemoMarketMaker } from '../src/demo/market-maker.js';
import type { MarketMakerOptions } from '../src/demo/market-maker.js';

/** A fresh venue with a demo market maker (not yet started) that collects what it reports. */
async function withMaker(options: MarketMakerOptions, body: (venue: Venue, maker: DemoMarketMaker, errors: unknown[]) => Promise<void>): Promise<void> {
  const venue = await Venue.start();
  const errors: unknown[] = [];
  const maker = new DemoMarketMaker(venue.exchange, (error) => errors.push(error), options);
  try {
    await body(venue, maker, errors);
  } finally {
    maker.stop();
    await venue.stop();
  }
}

test('the demo market maker keeps every demo book quoted and the tape moving', () => withMaker({ intervalMs: 50, requoteEvery: 5, levels: 4, takeProbability: 1 }, async (venue, maker, errors) => {
  await maker.start();
  const markets = ['BTC-USDT', 'ETH-USDT', 'ETH-BTC', 'BTC-EUR'];
  // Until every market has traded (a few ticks; a deadline rather than a fixed wait, for slow hosts).
  const deadline = Date.now() + 10_000;
  const traded = async (market: string): Promise<boolean> => (await call(venue.url, 'GET', `/api/v1/markets/${market}/trades`)).body.trades.length > 0;
  while (Date.now() < deadline && !(await Promise.all(markets.map(traded))).every(Boolean)) await new Promise((r) => setTimeout(r, 100));
  maker.stop();
  for (const market of markets) {
    const depth = await call(venue.url, 'GET', `/api/v1/markets/${market}/depth`);
    assert.ok(depth.body.bids.length >= 1 && depth.body.asks.length >= 1, `${market} is quoted: ${JSON.stringify(depth.body)}`);
    assert.ok(Number(depth.body.bids[0][0]) < Number(depth.body.asks[0][0]), `${market} is not crossed`);
    const trades = await call(venue.url, 'GET', `/api/v1/markets/${market}/trades`);
    assert.ok(trades.body.trades.length > 0, `${market} trades`);
  }
  venue.exchange.engine.checkInvariants();
  assert.deepEqual(errors, []);
}));

test('the demo book is deep enough for a newcomer: a 1,000 USDT market buy on BTC-USDT fills in full without emptying the asks', () => withMaker({ intervalMs: 60_000, requoteEvery: 5, levels: 6, takeProbability: 0 }, async (venue, maker, errors) => {
  await maker.start();
  maker.stop();
  const depth = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/depth');
  const askNotional = depth.body.asks.reduce((sum: number, [price, quantity]: [string, string]) => sum + Number(price) * Number(quantity), 0);
  assert.ok(askNotional > 20_000, `asks worth ${askNotional} USDT`);
  const newcomer = await venue.trader('newcomer@example.com', { USDT: '5000' });
  const bought = await venue.signed(newcomer, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'market', quote_quantity: '1000' });
  assert.equal(bought.status, 201, JSON.stringify(bought.body));
  assert.equal(bought.body.status, 'FILLED', JSON.stringify(bought.body));
  const after = await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/depth');
  assert.ok(after.body.asks.length > 0, 'asks remain');
  assert.deepEqual(errors, []);
}));

test('a demo market maker that cannot set up its traders says why and leaves the exchange serving', () => withMaker({ intervalMs: 50, requoteEvery: 5, levels: 4, takeProbability: 1 }, async (venue, maker, errors) => {
  // What a full disk does to the journal, without one: the sequencer takes no more commands.
  venue.exchange.sequencer.halt(new Error('test: the journal failed'));
  await maker.start();
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /not accepting commands: test: the journal failed/);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(errors.length, 1, 'it did not start quoting');
  const health = await call(venue.url, 'GET', '/health');
  assert.equal(health.status, 503);
  assert.equal((await call(venue.url, 'GET', '/api/v1/markets')).status, 200, 'reads still answer');
}));

test('between re-quotes the taker trades against the standing ladder and the maker sends no new quotes (each ladder is journaled for good)', () => withMaker({ intervalMs: 40, requoteEvery: 1_000, levels: 4, takeProbability: 1 }, async (venue, maker, errors) => {
  await maker.start();
  const makerAccount = venue.exchange.identity.userByEmail('market-maker@demo.bourse')!.account;
  const ladder = new Set(venue.exchange.engine.openOrdersOf(makerAccount, { limit: 1_000 }).map((o) => o.orderId));
  // Up to four levels a side on four markets: the taker's first orders may have filled some.
  assert.ok(ladder.size > 0 && ladder.size <= 4 * 2 * 4, `the first ladder: ${ladder.size} orders open`);
  const tape = async (): Promise<number> => (await call(venue.url, 'GET', '/api/v1/markets/BTC-USDT/trades')).body.trades.length;
  const tradedAtStart = await tape();
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await tape()) < tradedAtStart + 3) await new Promise((r) => setTimeout(r, 40));
  maker.stop();
  assert.ok((await tape()) >= tradedAtStart + 3, 'the taker kept trading');
  const after = venue.exchange.engine.openOrdersOf(makerAccount, { limit: 1_000 });
  assert.ok(after.length > 0 && after.every((o) => ladder.has(o.orderId)), 'only the first ladder\'s orders are open: nothing was quoted anew');
  assert.deepEqual(errors, []);
}));
