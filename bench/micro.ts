/**
 * `npm run bench:micro`: small in-process measurements behind choices on the order path, each
 * against the alternative it replaced, in alternating rounds (medians printed):
 *
 * - the HTTP latency histogram: prom-client's labelled `observe` (through a `labels()` child)
 *   against the per-series counters of src/gateway/latency-histogram.ts;
 * - the read model: CPU per order projected (Projector.apply, batches of 23 as under HTTP load,
 *   the bench order stream) with the partial client-id index against the full one it replaced;
 * - a request signature's check as src/identity/hmac-sha256.ts does it (digests as latin1 strings
 *   into the instance's buffers, hex decoded into one) against the same HMAC with Buffers (`hash`
 *   asked for a Buffer, the hex checked by a regular expression and decoded into a new buffer);
 * - the replay cache (src/identity/replay-cache.ts, typed arrays) against the `Set` of hex strings
 *   with arrays beside it that it replaced, at 200,000 signatures held (20,000 requests a second,
 *   10 s each): ns per request, and the longest single calls, which stall the event loop;
 * - alternatives measured and not taken: a request signature's HMAC in JS (@noble/hashes, keyed
 *   state cloned) against Node's OpenSSL `createHmac`; `JSON.stringify` against the
 *   fast-json-stringify serializer Fastify compiles from the order route's response schema;
 *   `fdatasync` against the `fsync` SQLite calls, after an 8 KiB write to a preallocated file;
 * - the mail queue (src/mail/mail-queue.ts): the wall time on the serving thread to queue a mail
 *   and take it off once sent, which every mail to a user costs;
 * - a WebSocket broadcast (src/gateway/ws.ts): the serving thread's µs per client to send one
 *   message to 200 loopback clients, corked and uncorked as the server does, the message given to
 *   ws as one Buffer against as the string, at 300 bytes (a depth update) and 100 KB (a mass
 *   cancel's book update);
 * - a WebSocket snapshot of the order-by-order book at 30,000 resting orders (5,000 prices): as
 *   src/marketdata/order-book.ts makes it, from each order's text kept since it was published,
 *   against formatting every order again and sorting them all by price (session 28's way); each
 *   made and encoded, as the server does once per published update;
 * - a depth update of that book (5,000 levels) after one order joins it: DepthPublisher.update,
 *   which walks the last levels and the new side by side, against session 28's diff through a Map
 *   of the last levels, rebuilt each time;
 * - a proof-of-liabilities report (src/funding/liabilities.ts) over 100,000 users with two assets
 *   each: how long publishing takes, and the longest the event loop waits meanwhile (trading
 *   stops for that long), with the balances read on this thread (an exchange without a
 *   read-model thread) and read on another (the server's way); then the time to read one user's
 *   proof.
 *
 * Environment: BENCH_ROUNDS (default 8), BENCH_ORDERS (orders projected per round, default 60,000).
 */
import { createHmac, createSecretKey, hash, timingSafeEqual } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { closeSync, fdatasyncSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import fastJson from 'fast-json-stringify';
import { WebSocket, WebSocketServer } from 'ws';
import { Histogram, Registry } from 'prom-client';
import { Engine } from '../src/core/index.js';
import type { Command } from '../src/core/index.js';
import type { Committed } from '../src/journal/index.js';
import { LatencyHistogram } from '../src/gateway/latency-histogram.js';
import { HmacSha256 } from '../src/identity/hmac-sha256.js';
import { ReplayCache } from '../src/identity/replay-cache.js';
import { MailQueue } from '../src/mail/mail-queue.js';
import { LiabilityReports } from '../src/funding/liabilities.js';
import { openFundingDb } from '../src/funding/store.js';
import { ORDER_OUT } from '../src/gateway/wire.js';
import { formatMinor, parseMinor } from '../src/money/index.js';
import { Projector } from '../src/store/projector.js';
import { OrderBookPublisher, orderBookChecksum } from '../src/marketdata/order-book.js';
import { DepthPublisher } from '../src/marketdata/depth.js';
import { orderBody } from './bench-server.js';
import { median } from './stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const ORDERS = Number(process.env.BENCH_ORDERS ?? 60_000);
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];


function nanosPer(count: number, body: (i: number) => void): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) body(i);
  return Number(process.hrtime.bigint() - started) / count;
}

function histograms(): { promClient: number; counters: number } {
  const labels = { method: 'POST', route: '/api/v1/orders', status: '201' };
  const child = new Histogram({ name: 'a', help: 'a', labelNames: ['method', 'route', 'status'], buckets: BUCKETS, registers: [new Registry()] }).labels(labels);
  const series = new LatencyHistogram('b', 'b', BUCKETS).series(labels);
  const promClient: number[] = [];
  const counters: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    promClient.push(nanosPer(500_000, (i) => child.observe((i % 100) / 10_000)));
    counters.push(nanosPer(500_000, (i) => series.observe((i % 100) / 10_000)));
  }
  return { promClient: median(promClient), counters: median(counters) };
}

/** The bench order stream through a fresh engine, as the batches the read model projects. */
function committedOrders(): Committed[] {
  const engine = new Engine();
  const all: Committed[] = [];
  const t0 = Date.UTC(2026, 10, 21);
  let seq = 0;
  const run = (cmd: Command, ts: number): void => {
    const envelope = { seq: ++seq, ts, cmd };
    all.push({ envelope, events: engine.apply(envelope) });
  };
  const setup: Command[] = [
    { type: 'create_asset', code: 'USDT', precision: 6 }, { type: 'create_asset', code: 'BTC', precision: 8 },
    { type: 'create_market', market: 'BTC-USDT', base: 'BTC', quote: 'USDT', tick: 10_000, lot: 10_000, makerFeePpm: 1_000, takerFeePpm: 2_000 },
    { type: 'create_user', user: 1 }, { type: 'create_account', account: 1, user: 1 },
    { type: 'deposit', account: 1, asset: 'USDT', amount: 1e15, key: 'usdt' }, { type: 'deposit', account: 1, asset: 'BTC', amount: 1e13, key: 'btc' },
  ];
  for (const cmd of setup) run(cmd, t0);
  for (let i = 0; i < ORDERS; i++) {
    const body = JSON.parse(orderBody(i)) as { side: 'buy' | 'sell'; price: string; quantity: string };
    run({ type: 'place_order', account: 1, market: 'BTC-USDT', side: body.side, orderType: 'limit', price: Number(parseMinor(body.price, 6)), quantity: Number(parseMinor(body.quantity, 8)) }, t0 + Math.floor(i / 20));
  }
  return all;
}

/** CPU microseconds per order projected, in batches of 23, into a fresh read model. */
function projectionMicros(batches: Committed[], fullClientIdIndex: boolean): number {
  const dir = mkdtempSync(join(tmpdir(), 'bourse-micro-'));
  try {
    const projector = new Projector(join(dir, 'store.db'));
    if (fullClientIdIndex) projector.db.exec('DROP INDEX orders_by_set_client_id; CREATE INDEX orders_by_client_id ON orders (account, client_order_id)');
    const setupCount = batches.length - ORDERS;
    projector.apply(batches.slice(0, setupCount));
    const cpu = process.cpuUsage();
    for (let i = setupCount; i < batches.length; i += 23) projector.apply(batches.slice(i, i + 23));
    const used = process.cpuUsage(cpu);
    projector.close();
    return (used.user + used.system) / ORDERS;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The replay cache before session 14: a Set of lower-case hex signatures, arrays in arrival order. */
class SetReplayCache {
  private readonly seen = new Set<string>();
  private ids: string[] = [];
  private signedAts: number[] = [];
  private expiries: number[] = [];
  private head = 0;
  forgottenThrough = Number.NEGATIVE_INFINITY;

  constructor(private readonly max: number) {}

  remember(id: string, signedAt: number, expiresAt: number, now: number): boolean {
    while (this.head < this.ids.length && this.expiries[this.head]! < now) this.drop();
    if (this.seen.has(id)) return false;
    while (this.head < this.ids.length && this.seen.size >= this.max) {
      if (this.signedAts[this.head]! > this.forgottenThrough) this.forgottenThrough = this.signedAts[this.head]!;
      this.drop();
    }
    if (this.head >= 65_536 && this.head * 2 >= this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.signedAts = this.signedAts.slice(this.head);
      this.expiries = this.expiries.slice(this.head);
      this.head = 0;
    }
    this.seen.add(id);
    this.ids.push(id);
    this.signedAts.push(signedAt);
    this.expiries.push(expiresAt);
    return true;
  }

  private drop(): void {
    this.seen.delete(this.ids[this.head]!);
    this.head += 1;
  }
}

/**
 * Both caches fed the same stream of fresh signatures, one per time unit, each expiring HELD
 * units later: ns per call (median of the rounds) and, over a longer stretch timed call by call,
 * the longest call in ms and how many calls took over 1 ms.
 */
function replayCaches(): { typedNs: number; setNs: number; typed: { longest: number; overMs: number }; set: { longest: number; overMs: number } } {
  const HELD = 200_000;
  const ids = Array.from({ length: 3 * HELD }, (_, i) => hash('sha256', String(i), 'hex'));
  type Cache = { remember(id: string, signedAt: number, expiresAt: number, now: number): boolean };
  const feeds = [new ReplayCache(2_000_000), new SetReplayCache(2_000_000)].map((cache: Cache) => {
    let t = 0;
    // The auth path lower-cases for the Set (its key); the typed cache reads either case.
    const step = (): void => {
      const id = ids[t % ids.length]!;
      if (!cache.remember(cache instanceof SetReplayCache ? id.toLowerCase() : id, t, t + HELD, t)) throw new Error('a fresh signature was refused');
      t += 1;
    };
    for (let i = 0; i < HELD; i++) step();
    return step;
  });
  const typed: number[] = [];
  const set: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    typed.push(nanosPer(100_000, feeds[0]!));
    set.push(nanosPer(100_000, feeds[1]!));
  }
  const stalls = (step: () => void): { longest: number; overMs: number } => {
    let longest = 0;
    let overMs = 0;
    for (let i = 0; i < 3 * HELD; i++) {
      const started = performance.now();
      step();
      const took = performance.now() - started;
      if (took > longest) longest = took;
      if (took > 1) overMs += 1;
    }
    return { longest, overMs };
  };
  return { typedNs: median(typed), setNs: median(set), typed: stalls(feeds[0]!), set: stalls(feeds[1]!) };
}

function alternatives(): Record<string, number> {
  const secret = 'a'.repeat(64);
  const key = createSecretKey(Buffer.from(secret));
  const payload = '1795261938290POST/api/v1/orders{"market":"BTC-USDT","side":"buy","type":"limit","price":"99.75","quantity":"0.0010"}';
  const keyed = hmac.create(sha256, Buffer.from(secret));
  const encoder = new TextEncoder();
  let scratch: typeof keyed | undefined;
  // The order route's own response schema; nullable unions are outside fast-json-stringify's typings.
  const serialize = fastJson(ORDER_OUT as unknown as Parameters<typeof fastJson>[0]) as (value: unknown) => string;
  const order = (i: number) => ({
    id: String(100_000 + i), account: 1, client_order_id: null, market: 'BTC-USDT', side: 'buy', type: 'limit', time_in_force: 'GTC', price: '99.750000',
    quantity: '0.00100000', quote_quantity: null, stop_price: null, callback_rate: null, post_only: false, stp: 'cancel_taker', expire_time: null, status: 'NEW',
    reason: null, filled_quantity: '0.00000000', remaining_quantity: '0.00100000', cumulative_quote: '0.000000', average_price: null, created_at: 1_795_261_938_290 + i, updated_at: 1_795_261_938_290 + i,
  });
  const orders = Array.from({ length: 1_000 }, (_, i) => order(i));
  const dir = mkdtempSync(join(tmpdir(), 'bourse-micro-'));
  const fd = openSync(join(dir, 'sync'), 'w');
  writeSync(fd, Buffer.alloc(1 << 20), 0, 1 << 20, 0);
  fsyncSync(fd);
  const page = Buffer.alloc(8_192, 1);
  const signature = createHmac('sha256', secret).update(payload).digest('hex');
  const ours = new HmacSha256(Buffer.from(secret));
  const inner = Buffer.alloc(64 + 1_024);
  const outer = Buffer.alloc(64 + 32);
  for (let i = 0; i < 64; i++) {
    inner[i] = secret.charCodeAt(i) ^ 0x36;
    outer[i] = secret.charCodeAt(i) ^ 0x5c;
  }
  const withBuffers = (): boolean => {
    if (!/^[0-9a-fA-F]+$/.test(signature) || signature.length % 2 !== 0) return false;
    const given = Buffer.from(signature, 'hex');
    const length = inner.write(payload, 64, 'utf8');
    hash('sha256', inner.subarray(0, 64 + length), 'buffer').copy(outer, 64);
    const expected = hash('sha256', outer, 'buffer');
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  if (!ours.matches(payload, signature) || !withBuffers()) throw new Error('the signature checks disagree with createHmac');
  const rounds: Record<string, number[]> = { signature_check_ns: [], signature_check_buffers_ns: [], hmac_openssl_ns: [], hmac_noble_ns: [], fast_json_stringify_ns: [], json_stringify_ns: [], fsync_us: [], fdatasync_us: [] };
  for (let round = 0; round < ROUNDS; round++) {
    rounds.signature_check_ns!.push(nanosPer(200_000, () => ours.matches(payload, signature)));
    rounds.signature_check_buffers_ns!.push(nanosPer(200_000, withBuffers));
    rounds.hmac_openssl_ns!.push(nanosPer(100_000, () => createHmac('sha256', key).update(payload).digest()));
    rounds.hmac_noble_ns!.push(nanosPer(100_000, () => {
      const state = keyed._cloneInto(scratch as never) as typeof keyed;
      scratch = state;
      state.update(encoder.encode(payload)).digest();
    }));
    rounds.fast_json_stringify_ns!.push(nanosPer(200_000, (i) => serialize(orders[i % 1_000]!)));
    rounds.json_stringify_ns!.push(nanosPer(200_000, (i) => JSON.stringify(orders[i % 1_000]!)));
    for (const [name, sync] of [['fsync_us', fsyncSync], ['fdatasync_us', fdatasyncSync]] as const) {
      rounds[name]!.push(nanosPer(100, (i) => { writeSync(fd, page, 0, page.length, (i * 8_192) % (1 << 20)); sync(fd); }) / 1_000);
    }
  }
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
  return Object.fromEntries(Object.entries(rounds).map(([name, values]) => [name, Number(median(values).toFixed(1))]));
}

/** µs on the serving thread to queue one mail and, once sent, take it off (a warning's text, sealed). */
function mailQueueMicros(): number {
  const dir = mkdtempSync(join(tmpdir(), 'bourse-micro-mail-'));
  const queue = new MailQueue(join(dir, 'mail.db'), Buffer.alloc(32, 7), Date.now());
  const text = 'A withdrawal was asked for on your account. '.repeat(14);
  const micros: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    micros.push(nanosPer(2_000, (i) => queue.delivered(queue.add({ purpose: 'withdrawal_requested', to: `u${i}@example.com`, subject: 'Withdrawal of 0.10000000 BTC requested', text }, Date.now()))) / 1_000);
  }
  queue.close();
  rmSync(dir, { recursive: true, force: true });
  return median(micros);
}

async function liabilityReport(users: number): Promise<{ publishMs: number; longestStallMs: number; elsewhereStallMs: number; proofUs: number }> {
  const engine = new Engine();
  let seq = 0;
  const run = (cmd: Command): void => { engine.apply({ seq: ++seq, ts: 1, cmd }); };
  run({ type: 'create_asset', code: 'USDT', precision: 6 });
  run({ type: 'create_asset', code: 'BTC', precision: 8 });
  for (let user = 1; user <= users; user++) {
    run({ type: 'create_user', user });
    run({ type: 'create_account', account: user, user });
    run({ type: 'deposit', account: user, asset: 'USDT', amount: 1_000_000 + user, key: `u${user}` });
    run({ type: 'deposit', account: user, asset: 'BTC', amount: 100_000 + user, key: `b${user}` });
  }
  const dir = mkdtempSync(join(tmpdir(), 'bourse-micro-pol-'));
  const db = openFundingDb(join(dir, 'funding.db'));
  const reports = new LiabilityReports(db, () => engine, Buffer.alloc(32, 9), () => 1);
  // The monitor samples from a timer of its own: it must be running before the work starts, or a
  // stall at the very start goes unseen (session 28's figures missed the balances' read so).
  const monitorRunning = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  await monitorRunning();
  const start = performance.now();
  const report = await reports.publish('bench');
  const publishMs = performance.now() - start;
  delay.disable();
  // As the server does it: the balances read on the read-model thread's replica (here, before
  // the clock starts), so that what this thread still holds is the tree's slices.
  const held = engine.userHoldings(['BTC', 'USDT']);
  const elsewhere = new LiabilityReports(db, () => engine, Buffer.alloc(32, 9), () => 1, async () => held);
  const elsewhereDelay = monitorEventLoopDelay({ resolution: 1 });
  elsewhereDelay.enable();
  await monitorRunning();
  await elsewhere.publish('bench');
  elsewhereDelay.disable();
  const proofStart = performance.now();
  for (let user = 1; user <= 1_000; user++) reports.proof(user * Math.floor(users / 1_000), report.id);
  const proofUs = ((performance.now() - proofStart) * 1_000) / 1_000;
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return { publishMs, longestStallMs: delay.max / 1e6, elsewhereStallMs: elsewhereDelay.max / 1e6, proofUs };
}

/** µs per client to send one message to every client, by how it is given to ws; medians of alternating rounds. */
async function broadcasts(clientCount: number, bytes: number, rounds: number): Promise<{ bufferUs: number; stringUs: number }> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => server.once('listening', resolve));
  const served: WebSocket[] = [];
  server.on('connection', (socket) => served.push(socket));
  let received = 0;
  const clients: WebSocket[] = [];
  for (let i = 0; i < clientCount; i++) {
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`);
    client.on('message', () => { received += 1; });
    await new Promise((resolve) => client.once('open', resolve));
    clients.push(client);
  }
  while (served.length < clientCount) await new Promise((resolve) => setTimeout(resolve, 10));
  const text = JSON.stringify({ channel: 'depth', market: 'BTC-USDT', pad: 'x'.repeat(bytes) });
  const raw = (socket: WebSocket) => (socket as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
  const times = { buffer: [] as number[], string: [] as number[] };
  for (let round = 0; round < 2 * rounds; round++) {
    const kind = round % 2 === 0 ? 'buffer' : 'string';
    const started = performance.now();
    const data = kind === 'buffer' ? Buffer.from(text) : text;
    for (const socket of served) { raw(socket).cork(); socket.send(data, { binary: false }); }
    for (const socket of served) raw(socket).uncork();
    times[kind].push(((performance.now() - started) * 1_000) / clientCount);
    const expected = (round + 1) * clientCount;
    while (received < expected) await new Promise((resolve) => setImmediate(resolve));
  }
  for (const client of clients) client.terminate();
  server.close();
  return { bufferUs: median(times.buffer), stringUs: median(times.string) };
}

/** An engine with `orders` resting buys at 5,000 prices in BTC-USDT; `run` applies one more command. */
function deepBook(orders: number): { engine: Engine; run: (cmd: Command) => void; seq: () => number } {
  const engine = new Engine();
  let seq = 0;
  const run = (cmd: Command): void => { engine.apply({ seq: ++seq, ts: 1, cmd }); };
  run({ type: 'create_asset', code: 'USDT', precision: 6 });
  run({ type: 'create_asset', code: 'BTC', precision: 8 });
  run({ type: 'create_market', market: 'BTC-USDT', base: 'BTC', quote: 'USDT', tick: 10_000, lot: 10_000, makerFeePpm: 0, takerFeePpm: 0 });
  run({ type: 'set_open_order_limit', market: 'BTC-USDT', maxOpenOrders: orders + 1_000 });
  run({ type: 'create_user', user: 1 });
  run({ type: 'create_account', account: 1, user: 1 });
  run({ type: 'deposit', account: 1, asset: 'USDT', amount: 1e15, key: 'usdt' });
  for (let i = 0; i < orders; i++) {
    run({ type: 'place_order', account: 1, market: 'BTC-USDT', side: 'buy', orderType: 'limit', price: 20_000_000_000 - (i % 5_000) * 1_000_000, quantity: 10_000 * (1 + (i % 7)) });
  }
  return { engine, run, seq: () => seq };
}

/** ms to make and encode one order-by-order snapshot of `orders` resting buys, both ways; medians. */
function bookSnapshots(orders: number, rounds: number): { keptTextMs: number; formattedMs: number; bytes: number } {
  const { engine, seq: lastSeq } = deepBook(orders);
  const seq = lastSeq();
  const publisher = new OrderBookPublisher(() => engine);
  // Session 28's snapshot, as it was: the published orders (the same map, without their text) filtered
  // by side, sorted by price (a stable sort keeps queue order) and every one formatted again.
  const book = engine.orderBook('BTC-USDT');
  const published = new Map([...book.bids, ...book.asks].map((o) => [o.orderId, { side: o.side, price: o.price, quantity: o.quantity }]));
  const formatted = (): string => {
    const side = (which: 'buy' | 'sell') => [...published]
      .filter(([, o]) => o.side === which)
      .sort(([, a], [, b]) => (which === 'buy' ? b.price - a.price : a.price - b.price))
      .map(([id, o]) => [String(id), formatMinor(o.price, 6), formatMinor(o.quantity, 8)] as [string, string, string]);
    const bids = side('buy');
    const asks = side('sell');
    return JSON.stringify({ channel: 'book', type: 'snapshot', market: 'BTC-USDT', seq, prev_seq: seq, bids, asks, checksum: orderBookChecksum(bids, asks) });
  };
  const kept = (): string => JSON.stringify(publisher.snapshot('BTC-USDT'));
  const times = { kept: [] as number[], formatted: [] as number[] };
  let bytes = 0;
  for (let round = 0; round < rounds; round++) {
    let started = performance.now();
    bytes = Buffer.byteLength(kept());
    times.kept.push(performance.now() - started);
    started = performance.now();
    formatted();
    times.formatted.push(performance.now() - started);
  }
  return { keptTextMs: median(times.kept), formattedMs: median(times.formatted), bytes };
}

/** ms per depth update of the 5,000-level book after one order joins it, both ways; medians of alternating rounds. */
function depthUpdates(rounds: number): { walkMs: number; mapMs: number } {
  const { engine, run } = deepBook(30_000);
  const publisher = new DepthPublisher(() => engine);
  publisher.snapshot('BTC-USDT');
  // Session 28's diff, as it was: the last levels in a Map, every level looked up and the Map rebuilt.
  const last = { bids: new Map<number, number>(), asks: new Map<number, number>() };
  for (const level of engine.book('BTC-USDT').bids) last.bids.set(level.price, level.quantity);
  const mapDiff = (): number => {
    const book = engine.book('BTC-USDT');
    let changed = 0;
    for (const [levels, previous] of [[book.bids, last.bids], [book.asks, last.asks]] as const) {
      const now = new Map<number, number>();
      for (const level of levels) {
        now.set(level.price, level.quantity);
        if (previous.get(level.price) !== level.quantity) { changed += 1; formatMinor(level.price, 6); formatMinor(level.quantity, 8); }
      }
      for (const price of previous.keys()) if (!now.has(price)) { changed += 1; formatMinor(price, 6); }
      previous.clear();
      for (const [price, quantity] of now) previous.set(price, quantity);
    }
    return changed;
  };
  const times = { walk: [] as number[], map: [] as number[] };
  for (let round = 0; round < 2 * rounds; round++) {
    run({ type: 'place_order', account: 1, market: 'BTC-USDT', side: 'buy', orderType: 'limit', price: 20_000_000_000 - (round % 5_000) * 1_000_000, quantity: 10_000 });
    const started = performance.now();
    // Each round times one way and brings the other up to date untimed.
    if (round % 2 === 0) {
      const messages = publisher.update(['BTC-USDT']);
      times.walk.push(performance.now() - started);
      if (messages.length !== 1) throw new Error('the depth update lost its change');
      mapDiff();
    } else {
      mapDiff();
      times.map.push(performance.now() - started);
      publisher.update(['BTC-USDT']);
    }
  }
  return { walkMs: median(times.walk), mapMs: median(times.map) };
}

const hist = histograms();
console.log(`latency histogram, ns per observation: prom-client labelled child ${hist.promClient.toFixed(0)}, per-series counters ${hist.counters.toFixed(0)}`);
const batches = committedOrders();
const partial: number[] = [];
const full: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  partial.push(projectionMicros(batches, false));
  full.push(projectionMicros(batches, true));
}
console.log(`read model, CPU µs per order projected (median of ${ROUNDS}): partial client-id index ${median(partial).toFixed(2)}, full index ${median(full).toFixed(2)}`);
const replay = replayCaches();
console.log(`replay cache, 200,000 signatures held: ns per request: typed arrays ${replay.typedNs.toFixed(0)}, Set of hex strings ${replay.setNs.toFixed(0)}; over ${(3 * 200_000).toLocaleString('en-US')} calls, longest ${replay.typed.longest.toFixed(2)} ms and ${replay.typed.overMs} over 1 ms with typed arrays, ${replay.set.longest.toFixed(2)} ms and ${replay.set.overMs} with the Set`);
const others = alternatives();
console.log(`request signature check, ns: HmacSha256.matches ${others.signature_check_ns}, the same with Buffers ${others.signature_check_buffers_ns}`);
console.log(`request HMAC, ns: OpenSSL createHmac ${others.hmac_openssl_ns}, @noble/hashes ${others.hmac_noble_ns}`);
console.log(`order response, ns: fast-json-stringify ${others.fast_json_stringify_ns}, JSON.stringify ${others.json_stringify_ns}`);
console.log(`8 KiB write then sync, µs wall: fsync ${others.fsync_us}, fdatasync ${others.fdatasync_us}`);
const mailQueue = mailQueueMicros();
console.log(`mail queue, µs wall to queue a mail and take it off once sent: ${mailQueue.toFixed(1)}`);
const smallBroadcast = await broadcasts(200, 300, 100);
const largeBroadcast = await broadcasts(200, 100_000, 20);
console.log(`WebSocket broadcast to 200 clients, µs per client: 300 bytes: one Buffer ${smallBroadcast.bufferUs.toFixed(2)}, the string ${smallBroadcast.stringUs.toFixed(2)}; 100 KB: one Buffer ${largeBroadcast.bufferUs.toFixed(2)}, the string ${largeBroadcast.stringUs.toFixed(2)}`);
const bookSnapshot = bookSnapshots(30_000, 15);
console.log(`order-by-order snapshot, 30,000 orders (${(bookSnapshot.bytes / 1e6).toFixed(1)} MB), ms to make and encode: from the text kept since publishing ${bookSnapshot.keptTextMs.toFixed(1)}, every order formatted again ${bookSnapshot.formattedMs.toFixed(1)}`);
const depthUpdate = depthUpdates(40);
console.log(`depth update, 5,000 levels, one order joined: ms: walking the last levels beside the new ${depthUpdate.walkMs.toFixed(2)}, through a Map of the last levels ${depthUpdate.mapMs.toFixed(2)}`);
const pol = await liabilityReport(100_000);
console.log(`proof of liabilities, 100,000 users, 2 assets: publishing ${pol.publishMs.toFixed(0)} ms, longest event-loop stall meanwhile ${pol.longestStallMs.toFixed(1)} ms with the balances read on this thread, ${pol.elsewhereStallMs.toFixed(1)} ms with them read on another (the server's read-model thread); one user's proof ${pol.proofUs.toFixed(0)} µs`);
console.log(JSON.stringify({
  histogram_promclient_ns: Math.round(hist.promClient), histogram_counters_ns: Math.round(hist.counters),
  projection_partial_index_us: Number(median(partial).toFixed(2)), projection_full_index_us: Number(median(full).toFixed(2)),
  replay_cache_ns: Math.round(replay.typedNs), replay_cache_set_ns: Math.round(replay.setNs), replay_cache_longest_ms: Number(replay.typed.longest.toFixed(2)), replay_cache_set_longest_ms: Number(replay.set.longest.toFixed(2)),
  replay_cache_calls_over_1ms: replay.typed.overMs, replay_cache_set_calls_over_1ms: replay.set.overMs, ...others, mail_queue_us: Number(mailQueue.toFixed(1)),
  broadcast_300b_buffer_us: Number(smallBroadcast.bufferUs.toFixed(2)), broadcast_300b_string_us: Number(smallBroadcast.stringUs.toFixed(2)),
  broadcast_100kb_buffer_us: Number(largeBroadcast.bufferUs.toFixed(2)), broadcast_100kb_string_us: Number(largeBroadcast.stringUs.toFixed(2)),
  book_snapshot_30k_ms: Number(bookSnapshot.keptTextMs.toFixed(1)), book_snapshot_30k_formatted_ms: Number(bookSnapshot.formattedMs.toFixed(1)),
  depth_update_5k_levels_ms: Number(depthUpdate.walkMs.toFixed(2)), depth_update_5k_levels_map_ms: Number(depthUpdate.mapMs.toFixed(2)),
  liability_report_ms: Math.round(pol.publishMs), liability_report_stall_ms: Number(pol.longestStallMs.toFixed(1)), liability_report_stall_elsewhere_ms: Number(pol.elsewhereStallMs.toFixed(1)), liability_proof_us: Math.round(pol.proofUs),
}));
