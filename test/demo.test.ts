import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from './support/api-client.js';
import { Venue } from './support/venue.js';
import { DemoMarketMaker } from '../src/demo/market-maker.js';

test('the demo market maker keeps every demo book quoted and the tape moving', async () => {
  const venue = await Venue.start();
  const maker = new DemoMarketMaker(venue.exchange, { intervalMs: 50, levels: 4, takeProbability: 1 });
  try {
    await maker.start();
    await new Promise((r) => setTimeout(r, 400));
    maker.stop();
    for (const market of ['BTC-USDT', 'ETH-USDT', 'ETH-BTC', 'BTC-EUR']) {
      const depth = await call(venue.url, 'GET', `/api/v1/markets/${market}/depth`);
      assert.ok(depth.body.bids.length >= 1 && depth.body.asks.length >= 1, `${market} is quoted: ${JSON.stringify(depth.body)}`);
      assert.ok(Number(depth.body.bids[0][0]) < Number(depth.body.asks[0][0]), `${market} is not crossed`);
      const trades = await call(venue.url, 'GET', `/api/v1/markets/${market}/trades`);
      assert.ok(trades.body.trades.length > 0, `${market} trades`);
    }
    venue.exchange.engine.checkInvariants();
  } finally {
    maker.stop();
    await venue.stop();
  }
});
