/**
 * `npm run bench`: the engine, the nodejs-order-book baseline, the durable journal and recovery,
 * on seeded workloads. Prints a table, then one JSON object as the last line.
 *
 * Environment: BENCH_RUNS (default 3, medians reported), BENCH_OPS (default 1,000,000),
 * BENCH_SNAPSHOT_ORDERS (resting orders in the snapshot measured, default 100,000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OrderBook, SelfTradePreventionMode, Side } from 'nodejs-order-book';
import { encodeSnapshot, Engine, findViolations } from '../src/core/index.js';
import type { Command, EngineEvent, Envelope } from '../src/core/index.js';
import { packSnapshot, recover, Sequencer, SqliteJournal } from '../src/journal/index.js';
import { generateWorkload, KIND_CANCEL, KIND_LIMIT, KIND_MARKET } from './workload.js';
import type { BookSummary, Workload } from './workload.js';
import { median } from './stats.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const OPS = Number(process.env.BENCH_OPS ?? 1_000_000);
const SNAPSHOT_ORDERS = Number(process.env.BENCH_SNAPSHOT_ORDERS ?? 100_000);
const ACCOUNTS = 1_000;
const PREFILL = 2_000;
const TICK = 10_000; // 0.01 USDT at 6 decimals
const LOT = 10_000; // 0.0001 BTC at 8 decimals
const T0 = Date.UTC(2026, 0, 1);

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

function marketId(m: number): string {
  return m === 0 ? 'BTC-USDT' : `C${m}-USDT`;
}

function setupCommands(markets: number): Command[] {
  const commands: Command[] = [{ type: 'create_asset', code: 'USDT', precision: 6 }];
  for (let m = 0; m < markets; m++) {
    const base = marketId(m).split('-')[0]!;
    commands.push({ type: 'create_asset', code: base, precision: 8 });
    commands.push({ type: 'create_market', market: marketId(m), base, quote: 'USDT', tick: TICK, lot: LOT, makerFeePpm: 1_000, takerFeePpm: 2_000 });
  }
  for (let a = 1; a <= ACCOUNTS; a++) {
    commands.push({ type: 'create_user', user: a });
    commands.push({ type: 'create_account', account: a, user: a });
    commands.push({ type: 'deposit', account: a, asset: 'USDT', amount: 1_000_000 * 1_000_000, key: `u${a}` });
    for (let m = 0; m < markets; m++) {
      commands.push({ type: 'deposit', account: a, asset: marketId(m).split('-')[0]!, amount: 10_000 * 100_000_000, key: `b${a}-${m}` });
    }
  }
  return commands;
}

/** Envelopes for the workload; order ids are the seqs, offset by the setup commands. */
function envelopes(w: Workload, setupCount: number): Envelope[] {
  const out: Envelope[] = new Array(w.count);
  for (let i = 0; i < w.count; i++) {
    const seq = setupCount + i + 1;
    const ts = T0 + Math.floor(i / 100);
    const market = marketId(w.market[i]!);
    const side = w.side[i] === 0 ? 'buy' : 'sell';
    const account = w.account[i]!;
    let cmd: Command;
    switch (w.kind[i]) {
      case KIND_LIMIT:
        cmd = { type: 'place_order', account, market, side, orderType: 'limit', price: w.price[i]! * TICK, quantity: w.size[i]! * LOT };
        break;
      case KIND_CANCEL:
        cmd = { type: 'cancel_order', account, orderId: setupCount + w.target[i]! };
        break;
      case KIND_MARKET:
        cmd = { type: 'place_order', account, market, side, orderType: 'market', quantity: w.size[i]! * LOT };
        break;
      default:
        cmd = { type: 'place_order', account, market, side, orderType: 'stop_market', stopPrice: w.price[i]! * TICK, quantity: w.size[i]! * LOT };
    }
    out[i] = { seq, ts, cmd };
  }
  return out;
}

function freshEngine(setup: Command[]): Engine {
  const engine = new Engine();
  setup.forEach((cmd, i) => engine.apply({ seq: i + 1, ts: T0, cmd }));
  return engine;
}

interface EngineRun { opsPerSec: number; p50: number; p99: number; p999: number; rejected: number; fills: number; correct: boolean }

function summarize(engine: Engine, market: string): BookSummary {
  const book = engine.book(market);
  const sum = (levels: { quantity: number }[]): number => levels.reduce((s, l) => s + l.quantity / LOT, 0);
  return {
    resting: [...engine.orders.values()].filter((o) => o.market.id === market && o.level !== null).length,
    bidLevels: book.bids.length, askLevels: book.asks.length, bidVolume: sum(book.bids), askVolume: sum(book.asks),
    bestBid: (book.bids[0]?.price ?? 0) / TICK, bestAsk: (book.asks[0]?.price ?? 0) / TICK,
  };
}

function runEngine(w: Workload, setup: Command[], env: Envelope[], timed: boolean): EngineRun {
  const engine = freshEngine(setup);
  for (let i = 0; i < w.prefill; i++) engine.apply(env[i]!);
  let rejected = 0;
  let fills = 0;
  const latencies = timed ? new Float64Array(w.count - w.prefill) : null;
  gc();
  const started = process.hrtime.bigint();
  if (latencies === null) {
    for (let i = w.prefill; i < w.count; i++) {
      const events = engine.apply(env[i]!);
      const first = events[0]!;
      if (first.type === 'order_rejected' || first.type === 'command_rejected') rejected += 1;
    }
  } else {
    for (let i = w.prefill; i < w.count; i++) {
      const t0 = process.hrtime.bigint();
      const events = engine.apply(env[i]!);
      latencies[i - w.prefill] = Number(process.hrtime.bigint() - t0);
      for (let k = 0; k < events.length; k++) if (events[k]!.type === 'trade') fills += 1;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  let correct = findViolations(engine).length === 0;
  w.final.forEach((expected, m) => {
    if (JSON.stringify(summarize(engine, marketId(m))) !== JSON.stringify(expected)) correct = false;
  });
  let p50 = 0;
  let p99 = 0;
  let p999 = 0;
  if (latencies !== null) {
    latencies.sort();
    const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! / 1_000;
    p50 = at(0.5);
    p99 = at(0.99);
    p999 = at(0.999);
  }
  return { opsPerSec: (w.count - w.prefill) / seconds, p50, p99, p999, rejected, fills, correct };
}

function runBaseline(w: Workload): { opsPerSec: number; correct: boolean } {
  const book = new OrderBook();
  const apply = (i: number): void => {
    const side = w.side[i] === 0 ? Side.BUY : Side.SELL;
    const accountId = String(w.account[i]);
    switch (w.kind[i]) {
      case KIND_LIMIT:
        book.limit({ id: String(w.target[i]), side, size: w.size[i]!, price: w.price[i]!, accountId, stpMode: SelfTradePreventionMode.EXPIRE_TAKER });
        break;
      case KIND_CANCEL:
        book.cancel(String(w.target[i]));
        break;
      case KIND_MARKET:
        book.market({ side, size: w.size[i]!, accountId, stpMode: SelfTradePreventionMode.EXPIRE_TAKER });
        break;
    }
  };
  for (let i = 0; i < w.prefill; i++) apply(i);
  gc();
  const started = process.hrtime.bigint();
  for (let i = w.prefill; i < w.count; i++) apply(i);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const depth = book.depth() as unknown as [[number, number][], [number, number][]];
  const [asks, bids] = depth;
  const expected = w.final[0]!;
  const correct = asks.length === expected.askLevels && bids.length === expected.bidLevels
    && asks.reduce((s, l) => s + l[1], 0) === expected.askVolume && bids.reduce((s, l) => s + l[1], 0) === expected.bidVolume;
  return { opsPerSec: (w.count - w.prefill) / seconds, correct };
}

function runJournal(env: Envelope[], batch: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'bourse-bench-'));
  try {
    const journal = new SqliteJournal(join(dir, 'journal.db'));
    const commands = env.map((e, i) => ({ seq: i + 1, ts: e.ts, cmd: e.cmd }));
    gc();
    const started = process.hrtime.bigint();
    for (let i = 0; i < commands.length; i += batch) journal.append(commands.slice(i, i + batch));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    journal.close();
    return commands.length / seconds;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Journals setup + workload through the sequencer (journal + engine + acks), then recovers from genesis. */
async function runSequencerAndRecovery(setup: Command[], env: Envelope[]): Promise<{ commandsPerSec: number; recoverySecondsPerMillion: number; hashMatches: boolean }> {
  const dir = mkdtempSync(join(tmpdir(), 'bourse-bench-'));
  try {
    const path = join(dir, 'journal.db');
    let now = T0;
    const sequencer = Sequencer.open({ path, snapshotEvery: Number.MAX_SAFE_INTEGER, checkInvariantsEvery: 0, clock: () => now });
    await Promise.all(setup.map((cmd) => sequencer.submit(cmd)));
    gc();
    const started = process.hrtime.bigint();
    const window = 4_096;
    for (let i = 0; i < env.length; i += window) {
      now += 1;
      const pending: Promise<unknown>[] = [];
      for (let k = i; k < Math.min(env.length, i + window); k++) pending.push(sequencer.submit(env[k]!.cmd));
      await Promise.all(pending);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const liveHash = sequencer.engine.stateHash();
    const total = sequencer.lastSeq;
    sequencer.close();
    const journal = new SqliteJournal(path);
    gc();
    const recovered = recover(journal);
    journal.close();
    return {
      commandsPerSec: env.length / seconds,
      recoverySecondsPerMillion: recovered.report.seconds * (1_000_000 / total),
      hashMatches: recovered.engine.stateHash() === liveHash,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What a snapshot costs with SNAPSHOT_ORDERS resting orders: taking, encoding, hashing and
 * compressing the state (on the read-model thread, which holds a replica), and storing the packed
 * snapshot (on the journal writer, between two batches).
 */
function runSnapshot(setup: Command[], orders: number): { takeMs: number; storeMs: number; bytes: number } {
  const engine = freshEngine(setup);
  for (let i = 0; i < orders; i++) {
    engine.apply({ seq: setup.length + i + 1, ts: T0, cmd: { type: 'place_order', account: 1 + (i % ACCOUNTS), market: 'BTC-USDT', side: 'buy', orderType: 'limit', price: (1_000 + (i % 500)) * TICK, quantity: LOT } });
  }
  const dir = mkdtempSync(join(tmpdir(), 'bourse-bench-'));
  try {
    const journal = new SqliteJournal(join(dir, 'journal.db'));
    gc();
    const started = process.hrtime.bigint();
    const packed = packSnapshot(engine.lastSeq, engine.lastTs, encodeSnapshot(engine.snapshot()));
    const taken = process.hrtime.bigint();
    journal.writeSnapshot(packed, journal.lastChain);
    const stored = process.hrtime.bigint();
    journal.close();
    return { takeMs: Number(taken - started) / 1e6, storeMs: Number(stored - taken) / 1e6, bytes: packed.body.length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const TAKER_ORDERS = 200_000;

/**
 * A taker's flow: immediate-or-cancel limit orders that find nothing at their price (the book's
 * 2,000 resting orders are older and behind them), so each one opens and closes at once. No
 * order of this flow ever rests, which is what a bot sweeping with IOC orders looks like.
 */
function runTakerFlow(setup: Command[]): number {
  const engine = freshEngine(setup);
  let seq = setup.length;
  for (let i = 0; i < PREFILL; i++) {
    const buy = i % 2 === 0;
    engine.apply({ seq: ++seq, ts: T0, cmd: { type: 'place_order', account: 1 + (i % ACCOUNTS), market: 'BTC-USDT', side: buy ? 'buy' : 'sell', orderType: 'limit', price: (buy ? 900 - (i % 50) : 1_100 + (i % 50)) * TICK, quantity: LOT } });
  }
  gc();
  const started = process.hrtime.bigint();
  for (let i = 0; i < TAKER_ORDERS; i++) {
    const buy = i % 2 === 0;
    const events = engine.apply({ seq: ++seq, ts: T0, cmd: { type: 'place_order', account: 1 + (i % ACCOUNTS), market: 'BTC-USDT', side: buy ? 'buy' : 'sell', orderType: 'limit', timeInForce: 'IOC', price: (buy ? 1_000 : 1_001) * TICK, quantity: LOT } });
    if (events[1]?.type !== 'order_expired') throw new Error(`taker flow: order ${i} did not expire unfilled: ${JSON.stringify(events)}`);
  }
  return TAKER_ORDERS / (Number(process.hrtime.bigint() - started) / 1e9);
}

const WAITING_STOPS = 100_000;

/** Applies commands to an engine after its setup, numbered on from it, at T0. */
function commandsAfter(engine: Engine, setup: Command[]): (cmd: Command) => EngineEvent[] {
  let seq = setup.length;
  return (cmd) => engine.apply({ seq: ++seq, ts: T0, cmd });
}

/** A fresh engine whose market has traded once at 1,000 (so it has a last price), and its apply. */
function tradedMarket(setup: Command[]): (cmd: Command) => EngineEvent[] {
  const apply = commandsAfter(freshEngine(setup), setup);
  apply({ type: 'place_order', account: 1, market: 'BTC-USDT', side: 'sell', orderType: 'limit', price: 1_000 * TICK, quantity: LOT });
  apply({ type: 'place_order', account: 2, market: 'BTC-USDT', side: 'buy', orderType: 'limit', price: 1_000 * TICK, quantity: LOT });
  return apply;
}

/** Cancels every placed [order, account] in a scattered order; cancels a second. */
function cancelScattered(apply: (cmd: Command) => EngineEvent[], placed: [number, number][], what: string): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < placed.length; i++) {
    const [orderId, account] = placed[(i * 7_919) % placed.length]!;
    const events = apply({ type: 'cancel_order', account, orderId });
    if (events[0]?.type !== 'order_cancelled') throw new Error(`${what}: cancel of ${orderId} refused: ${JSON.stringify(events[0])}`);
  }
  return placed.length / (Number(process.hrtime.bigint() - started) / 1e9);
}

/**
 * A book of conditional orders: WAITING_STOPS stop-limit buys at 5,000 trigger prices above the
 * last price, then every one cancelled, in a scattered order. Adding and cancelling should not
 * grow with the number waiting.
 */
function runStopBook(setup: Command[]): { placePerSec: number; cancelPerSec: number } {
  const apply = tradedMarket(setup);
  const placed: [number, number][] = [];
  gc();
  const started = process.hrtime.bigint();
  for (let i = 0; i < WAITING_STOPS; i++) {
    const account = 1 + (i % ACCOUNTS);
    const trigger = 1_100 + ((i * 7_919) % 5_000);
    const events = apply({ type: 'place_order', account, market: 'BTC-USDT', side: 'buy', orderType: 'stop_limit', stopPrice: trigger * TICK, price: (trigger + 10) * TICK, quantity: LOT });
    if (events[0]?.type !== 'order_accepted') throw new Error(`stop book: order ${i} refused: ${JSON.stringify(events[0])}`);
    placed.push([events[0].orderId, account]);
  }
  const placeSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { placePerSec: WAITING_STOPS / placeSeconds, cancelPerSec: cancelScattered(apply, placed, 'stop book') };
}

const PRICE_LEVELS = 100_000;

/**
 * A deep book: PRICE_LEVELS sells each at its own price, placed and then cancelled in a scattered
 * order, so that most levels open and close away from the best price. The book keeps its prices in
 * a sorted array; this shows what that costs when there are many.
 */
function runLevelBook(setup: Command[]): { placePerSec: number; cancelPerSec: number } {
  const engine = freshEngine(setup);
  const apply = commandsAfter(engine, setup);
  const placed: [number, number][] = [];
  gc();
  const started = process.hrtime.bigint();
  for (let i = 0; i < PRICE_LEVELS; i++) {
    const account = 1 + (i % ACCOUNTS);
    const events = apply({ type: 'place_order', account, market: 'BTC-USDT', side: 'sell', orderType: 'limit', price: (2_000 + ((i * 7_919) % PRICE_LEVELS)) * TICK, quantity: LOT });
    if (events[0]?.type !== 'order_accepted' || events.some((e) => e.type === 'trade')) throw new Error(`level book: order ${i} did not rest: ${JSON.stringify(events)}`);
    placed.push([events[0].orderId, account]);
  }
  const placeSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (engine.book('BTC-USDT', PRICE_LEVELS).asks.length !== PRICE_LEVELS) throw new Error('level book: not one order per level');
  return { placePerSec: PRICE_LEVELS / placeSeconds, cancelPerSec: cancelScattered(apply, placed, 'level book') };
}

const WAITING_TRAILING = 10_000;
const TRAILING_TRADES = 20_000;

/**
 * Trailing stops waiting while the market trades: WAITING_TRAILING of them (half sells, half
 * buys, 50 % from the extreme, so none fires), then TRAILING_TRADES trades each made of a resting
 * sell and a buy that takes it, then every trailing stop cancelled in a scattered order. Each
 * trade moves every stop's extreme, which should not cost a walk over all of them.
 */
function runTrailingBook(setup: Command[]): { tradesPerSec: number; cancelPerSec: number } {
  const apply = tradedMarket(setup);
  const placed: [number, number][] = [];
  for (let i = 0; i < WAITING_TRAILING; i++) {
    const account = 1 + (i % ACCOUNTS);
    const events = apply({ type: 'place_order', account, market: 'BTC-USDT', side: i % 2 === 0 ? 'sell' : 'buy', orderType: 'trailing_stop', callbackBps: 5_000, quantity: LOT });
    if (events[0]?.type !== 'order_accepted') throw new Error(`trailing book: order ${i} refused: ${JSON.stringify(events[0])}`);
    placed.push([events[0].orderId, account]);
  }
  gc();
  const started = process.hrtime.bigint();
  for (let i = 0; i < TRAILING_TRADES; i++) {
    const price = (990 + ((i * 7) % 21)) * TICK;
    apply({ type: 'place_order', account: 1 + (i % ACCOUNTS), market: 'BTC-USDT', side: 'sell', orderType: 'limit', price, quantity: LOT });
    const events = apply({ type: 'place_order', account: 1 + ((i + 1) % ACCOUNTS), market: 'BTC-USDT', side: 'buy', orderType: 'limit', price, quantity: LOT });
    if (!events.some((e) => e.type === 'trade') || events.some((e) => e.type === 'order_triggered')) throw new Error(`trailing book: trade ${i} did not trade alone: ${JSON.stringify(events)}`);
  }
  const tradeSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { tradesPerSec: TRAILING_TRADES / tradeSeconds, cancelPerSec: cancelScattered(apply, placed, 'trailing book') };
}

function row(name: string, value: string, note = ''): void {
  console.log(`${name.padEnd(44)} ${value.padStart(16)}  ${note}`);
}

async function main(): Promise<void> {
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  console.log(`Bourse engine benchmark: ${OPS.toLocaleString('en-US')} operations after a ${PREFILL.toLocaleString('en-US')}-order prefill, ${ACCOUNTS} accounts, ${RUNS} runs (medians)`);
  console.log(`node ${process.version}, ${process.arch}`);
  const single = generateWorkload({ operations: OPS, prefill: PREFILL, accounts: ACCOUNTS, markets: 1, stopShare: 0, seed: 42 });
  const multi = generateWorkload({ operations: OPS, prefill: PREFILL, accounts: ACCOUNTS, markets: 10, stopShare: 0.02, seed: 43 });
  const singleSetup = setupCommands(1);
  const multiSetup = setupCommands(10);
  const singleEnv = envelopes(single, singleSetup.length);
  const multiEnv = envelopes(multi, multiSetup.length);
  const mix = { limit: 0, cancel: 0, market: 0 };
  for (let i = single.prefill; i < single.count; i++) {
    if (single.kind[i] === KIND_CANCEL) mix.cancel += 1;
    else if (single.kind[i] === KIND_MARKET) mix.market += 1;
    else mix.limit += 1;
  }
  console.log(`single-market mix: ${fmt(mix.limit)} limits (passive and crossing), ${fmt(mix.cancel)} cancels, ${fmt(mix.market)} market orders`);

  const engineTput: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  const p999: number[] = [];
  const baseline: number[] = [];
  const multiTput: number[] = [];
  const journalRate: number[] = [];
  const sequencerRate: number[] = [];
  const recovery: number[] = [];
  const snapshotTake: number[] = [];
  const snapshotStore: number[] = [];
  const takerTput: number[] = [];
  const stopPlace: number[] = [];
  const stopCancel: number[] = [];
  const trailingTrades: number[] = [];
  const levelPlace: number[] = [];
  const levelCancel: number[] = [];
  const trailingCancel: number[] = [];
  let snapshotBytes = 0;
  let correct = true;
  let baselineCorrect = true;
  let multiRejected = 0;
  let fills = 0;
  let hashMatches = true;
  for (let run = 0; run < RUNS; run++) {
    const t = runEngine(single, singleSetup, singleEnv, false);
    engineTput.push(t.opsPerSec);
    correct &&= t.correct && t.rejected === 0;
    const l = runEngine(single, singleSetup, singleEnv, true);
    p50.push(l.p50);
    p99.push(l.p99);
    p999.push(l.p999);
    fills = l.fills;
    const b = runBaseline(single);
    baseline.push(b.opsPerSec);
    baselineCorrect &&= b.correct;
    const m = runEngine(multi, multiSetup, multiEnv, false);
    multiTput.push(m.opsPerSec);
    multiRejected = m.rejected;
    journalRate.push(runJournal(singleEnv, 1_000));
    const s = await runSequencerAndRecovery(singleSetup, singleEnv);
    sequencerRate.push(s.commandsPerSec);
    recovery.push(s.recoverySecondsPerMillion);
    hashMatches &&= s.hashMatches;
    const snap = runSnapshot(singleSetup, SNAPSHOT_ORDERS);
    snapshotTake.push(snap.takeMs);
    snapshotStore.push(snap.storeMs);
    snapshotBytes = snap.bytes;
    takerTput.push(runTakerFlow(singleSetup));
    const stops = runStopBook(singleSetup);
    stopPlace.push(stops.placePerSec);
    stopCancel.push(stops.cancelPerSec);
    const trailing = runTrailingBook(singleSetup);
    trailingTrades.push(trailing.tradesPerSec);
    trailingCancel.push(trailing.cancelPerSec);
    const levels = runLevelBook(singleSetup);
    levelPlace.push(levels.placePerSec);
    levelCancel.push(levels.cancelPerSec);
    console.log(`run ${run + 1}: engine ${fmt(t.opsPerSec)} ops/s, IOC flow ${fmt(takerTput.at(-1)!)} ops/s, stops ${fmt(stops.placePerSec)} / ${fmt(stops.cancelPerSec)} ops/s, trailing ${fmt(trailing.tradesPerSec)} trades/s / ${fmt(trailing.cancelPerSec)} cancels/s, levels ${fmt(levels.placePerSec)} / ${fmt(levels.cancelPerSec)} ops/s, baseline ${fmt(b.opsPerSec)} ops/s, 10 markets ${fmt(m.opsPerSec)} ops/s, journal ${fmt(journalRate.at(-1)!)} cmds/s, sequencer ${fmt(s.commandsPerSec)} cmds/s, recovery ${s.recoverySecondsPerMillion.toFixed(2)} s/M, snapshot ${snap.takeMs.toFixed(0)} + ${snap.storeMs.toFixed(1)} ms`);
  }
  const result = {
    engine_ops_per_sec: Math.round(median(engineTput)),
    p50_us: Number(median(p50).toFixed(3)),
    p99_us: Number(median(p99).toFixed(3)),
    p999_us: Number(median(p999).toFixed(3)),
    baseline_ops_per_sec: Math.round(median(baseline)),
    ratio_vs_baseline: Number((median(engineTput) / median(baseline)).toFixed(1)),
    multi_market_ops_per_sec: Math.round(median(multiTput)),
    ioc_flow_ops_per_sec: Math.round(median(takerTput)),
    stop_place_ops_per_sec: Math.round(median(stopPlace)),
    stop_cancel_ops_per_sec: Math.round(median(stopCancel)),
    trailing_trades_per_sec: Math.round(median(trailingTrades)),
    trailing_cancel_ops_per_sec: Math.round(median(trailingCancel)),
    level_place_ops_per_sec: Math.round(median(levelPlace)),
    level_cancel_ops_per_sec: Math.round(median(levelCancel)),
    journal_commands_per_sec: Math.round(median(journalRate)),
    sequencer_commands_per_sec: Math.round(median(sequencerRate)),
    recovery_seconds_per_million: Number(median(recovery).toFixed(2)),
    snapshot_orders: SNAPSHOT_ORDERS,
    snapshot_take_ms: Number(median(snapshotTake).toFixed(1)),
    snapshot_store_ms: Number(median(snapshotStore).toFixed(1)),
    snapshot_bytes: snapshotBytes,
    engine_state_matches_reference: correct,
    baseline_state_matches_reference: baselineCorrect,
    recovered_hash_matches_live: hashMatches,
    multi_market_rejected_ops: multiRejected,
    fills_per_run: fills,
    runs: RUNS,
    operations: OPS,
  };
  console.log('');
  row('engine, 1 market (ops/s, untimed loop)', fmt(result.engine_ops_per_sec), 'reservation, fees, events, invariants checked after');
  row('engine latency p50 / p99 / p99.9 (µs)', `${result.p50_us} / ${result.p99_us} / ${result.p999_us}`, 'hrtime around each apply()');
  row('nodejs-order-book 10.1.1, same workload', fmt(result.baseline_ops_per_sec), `ratio ${result.ratio_vs_baseline}×`);
  row('engine, 10 markets with stop orders', fmt(result.multi_market_ops_per_sec), `${fmt(multiRejected)} ops rejected (cancels of orders stops consumed)`);
  row('engine, IOC orders that never rest (ops/s)', fmt(result.ioc_flow_ops_per_sec), `${fmt(TAKER_ORDERS)} orders, each opened and closed at once`);
  row(`${fmt(WAITING_STOPS)} stop orders: place / cancel (ops/s)`, `${fmt(result.stop_place_ops_per_sec)} / ${fmt(result.stop_cancel_ops_per_sec)}`, 'at 5,000 trigger prices, cancelled in a scattered order');
  row(`trades / cancels, ${fmt(WAITING_TRAILING)} trailing stops`, `${fmt(result.trailing_trades_per_sec)} / ${fmt(result.trailing_cancel_ops_per_sec)}`, 'trades/s while they wait; cancels/s in a scattered order');
  row(`${fmt(PRICE_LEVELS)} price levels: place / cancel (ops/s)`, `${fmt(result.level_place_ops_per_sec)} / ${fmt(result.level_cancel_ops_per_sec)}`, 'one sell per price, scattered; cancelled scattered');
  row('durable journal alone (cmds/s)', fmt(result.journal_commands_per_sec), 'SQLite WAL, synchronous=FULL, 1,000 per commit');
  row('sequencer: journal + engine + ack (cmds/s)', fmt(result.sequencer_commands_per_sec), 'group commit per event-loop turn');
  row('recovery from genesis (s per million)', result.recovery_seconds_per_million.toFixed(2), 'read, verify hash chain, parse, apply');
  row(`snapshot, ${fmt(SNAPSHOT_ORDERS)} orders open: take / store (ms)`, `${result.snapshot_take_ms} / ${result.snapshot_store_ms}`, `read-model thread / journal writer; ${fmt(snapshotBytes)} bytes gzipped`);
  row('final books match the simulator', `${correct} / ${baselineCorrect}`, 'engine / baseline');
  console.log(JSON.stringify(result));
}

void main();
