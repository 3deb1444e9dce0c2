import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Engine, findTradeViolations, findViolations } from '../src/core/index.js';
import type { EngineEvent } from '../src/core/index.js';
import { OpenOrderTimes } from '../src/store/open-order-times.js';
import { NaiveEngine } from './reference/naive-engine.js';
import { concretize, genesis, MODEL_ACCOUNTS, MODEL_MARKET, MODEL_T0, templateArbitrary } from './support/model-workload.js';

const RUNS = Number(process.env.MODEL_RUNS ?? 1_000);
const byNumber = (a: number, b: number): number => a - b;

function normalise(events: EngineEvent[]): unknown[] {
  return events.map((e) => (e.type === 'command_rejected' || e.type === 'order_rejected' ? { ...e, message: '' } : e));
}

test(`the engine matches the naive reference engine on ${RUNS} random command sequences, and the open-order times follow its open orders`, () => {
  let commands = 0;
  let trades = 0;
  let rejections = 0;
  let limited = 0;
  let switchCancels = 0;
  let disconnectCancels = 0;
  let collared = 0;
  let debits = 0;
  fc.assert(
    fc.property(fc.array(templateArbitrary, { minLength: 1, maxLength: 150, size: 'max' }), (templates) => {
      const engine = new Engine();
      const naive = new NaiveEngine(MODEL_MARKET);
      const times = new OpenOrderTimes();
      for (const [account, user] of MODEL_ACCOUNTS) naive.addAccount(account, user);
      let seq = 0;
      let ts = MODEL_T0;
      for (const cmd of genesis()) {
        seq += 1;
        const events = engine.apply({ seq, ts, cmd });
        assert.ok(!events.some((e) => e.type === 'command_rejected'), JSON.stringify(events));
        if (cmd.type === 'deposit') naive.apply({ seq, ts, cmd });
      }
      for (const template of templates) {
        seq += 1;
        ts += template.advanceMs;
        const cmd = concretize(template, engine, ts);
        const envelope = { seq, ts, cmd };
        const expected = naive.apply(envelope);
        const actual = engine.apply(envelope);
        const where = `at seq ${seq}: ${JSON.stringify(cmd)}`;
        assert.deepEqual(normalise(actual), normalise(expected), `events differ ${where}`);
        assert.deepEqual(findViolations(engine), [], `invariants ${where}`);
        assert.deepEqual(findTradeViolations(engine, actual), [], `trades ${where}`);
        times.apply(ts, actual);
        assert.deepEqual([...times.ids()].sort(byNumber), [...engine.orders.keys()].sort(byNumber), `open-order times follow the open orders ${where}`);
        const book = engine.book(MODEL_MARKET.id);
        assert.deepEqual(book.bids, naive.levels('buy'), `bids differ ${where}`);
        assert.deepEqual(book.asks, naive.levels('sell'), `asks differ ${where}`);
        for (const account of [-1, -2, ...MODEL_ACCOUNTS.map(([a]) => a)]) {
          for (const asset of ['BASE', 'QUOTE']) {
            const b = naive.balances.get(`${account}|${asset}`) ?? { available: 0n, reserved: 0n, locked: 0n };
            assert.deepEqual(engine.balance(account, asset), { asset, available: Number(b.available), reserved: Number(b.reserved), locked: Number(b.locked) }, `balance ${account} ${asset} ${where}`);
          }
        }
        commands += 1;
        trades += actual.filter((e) => e.type === 'trade').length;
        rejections += actual.filter((e) => e.type === 'order_rejected' || e.type === 'command_rejected').length;
        limited += actual.filter((e) => e.type === 'order_rejected' && e.reason === 'TOO_MANY_OPEN_ORDERS').length;
        switchCancels += actual.filter((e) => e.type === 'order_cancelled' && e.reason === 'CANCEL_AFTER').length;
        disconnectCancels += actual.filter((e) => e.type === 'order_cancelled' && e.reason === 'DISCONNECT').length;
        collared += actual.filter((e) => e.type === 'order_expired' && e.reason === 'PRICE_COLLAR').length;
        debits += actual.filter((e) => e.type === 'debited').length;
      }
    }),
    { numRuns: RUNS, includeErrorInReport: true },
  );
  console.log(`model test: ${commands} commands, ${trades} trades, ${rejections} rejections (${limited} at the open-order limit), ${switchCancels} orders cancelled by a dead man's switch, ${disconnectCancels} on disconnect, ${collared} market orders stopped at the collar, ${debits} debits`);
  // The workload must actually exercise matching and the rejection paths.
  assert.ok(trades > commands / 20, `only ${trades} trades in ${commands} commands`);
  assert.ok(rejections > commands / 50, `only ${rejections} rejections in ${commands} commands`);
  assert.ok(limited > commands / 1_000, `only ${limited} orders refused at the open-order limit in ${commands} commands`);
  assert.ok(switchCancels > commands / 1_000, `only ${switchCancels} orders cancelled by a dead man's switch in ${commands} commands`);
  assert.ok(disconnectCancels > commands / 1_000, `only ${disconnectCancels} orders cancelled on disconnect in ${commands} commands`);
  assert.ok(collared > commands / 1_000, `only ${collared} market orders stopped at the collar in ${commands} commands`);
  assert.ok(debits > commands / 1_000, `only ${debits} debits applied in ${commands} commands`);
});
