/**
 * `npm run bench:api`: the running server, measured from a second process on loopback.
 *
 *  1. signed order placement over HTTP keep-alive, every request signed afresh (the server
 *     refuses replays):
 *     - `http`: autocannon, BENCH_HTTP_CONNECTIONS (default 50) connections, closed loop;
 *     - `lean`: the same with the lighter load generator of http-load.ts, which leaves more of the
 *       two cores to the server;
 *     - `rate`: an open loop at a fixed BENCH_HTTP_RATE (default 20,000/s) over up to
 *       BENCH_RATE_CONNECTIONS (256), latency counted from when each request was due: what a
 *       latency target at a rate means, without the closed loop's coordinated omission;
 *     - `batch`: the same orders BENCH_BATCH_SIZE (20) to a signed POST /orders/batch, by the
 *       lighter generator: orders per second and server CPU per order for a market maker's ladder;
 *  2. order entry over WebSocket (authenticated sockets, 200 orders in flight each);
 *  3. depth fan-out: 1,000 local sockets subscribed to one market while orders flow; latency from
 *     sending an order to each subscriber receiving a depth message that includes it.
 *
 * The phases run BENCH_RUNS times (default 3), one run after another, so that a host's drift
 * spreads over every phase; a single run on a shared two-core host can be off by a third. Each run
 * prints its lines and its figures as JSON; the last line is one JSON object with the median of
 * each figure over the runs (failure counts: their total) and `runs`. BENCH_RUNS=1 is a quick look.
 *
 * Prints a table, then one JSON object as the last line. For each HTTP and socket phase it also
 * prints the server's CPU time (all its threads, from /proc) per request, which depends far less
 * than the rates on how much of the two cores the load generator takes, and how many commands
 * went into each journal commit. Each phase first runs BENCH_WARMUP_SECONDS (default 2)
 * unmeasured, then BENCH_HTTP_SECONDS (default 10) for the HTTP phases.
 * BENCH_PHASES picks phases (default `anchor,ceiling,floor,http,lean,rate,batch,ws,fanout`). `anchor`
 * repeats the research's HTTP anchor on this host (../shared/research/perf.md §2b: autocannon,
 * 50 connections, 2 s warm-up then 10 s, against a do-nothing Fastify POST; about 45,000/s on the
 * machine the targets were set on), so that a session's figures can be read against the host
 * they were taken on. `ceiling` is a
 * bare Fastify route that parses the order's JSON and does nothing else, in a process of its own,
 * loaded by the lean generator over the same connections: the most any server answers on this
 * machine that day, against which the order rates can be read (hosts differ by 2× and more).
 * `floor` is GET /api/v1/time on Bourse, with the same client, connections and signing work as
 * `http`: what Bourse's HTTP stack costs without an order. BENCH_SERVER_FLAGS passes Node flags
 * to the server (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`); BENCH_LATENCY_LOG=file writes each counted request's
 * due time, latency and send lag from the lean and rate phases (the last one run), for a time series.
 * BENCH_SNAPSHOT_EVERY sets the server's snapshot interval in commands (default: the server's).
 * BENCH_FANOUT_CHANNEL=book has the fan-out's 1,000 subscribers follow the book order by order
 * instead of depth. BENCH_FANOUT_BOOK_ORDERS=N rests N buys at up to 5,000 prices far below the
 * phase's orders before the subscribers come, so that every update and snapshot covers a deep
 * book (default 0: the book holds only the phase's orders). BENCH_ORDER_FLOW=ioc sends the order phases' orders as immediate-or-cancel: none rests (a
 * taker's flow) instead of about half (see orderBody in bench-server.ts).
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { WebSocket } from 'ws';
// autocannon ships no types; the part used here is small.
// @ts-expect-error untyped module
import autocannon from 'autocannon';
import { percentile, runLoad, runRate } from './http-load.js';
import { cpuSeconds, flowOrderBody, ORDER_FLOW, orderBody, signedBatches, signedHeaders, signedOrders, spawnServer, startServer, statCpuSeconds, stopServer, trader } from './bench-server.js';
import type { Credentials } from './bench-server.js';
import { median } from './stats.js';

const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 10);
const HTTP_CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 50);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const HTTP_RATE = Number(process.env.BENCH_HTTP_RATE ?? 20_000);
const RATE_CONNECTIONS = Number(process.env.BENCH_RATE_CONNECTIONS ?? 256);
const FANOUT_CLIENTS = 1_000;
/** The channel the fan-out phase's subscribers follow: `depth` (levels) or `book` (order by order). */
const FANOUT_CHANNEL = process.env.BENCH_FANOUT_CHANNEL === 'book' ? 'book' : 'depth';
const FANOUT_BOOK_ORDERS = Number(process.env.BENCH_FANOUT_BOOK_ORDERS ?? 0);
const RUNS = Math.max(1, Math.floor(Number(process.env.BENCH_RUNS ?? 3)));
const PHASES = new Set((process.env.BENCH_PHASES ?? 'anchor,ceiling,floor,http,lean,rate,batch,ws,fanout').split(','));
const BATCH_SIZE = Number(process.env.BENCH_BATCH_SIZE ?? 20);
/** The research host's anchor, requests a second (perf.md §2b, median of 6 runs). */
const RESEARCH_ANCHOR_PER_SEC = 45_000;

/**
 * CPU seconds per server thread, by thread id. The main thread's id is the pid; the journal
 * writer and the projection thread are the last two the server starts (the highest ids).
 */
function serverThreadCpuSeconds(pid: number): Map<number, number> {
  const threads = new Map<number, number>();
  let ids: string[] = [];
  try {
    ids = readdirSync(`/proc/${pid}/task`);
  } catch {
    // not Linux
  }
  for (const tid of ids) {
    const seconds = statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
    if (Number.isFinite(seconds)) threads.set(Number(tid), seconds);
  }
  return threads;
}

/**
 * "main 112.0 (93 %), writer 20.1 (17 %), projection 22.3 (19 %), other 8.0": µs per request from
 * two readings, and for the three named threads how busy they were (share of one core over the
 * phase). A thread near 100 % is what limits the rate.
 */
function threadBreakdown(pid: number, before: Map<number, number>, after: Map<number, number>, requests: number, seconds: number): string {
  const ids = [...after.keys()].sort((a, b) => a - b);
  const cpu = (tid: number): number => (after.get(tid) ?? 0) - (before.get(tid) ?? 0);
  const used = (tid: number): number => (cpu(tid) * 1e6) / requests;
  const writer = ids.at(-2);
  const projection = ids.at(-1);
  let other = 0;
  for (const tid of ids) if (tid !== pid && tid !== writer && tid !== projection) other += used(tid);
  const micros = (tid: number | undefined): string => (tid === undefined ? '?' : `${used(tid).toFixed(1)} (${Math.round((100 * cpu(tid)) / seconds)} %)`);
  return `main ${micros(pid)}, writer ${micros(writer)}, projection ${micros(projection)}, other ${other.toFixed(1)}`;
}

/** Busy and total CPU time of the whole machine so far, in clock ticks (Linux /proc/stat; zeros elsewhere). */
function machineTicks(): { busy: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    // idle and iowait are the two not-busy columns
    return { busy: total - fields[3]! - (fields[4] ?? 0), total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** "machine 97 % busy (2 cores): server 71 %, load generator 19 %, rest 7 %", over a phase. */
function machineShare(before: { busy: number; total: number }, after: { busy: number; total: number }, serverSeconds: number, clientSeconds: number): string {
  const total = after.total - before.total;
  if (total <= 0) return 'machine load unknown';
  const share = (ticks: number): number => Math.round((100 * ticks) / total);
  // /proc/stat counts in USER_HZ ticks, 100 a second on Linux: CPU seconds × 100 are ticks.
  const busy = share(after.busy - before.busy);
  const server = share(serverSeconds * 100);
  const client = share(clientSeconds * 100);
  return `machine ${busy} % busy (${availableParallelism()} cores): server ${server} %, load generator ${client} %, rest ${Math.max(0, busy - server - client)} %`;
}

/** The sequencer's counters, from the server's Prometheus endpoint. */
async function journalCounters(url: string): Promise<{ commands: number; batches: number; openOrders: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counter = (name: string): number => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { commands: counter('bourse_engine_commands_total'), batches: counter('bourse_journal_batches_total'), openOrders: counter('bourse_open_orders') };
}

/** Cumulative counts of the server's own latency histogram for answered orders (POST /api/v1/orders, 201), by bucket bound. */
async function orderLatencyBuckets(url: string): Promise<[bound: string, count: number][]> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const pattern = /^bourse_http_request_duration_seconds_bucket\{le="([^"]+)",method="POST",route="\/api\/v1\/orders",status="201"\} (\d+)$/gm;
  return [...text.matchAll(pattern)].map((m) => [m[1]!, Number(m[2])]);
}

/**
 * The server's own view of a phase, from its histogram (request received → response sent): the
 * share answered within 10 ms and the bucket that holds the p99. The difference from what the
 * load generator measures is time spent outside the request handling: in the kernel, waiting
 * for a core, in the generator.
 */
function serverSide(before: [string, number][], after: [string, number][]): string {
  const counts = after.map(([bound, count], i) => [bound, count - (before[i]?.[1] ?? 0)] as const);
  const total = counts.at(-1)?.[1] ?? 0;
  if (total === 0) return 'no orders answered';
  const within10 = counts.find(([bound]) => bound === '0.01')?.[1] ?? 0;
  const p99 = counts.find(([, count]) => count >= 0.99 * total)?.[0] ?? '?';
  return `${((100 * within10) / total).toFixed(1)} % within 10 ms, p99 ≤ ${p99 === '+Inf' ? p99 : `${Number(p99) * 1000} ms`}`;
}

/**
 * Runs a phase for WARMUP_SECONDS unmeasured first: the first half second of a fresh process runs
 * unoptimized code, and its slow answers alone would be about 1 % of a 10 s run, enough to set the
 * p99. Steady state is what a long-running server shows.
 */
async function warmed<T extends { requests: number }>(pid: number, url: string, phase: (seconds: number) => Promise<T>, seconds: number): ReturnType<typeof measured<T>> {
  if (WARMUP_SECONDS > 0) await phase(WARMUP_SECONDS);
  return measured(pid, url, () => phase(seconds));
}

/**
 * Runs a phase and also reports the server's CPU time per successful request, in µs, and how
 * many commands the journal wrote per group commit meanwhile.
 */
async function measured<T extends { requests: number }>(pid: number, url: string, phase: () => Promise<T>): Promise<T & { cpuMicros: number; clientCpuMicros: number; perBatch: number; threads: string; machine: string; openOrders: number; serverSide: string }> {
  const counters = await journalCounters(url);
  const bucketsBefore = await orderLatencyBuckets(url);
  const threadsBefore = serverThreadCpuSeconds(pid);
  const before = cpuSeconds(pid);
  const clientBefore = process.cpuUsage();
  const machineBefore = machineTicks();
  const started = performance.now();
  const result = await phase();
  const seconds = (performance.now() - started) / 1000;
  const serverSeconds = cpuSeconds(pid) - before;
  const cpuMicros = (serverSeconds * 1e6) / result.requests;
  const client = process.cpuUsage(clientBefore);
  const machine = machineShare(machineBefore, machineTicks(), serverSeconds, (client.user + client.system) / 1e6);
  const threads = threadBreakdown(pid, threadsBefore, serverThreadCpuSeconds(pid), result.requests, seconds);
  const after = await journalCounters(url);
  return {
    ...result, cpuMicros, threads, machine, serverSide: serverSide(bucketsBefore, await orderLatencyBuckets(url)), clientCpuMicros: (client.user + client.system) / result.requests,
    perBatch: (after.commands - counters.commands) / Math.max(1, after.batches - counters.batches),
    openOrders: after.openOrders,
  };
}

/**
 * The research's HTTP anchor, as perf.md §2b ran it: autocannon, 50 connections, a 2 s warm-up
 * then 10 s, POSTing its 120-byte order to the do-nothing route of bare-server.ts (the Fastify
 * version Bourse runs, `async () => ({ ok: true })`). Its connections and durations are the
 * research's, not BENCH_*'s, so that the figure compares with the research's 45,000/s.
 */
async function httpAnchor(): Promise<{ perSecond: number; p99: number }> {
  const { child, url } = await spawnServer([fileURLToPath(new URL('./bare-server.js', import.meta.url))]);
  try {
    const body = JSON.stringify({ market: 'BTC-USD', side: 'buy', type: 'limit', price: '64000.5', size: '0.01', clientOrderId: 'abc123' });
    const options = { url: `${url}/order`, method: 'POST', body, headers: { 'content-type': 'application/json' }, connections: 50 };
    await autocannon({ ...options, duration: 2 });
    const result = await autocannon({ ...options, duration: 10 });
    return { perSecond: result.requests.average, p99: result.latency.p99 };
  } finally {
    await stopServer(child);
  }
}

/**
 * The lean generator's closed loop against the do-nothing server of bare-server.ts, with the
 * order bodies, unsigned: requests a second, p99, and the CPU the server and the generator spent
 * per request.
 */
async function httpCeiling(seconds: number): Promise<{ perSecond: number; p99: number; cpuMicros: number; clientCpuMicros: number }> {
  const { child, url } = await spawnServer([fileURLToPath(new URL('./bare-server.js', import.meta.url))]);
  try {
    let counter = 0;
    const request = { method: 'POST', path: '/order', next: () => ({ body: orderBody(counter++), headers: {} }) };
    if (WARMUP_SECONDS > 0) await runLoad(url, HTTP_CONNECTIONS, WARMUP_SECONDS, request);
    const before = cpuSeconds(child.pid!);
    const clientBefore = process.cpuUsage();
    const result = await runLoad(url, HTTP_CONNECTIONS, seconds, request);
    const client = process.cpuUsage(clientBefore);
    printRefusals(result.failures);
    return {
      perSecond: result.ok / seconds, p99: Number(percentile(result.latenciesMs, 0.99).toFixed(2)),
      cpuMicros: ((cpuSeconds(child.pid!) - before) * 1e6) / result.ok, clientCpuMicros: (client.user + client.system) / result.ok,
    };
  } finally {
    await stopServer(child);
  }
}

/** Bourse's HTTP stack without an order: `http`'s client and signing work against GET /api/v1/time. */
async function httpFloor(url: string, credentials: Credentials, seconds: number): Promise<{ perSecond: number; requests: number }> {
  const result = await autocannon({
    url, connections: HTTP_CONNECTIONS, duration: seconds,
    requests: [{
      method: 'GET', path: '/api/v1/time',
      setupRequest: (request: { headers: Record<string, string> }) => {
        request.headers = signedHeaders(credentials, 'GET', '/api/v1/time', '');
        return request;
      },
    }],
  });
  return { perSecond: result['2xx'] / seconds, requests: result['2xx'] };
}

async function httpOrders(url: string, credentials: Credentials, seconds: number): Promise<{ perSecond: number; p99: number; p50: number; errors: number; requests: number }> {
  let counter = 0;
  const result = await autocannon({
    url,
    connections: HTTP_CONNECTIONS,
    duration: seconds,
    requests: [{
      method: 'POST',
      path: '/api/v1/orders',
      setupRequest: (request: { headers: Record<string, string>; body: string }) => {
        const body = flowOrderBody(counter++);
        request.body = body;
        request.headers = { 'content-type': 'application/json', ...signedHeaders(credentials, 'POST', '/api/v1/orders', body) };
        return request;
      },
    }],
  });
  return { perSecond: result['2xx'] / seconds, requests: result['2xx'], p99: result.latency.p99, p50: result.latency.p50, errors: result.non2xx + result.errors };
}

/** The same signed orders with the lighter load generator of http-load.ts. */
async function httpOrdersLean(url: string, credentials: Credentials, seconds: number): Promise<{ perSecond: number; p99: number; p50: number; errors: number; requests: number }> {
  const result = await runLoad(url, HTTP_CONNECTIONS, seconds, signedOrders(credentials));
  printRefusals(result.failures);
  return {
    perSecond: result.ok / seconds, requests: result.ok, errors: result.failed,
    p50: Number(percentile(result.latenciesMs, 0.5).toFixed(2)), p99: Number(percentile(result.latenciesMs, 0.99).toFixed(2)),
  };
}

/**
 * The same orders in signed batches (POST /orders/batch) by the lighter generator: what a market
 * maker requoting a ladder gets. `requests` counts orders, so that CPU is per order; the latency
 * is per batch. A batch that refuses an order answers 200, so the first batch is checked whole.
 */
async function httpBatches(url: string, credentials: Credentials, seconds: number): Promise<{ perSecond: number; p99: number; p50: number; errors: number; requests: number }> {
  const probe = signedBatches(credentials, BATCH_SIZE).next();
  const answer = await fetch(`${url}/api/v1/orders/batch`, { method: 'POST', body: probe.body, headers: { 'content-type': 'application/json', ...probe.headers } });
  const outcomes = ((await answer.json()) as { orders?: { error?: { code: string } }[] }).orders ?? [];
  const refused = outcomes.filter((o) => o.error !== undefined).length;
  if (answer.status !== 200 || outcomes.length !== BATCH_SIZE || refused > 0) throw new Error(`a batch was not placed whole: ${answer.status}, ${refused} of ${outcomes.length} refused`);
  const result = await runLoad(url, HTTP_CONNECTIONS, seconds, signedBatches(credentials, BATCH_SIZE));
  printRefusals(result.failures);
  return {
    perSecond: (result.ok * BATCH_SIZE) / seconds, requests: result.ok * BATCH_SIZE, errors: result.failed,
    p50: Number(percentile(result.latenciesMs, 0.5).toFixed(2)), p99: Number(percentile(result.latenciesMs, 0.99).toFixed(2)),
  };
}

function printRefusals(failures: Map<string, number>): void {
  for (const [what, count] of failures) console.log(`  refused ${count}×: ${what}`);
}

/** The same signed orders offered at a fixed rate (open loop): latency counts from when each was due. */
async function httpOrdersAtRate(url: string, credentials: Credentials, seconds: number, warmupSeconds: number): Promise<{ perSecond: number; offered: number; p99: number; p50: number; p999: number; max: number; errors: number; unanswered: number; requests: number; lagP50: number; lagP99: number; waited: number }> {
  const result = await runRate(url, RATE_CONNECTIONS, seconds, HTTP_RATE, signedOrders(credentials), warmupSeconds);
  printRefusals(result.failures);
  const at = (q: number): number => Number(percentile(result.latenciesMs, q).toFixed(2));
  return {
    // The server's CPU is read over the warm-up too, so it is divided by every answer.
    perSecond: result.ok / seconds, offered: result.offered / seconds, requests: result.answeredWithWarmup, errors: result.failed, unanswered: result.offered - result.requests,
    p50: at(0.5), p99: at(0.99), p999: at(0.999), max: Number((result.latenciesMs.at(-1) ?? NaN).toFixed(2)),
    lagP50: Number(percentile(result.sendLagsMs, 0.5).toFixed(2)), lagP99: Number(percentile(result.sendLagsMs, 0.99).toFixed(2)), waited: result.waitedForConnection,
  };
}

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace('http', 'ws')}/ws`);
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

let authCount = 0;

async function authSocket(url: string, credentials: Credentials): Promise<WebSocket> {
  const socket = await openSocket(url);
  // Each login must differ (the server refuses a replayed one): step the timestamp.
  const timestamp = String(Date.now() + (authCount++ % 500));
  const signature = createHmac('sha256', credentials.secret).update(`${timestamp}GET/ws`).digest('hex');
  await new Promise<void>((resolve, reject) => {
    socket.once('message', (data) => {
      const message = JSON.parse(data.toString()) as { event: string };
      if (message.event === 'authenticated') resolve();
      else reject(new Error(data.toString()));
    });
    socket.send(JSON.stringify({ op: 'auth', key: credentials.key, timestamp, signature }));
  });
  return socket;
}

async function wsOrders(url: string, credentials: Credentials, seconds: number): Promise<{ perSecond: number; refused: number; requests: number }> {
  const sockets = await Promise.all(Array.from({ length: 8 }, () => authSocket(url, credentials)));
  let acknowledged = 0;
  let refused = 0;
  let counting = true;
  let counter = 0;
  for (const socket of sockets) {
    const sendOne = (): void => socket.send(`{"op":"place","id":${counter},"order":${flowOrderBody(counter++)}}`);
    socket.on('message', (data) => {
      const text = data.toString();
      if (!text.startsWith('{"event":"placed"') && !text.startsWith('{"event":"error"')) return;
      if (counting && text.startsWith('{"event":"placed"')) acknowledged += 1;
      else if (counting) refused += 1;
      if (counting) sendOne();
    });
    // 200 orders in flight per socket.
    for (let i = 0; i < 200; i++) sendOne();
  }
  await new Promise((r) => setTimeout(r, seconds * 1000));
  counting = false;
  const perSecond = acknowledged / seconds;
  await new Promise((r) => setTimeout(r, 500));
  for (const socket of sockets) socket.close();
  return { perSecond, refused, requests: acknowledged };
}

async function fanout(url: string, credentials: Credentials): Promise<{ clients: number; p50: number; p99: number; deliveries: number }> {
  if (FANOUT_BOOK_ORDERS > 0) await restDeepBook(url, credentials, FANOUT_BOOK_ORDERS);
  const subscribers: WebSocket[] = [];
  const arrivals: { seq: number; at: number }[][] = [];
  for (let i = 0; i < FANOUT_CLIENTS; i++) {
    const socket = await openSocket(url);
    const mine: { seq: number; at: number }[] = [];
    arrivals.push(mine);
    socket.on('message', (data) => {
      const text = data.toString();
      const match = /"seq":(\d+)/.exec(text);
      if (match !== null && text.startsWith(`{"channel":"${FANOUT_CHANNEL}"`)) mine.push({ seq: Number(match[1]), at: performance.now() });
    });
    socket.send(JSON.stringify({ op: 'subscribe', channel: FANOUT_CHANNEL, market: 'BTC-USDT' }));
    subscribers.push(socket);
  }
  await new Promise((r) => setTimeout(r, 1_000));
  for (const mine of arrivals) mine.length = 0;
  // 200 orders a second for 5 seconds from one trading socket; remember when each was sent.
  const trading = await authSocket(url, credentials);
  const sentAt = new Map<number, number>();
  const seqOf = new Map<number, number>();
  trading.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { event?: string; id?: number; order?: { id: string } };
    if (message.event === 'placed' && message.id !== undefined && message.order !== undefined) seqOf.set(message.id, Number(message.order.id));
  });
  for (let i = 0; i < 1_000; i++) {
    sentAt.set(i, performance.now());
    trading.send(`{"op":"place","id":${i},"order":${orderBody(i)}}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 2_000));
  const latencies: number[] = [];
  for (const [id, sent] of sentAt) {
    const seq = seqOf.get(id);
    if (seq === undefined) continue;
    for (const mine of arrivals) {
      const first = mine.find((a) => a.seq >= seq);
      if (first !== undefined) latencies.push(first.at - sent);
    }
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  trading.close();
  for (const socket of subscribers) socket.terminate();
  return { clients: subscribers.length, p50: at(0.5), p99: at(0.99), deliveries: latencies.length };
}

/** Rests `count` buys of 0.001 BTC at 50.00 USDT and the 4,999 ticks below, over one socket, 200 in flight. */
async function restDeepBook(url: string, credentials: Credentials, count: number): Promise<void> {
  const socket = await authSocket(url, credentials);
  let sent = 0;
  let answered = 0;
  await new Promise<void>((resolve, reject) => {
    const sendOne = (): void => {
      const cents = 5_000 - (sent % 5_000);
      socket.send(`{"op":"place","id":${sent},"order":{"market":"BTC-USDT","side":"buy","type":"limit","price":"${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}","quantity":"0.0010"}}`);
      sent += 1;
    };
    socket.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('{"event":"error"')) return reject(new Error(`a deep book's order was refused: ${text}`));
      if (!text.startsWith('{"event":"placed"')) return;
      answered += 1;
      if (answered === count) resolve();
      else if (sent < count) sendOne();
    });
    for (let i = 0; i < Math.min(200, count); i++) sendOne();
  });
  socket.close();
}

function round1(value: number): number | null {
  return Number.isFinite(value) ? Math.round(value * 10) / 10 : null;
}

interface Fresh { url: string; pid: number; credentials: Credentials }

/**
 * Runs one phase against a server of its own, on an empty data folder: each phase starts from an
 * empty book and journal, whatever ran before it, so a phase run alone measures what it measures
 * in the full run.
 */
async function withServer<T>(phase: (server: Fresh) => Promise<T>): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-api-bench-'));
  const { child, url } = await startServer(dataDir);
  try {
    const credentials = await trader(url, dataDir, 'bench@example.com');
    return await phase({ url, pid: child.pid!, credentials });
  } finally {
    await stopServer(child);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

type Figures = Record<string, number | null>;

/** Every phase once: prints its lines and returns the figures of the last JSON line. */
async function runOnce(): Promise<Figures> {
  const skipped = { perSecond: NaN, p50: NaN, p99: NaN, errors: 0, refused: 0, requests: 0, cpuMicros: NaN, clientCpuMicros: NaN, perBatch: NaN, threads: '', machine: '', openOrders: NaN, serverSide: '' };
  const anchor = PHASES.has('anchor') ? await httpAnchor() : { perSecond: NaN, p99: NaN };
  if (PHASES.has('anchor')) {
    const share = anchor.perSecond / RESEARCH_ANCHOR_PER_SEC;
    console.log(`Research anchor (perf.md §2b: autocannon, 50 connections, do-nothing Fastify POST; ${RESEARCH_ANCHOR_PER_SEC.toLocaleString('en-US')}/s on the research host): ${Math.round(anchor.perSecond).toLocaleString('en-US')}/s, p99 ${anchor.p99} ms: ${(100 * share).toFixed(0)} % of the research host's; the HTTP target, 20,000/s, is ${((100 * 20_000) / RESEARCH_ANCHOR_PER_SEC).toFixed(0)} % of the research's anchor`);
  }
  const ceiling = PHASES.has('ceiling') ? await httpCeiling(HTTP_SECONDS) : { perSecond: NaN, p99: NaN, cpuMicros: NaN, clientCpuMicros: NaN };
  if (PHASES.has('ceiling')) console.log(`HTTP ceiling (bare Fastify, POST parses the order and does nothing else; lighter load generator, ${HTTP_CONNECTIONS} connections): ${Math.round(ceiling.perSecond).toLocaleString('en-US')}/s, p99 ${ceiling.p99} ms, server CPU ${ceiling.cpuMicros.toFixed(1)} µs per request (load generator ${ceiling.clientCpuMicros.toFixed(1)} µs)`);
  const ofCeiling = (perSecond: number): string => (PHASES.has('ceiling') ? `, ${((100 * perSecond) / ceiling.perSecond).toFixed(0)} % of the ceiling` : '');
  // autocannon against autocannon: the signed orders' share of the do-nothing route, as the target is of the research's.
  const ofAnchor = (perSecond: number): string => (PHASES.has('anchor') ? `, ${((100 * perSecond) / anchor.perSecond).toFixed(0)} % of the anchor` : '');
  const floor = PHASES.has('floor') ? await withServer(({ url, pid, credentials }) => warmed(pid, url, (seconds) => httpFloor(url, credentials, seconds), 5)) : skipped;
  if (PHASES.has('floor')) console.log(`HTTP floor (GET /api/v1/time, same client): ${Math.round(floor.perSecond).toLocaleString('en-US')}/s, server CPU ${floor.cpuMicros.toFixed(1)} µs per request (load generator ${floor.clientCpuMicros.toFixed(1)} µs)`);
  const http = PHASES.has('http') ? await withServer(({ url, pid, credentials }) => warmed(pid, url, (seconds) => httpOrders(url, credentials, seconds), HTTP_SECONDS)) : skipped;
  if (PHASES.has('http')) {
    console.log(`HTTP signed orders, autocannon, ${HTTP_CONNECTIONS} connections: ${Math.round(http.perSecond).toLocaleString('en-US')}/s${ofAnchor(http.perSecond)}${ofCeiling(http.perSecond)}, p50 ${http.p50} ms, p99 ${http.p99} ms, ${http.errors} non-2xx, server CPU ${http.cpuMicros.toFixed(1)} µs per order (load generator ${http.clientCpuMicros.toFixed(1)} µs), ${http.perBatch.toFixed(1)} commands per journal commit`);
    console.log(`  server CPU by thread, µs per order (how busy): ${http.threads}; ${http.openOrders} orders open at the end`);
    console.log(`  ${http.machine}`);
    console.log(`  server-side latency: ${http.serverSide}`);
  }
  const lean = PHASES.has('lean') ? await withServer(({ url, pid, credentials }) => warmed(pid, url, (seconds) => httpOrdersLean(url, credentials, seconds), HTTP_SECONDS)) : skipped;
  if (PHASES.has('lean')) {
    console.log(`HTTP signed orders, lighter load generator, ${HTTP_CONNECTIONS} connections: ${Math.round(lean.perSecond).toLocaleString('en-US')}/s${ofCeiling(lean.perSecond)}, p50 ${lean.p50} ms, p99 ${lean.p99} ms, ${lean.errors} non-2xx, server CPU ${lean.cpuMicros.toFixed(1)} µs per order (load generator ${lean.clientCpuMicros.toFixed(1)} µs), ${lean.perBatch.toFixed(1)} commands per journal commit`);
    console.log(`  server CPU by thread, µs per order (how busy): ${lean.threads}; ${lean.openOrders} orders open at the end`);
    console.log(`  ${lean.machine}`);
    console.log(`  server-side latency: ${lean.serverSide}`);
  }
  const batch = PHASES.has('batch') ? await withServer(({ url, pid, credentials }) => warmed(pid, url, (seconds) => httpBatches(url, credentials, seconds), HTTP_SECONDS)) : skipped;
  if (PHASES.has('batch')) {
    console.log(`HTTP signed orders in batches of ${BATCH_SIZE} (POST /orders/batch), lighter load generator, ${HTTP_CONNECTIONS} connections: ${Math.round(batch.perSecond).toLocaleString('en-US')} orders/s, per batch p50 ${batch.p50} ms, p99 ${batch.p99} ms, ${batch.errors} non-2xx, server CPU ${batch.cpuMicros.toFixed(1)} µs per order (load generator ${batch.clientCpuMicros.toFixed(1)} µs), ${batch.perBatch.toFixed(1)} commands per journal commit`);
    console.log(`  server CPU by thread, µs per order (how busy): ${batch.threads}; ${batch.openOrders} orders open at the end`);
    console.log(`  ${batch.machine}`);
  }
  // Warmed in a closed loop first: an open loop at a rate near the capacity would never work off
  // the backlog that the first, unoptimized second leaves. Then the open loop's own lead-in.
  const rate = PHASES.has('rate') ? await withServer(async ({ url, pid, credentials }) => {
    await httpOrdersLean(url, credentials, WARMUP_SECONDS);
    return measured(pid, url, () => httpOrdersAtRate(url, credentials, HTTP_SECONDS, WARMUP_SECONDS));
  }) : { ...skipped, offered: NaN, p999: NaN, max: NaN, unanswered: 0, lagP50: NaN, lagP99: NaN, waited: 0 };
  if (PHASES.has('rate')) {
    console.log(`HTTP signed orders offered at ${Math.round(rate.offered).toLocaleString('en-US')}/s (open loop, up to ${RATE_CONNECTIONS} connections): ${Math.round(rate.perSecond).toLocaleString('en-US')}/s answered 2xx, latency from when due p50 ${rate.p50} ms, p99 ${rate.p99} ms, p99.9 ${rate.p999} ms, max ${rate.max} ms, ${rate.errors} non-2xx, ${rate.unanswered} unanswered, server CPU ${rate.cpuMicros.toFixed(1)} µs per order (load generator ${rate.clientCpuMicros.toFixed(1)} µs), ${rate.perBatch.toFixed(1)} commands per journal commit`);
    console.log(`  server CPU by thread, µs per order (how busy): ${rate.threads}; ${rate.openOrders} orders open at the end`);
    console.log(`  ${rate.machine}`);
    // The generator shares the two cores with the server: a request it sends late counts as late.
    console.log(`  sent after they were due (the generator's own delay): p50 ${rate.lagP50} ms, p99 ${rate.lagP99} ms; ${rate.waited.toLocaleString('en-US')} waited for a free connection`);
    console.log(`  server-side latency: ${rate.serverSide}`);
  }
  const ws = PHASES.has('ws') ? await withServer(({ url, pid, credentials }) => warmed(pid, url, (seconds) => wsOrders(url, credentials, seconds), 5)) : skipped;
  if (PHASES.has('ws')) {
    console.log(`WebSocket orders: ${Math.round(ws.perSecond).toLocaleString('en-US')}/s, ${ws.refused} refused, server CPU ${ws.cpuMicros.toFixed(1)} µs per order, ${ws.perBatch.toFixed(1)} commands per journal commit`);
    console.log(`  server CPU by thread, µs per order (how busy): ${ws.threads}; ${ws.openOrders} orders open at the end`);
    console.log(`  ${ws.machine}`);
  }
  const fan = PHASES.has('fanout') ? await withServer(({ url, credentials }) => fanout(url, credentials)) : { clients: 0, p50: NaN, p99: NaN, deliveries: 0 };
  if (PHASES.has('fanout')) console.log(`${FANOUT_CHANNEL === 'depth' ? 'Depth' : 'Book (order by order)'} fan-out: ${fan.clients} clients, ${fan.deliveries.toLocaleString('en-US')} deliveries, p50 ${fan.p50.toFixed(2)} ms, p99 ${fan.p99.toFixed(2)} ms (order sent → ${FANOUT_CHANNEL} received)`);
  return {
    http_anchor_per_sec: Math.round(anchor.perSecond), host_vs_research: Number.isFinite(anchor.perSecond) ? Number((anchor.perSecond / RESEARCH_ANCHOR_PER_SEC).toFixed(2)) : NaN,
    http_ceiling_per_sec: Math.round(ceiling.perSecond), http_ceiling_p99_ms: ceiling.p99, http_ceiling_cpu_us: round1(ceiling.cpuMicros),
    http_floor_per_sec: Math.round(floor.perSecond), http_floor_cpu_us: round1(floor.cpuMicros), http_order_cpu_us: round1(http.cpuMicros), ws_order_cpu_us: round1(ws.cpuMicros), http_orders_per_sec: Math.round(http.perSecond), http_p99_ms: http.p99, http_p50_ms: http.p50, http_errors: http.errors,
    http_lean_orders_per_sec: Math.round(lean.perSecond), http_lean_p99_ms: lean.p99, http_lean_p50_ms: lean.p50, http_lean_errors: lean.errors,
    http_batch_orders_per_sec: Math.round(batch.perSecond), http_batch_p99_ms: batch.p99, http_batch_errors: batch.errors,
    http_rate_offered_per_sec: Math.round(rate.offered), http_rate_answered_per_sec: Math.round(rate.perSecond), http_rate_p50_ms: rate.p50, http_rate_p99_ms: rate.p99, http_rate_p999_ms: rate.p999, http_rate_max_ms: rate.max, http_rate_send_lag_p99_ms: rate.lagP99, http_rate_errors: rate.errors + rate.unanswered,
    ws_orders_per_sec: Math.round(ws.perSecond), ws_refused: ws.refused, fanout_clients: fan.clients, fanout_p99_ms: Number(fan.p99.toFixed(2)),
    fanout_p50_ms: Number(fan.p50.toFixed(2)),
  };
}

/** Counts of failures add up over the runs; every other figure is the median of its runs. */
function combineRuns(runs: Figures[]): Figures {
  const combined: Figures = {};
  for (const key of Object.keys(runs[0]!)) {
    const values = runs.map((run) => run[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    if (values.length === 0) combined[key] = null;
    else if (key.endsWith('_errors') || key.endsWith('_refused')) combined[key] = values.reduce((a, b) => a + b, 0);
    else combined[key] = Number(median(values).toFixed(2));
  }
  return combined;
}

async function main(): Promise<void> {
  console.log(`Bourse API benchmark: each phase against a fresh server in its own process on loopback; load from this one; order flow: ${ORDER_FLOW}. Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}`);
  const runs: Figures[] = [];
  for (let run = 1; run <= RUNS; run++) {
    if (RUNS > 1) console.log(`Run ${run} of ${RUNS}`);
    const figures = await runOnce();
    runs.push(figures);
    if (RUNS > 1) console.log(JSON.stringify(figures));
  }
  if (RUNS > 1) console.log(`Medians of ${RUNS} runs (failures: totals)`);
  console.log(JSON.stringify({ ...combineRuns(runs), runs: RUNS, order_flow: ORDER_FLOW }));
}

void main();
