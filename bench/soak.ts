/**
 * `npm run soak`: the server under a steady, mixed load for minutes, judged by the research's
 * goals P3–P5 (../shared/research/reliability.md §7.3). Opt-in and bounded: not part of `npm test`.
 *
 * A fresh server (bench-server.ts: the defaults, rate limits raised) and SOAK_TRADERS funded
 * traders. An open loop offers SOAK_RATE requests a second (default 5,000, P3's rate) for
 * SOAK_MINUTES (default 10) over up to SOAK_CONNECTIONS keep-alive connections, each request
 * signed afresh and its latency counted from when it was due. What each request is, drawn with a
 * seeded generator (SOAK_SEED):
 *   50 % a resting limit order 1–50 ticks from the middle, on its side;
 *   25 % a cancel of that trader's oldest order still believed open (a place when it has none);
 *   15 % an immediate-or-cancel order across the spread, which trades;
 *   10 % a read: open orders, ledger entries, depth or the account's trades.
 * A trader with more than SOAK_OPEN_MAX orders believed open cancels instead of placing, so the
 * book stays bounded and memory can be judged. SOAK_SUBSCRIBERS sockets (default 50) follow the
 * market's trades and check that they see every trade once, in order.
 *
 * Every SOAK_WINDOW_SECONDS (default 60) a line: answers and latency in that window, the
 * generator's own lateness, the server's memory, event-loop delay p99, open orders and CPU.
 * At the end, after the first SOAK_WARMUP_SECONDS (default 10) of load:
 *   P3: latency from when due p50 ≤ 5 ms, p99 ≤ 20 ms, p99.9 ≤ 50 ms; no answer other than 2xx
 *       except a cancel finding its order already closed; every request answered;
 *   P4: every subscriber saw every trade of the run, once and in order;
 *   P5: resident memory grew ≤ 10 % from the end of the first window to the end; event-loop
 *       delay p99 ≤ 20 ms in every window after the first (prom-client's figure less its 10 ms
 *       sampling interval, which it includes);
 *   recovery: the server stops gracefully, `bourse verify` replays the journal from genesis to
 *       the snapshot's state hash with no invariant broken, and after a restart a sample of up to
 *       2,000 acknowledged orders (reservoir-sampled over the run) are all there, as is the last trade.
 * Prints a verdict per goal and a last JSON line; exits 1 if a correctness check failed (an error
 * answer, an unanswered request, a missed trade, a failed verify, a lost order), 0 otherwise: the
 * latency and memory verdicts are measurements of the host, reported, not asserted.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { Connection } from './http-load.js';
import type { LoadRequest } from './http-load.js';
import { cpuSeconds, signedHeaders, startServer, stopServer, trader } from './bench-server.js';
import { mulberry32 } from './workload.js';
import type { Credentials } from './bench-server.js';

const RATE = Number(process.env.SOAK_RATE ?? 5_000);
const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const WINDOW_SECONDS = Number(process.env.SOAK_WINDOW_SECONDS ?? 60);
const WARMUP_SECONDS = Number(process.env.SOAK_WARMUP_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.SOAK_CONNECTIONS ?? 128);
const TRADERS = Number(process.env.SOAK_TRADERS ?? 4);
const SUBSCRIBERS = Number(process.env.SOAK_SUBSCRIBERS ?? 50);
const OPEN_MAX = Number(process.env.SOAK_OPEN_MAX ?? 2_500);
const SEED = Number(process.env.SOAK_SEED ?? 1);
const SAMPLE_MAX = 2_000;
/** prom-client's event-loop sampling interval (its default), which its delay figures include. */
const LOOP_SAMPLING_MS = 10;
const MARKET = 'BTC-USDT';
/** The middle of the book, in cents: resting orders sit 1–50 ticks (0.01) either side of it. */
const MIDDLE = 10_000;
/**
 * SOAK_MIX, e.g. `place:50,cancel:25,take:15,read:10` (the default): each kind's share, as
 * cumulative bounds for one uniform draw.
 */
const MIX = (() => {
  const shares: Record<Kind, number> = { place: 50, cancel: 25, take: 15, read: 10 };
  for (const part of (process.env.SOAK_MIX ?? '').split(',').filter((p) => p !== '')) {
    const [kind, share] = part.split(':');
    if (!(kind! in shares) || !(Number(share) >= 0)) throw new Error(`SOAK_MIX: ${part}? expected kind:share with kind place, cancel, take or read`);
    shares[kind as Kind] = Number(share);
  }
  const sum = shares.place + shares.cancel + shares.take + shares.read;
  return { place: shares.place / sum, cancel: (shares.place + shares.cancel) / sum, take: (shares.place + shares.cancel + shares.take) / sum, shares };
})();
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

const cents = (value: number): string => `${Math.floor(value / 100)}.${String(value % 100).padStart(2, '0')}`;

/** Latencies in 0.1 ms buckets up to 60 s: percentiles over millions of answers in fixed memory. */
class Histogram {
  private readonly buckets = new Uint32Array(600_001);
  count = 0;

  add(ms: number): void {
    this.buckets[Math.min(this.buckets.length - 1, Math.max(0, Math.round(ms * 10)))]! += 1;
    this.count += 1;
  }

  /** The smallest latency (ms, 0.1 ms steps) at or under which a share `q` of the answers fall. */
  at(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) return i / 10;
    }
    return NaN;
  }
}

type Kind = 'place' | 'cancel' | 'take' | 'read';
interface Tag { kind: Kind; trader: number }

/** The mixed workload: builds each request and learns from each answer which orders are open. */
class Workload {
  private readonly random = mulberry32(SEED);
  /** The sample's own draws, which follow the answers' timing, so that the request stream stays the seed's. */
  private readonly sampling = mulberry32(SEED ^ 0x5eed);
  /** Per trader, ids of orders it placed that rest, oldest first, as far as it knows. */
  private readonly open: number[][];
  private readonly heads: number[];
  private nextTrader = 0;
  /** Orders carry a fresh client order id, so that no two requests sign alike (the server refuses a replay). */
  private orders = 0;
  /** Reads within one millisecond differ by their limit, for the same reason. */
  private readMs = 0;
  private readsThisMs = 0;
  /** A uniform sample of acknowledged orders (reservoir), to look for after the restart. */
  readonly sample: { trader: number; id: number }[] = [];
  acknowledged = 0;

  constructor(private readonly traders: Credentials[]) {
    this.open = traders.map(() => []);
    this.heads = traders.map(() => 0);
  }

  private openCount(trader: number): number {
    return this.open[trader]!.length - this.heads[trader]!;
  }

  next(): { body: string; headers: Record<string, string>; method: string; path: string; tag: Tag } {
    const trader = this.nextTrader;
    this.nextTrader = (this.nextTrader + 1) % this.traders.length;
    const now = Date.now();
    const draw = this.random();
    const opened = this.openCount(trader);
    if ((draw >= MIX.place && draw < MIX.cancel && opened > 0) || opened > OPEN_MAX) {
      const id = this.open[trader]![this.heads[trader]!]!;
      this.heads[trader]! += 1;
      if (this.heads[trader]! > 4_096) {
        this.open[trader]!.splice(0, this.heads[trader]!);
        this.heads[trader] = 0;
      }
      return this.signed(trader, 'DELETE', `/api/v1/orders/${id}`, '', 'cancel', now);
    }
    const buy = this.random() < 0.5;
    if (draw < MIX.cancel) {
      const ticks = 1 + Math.floor(this.random() * 50);
      const body = JSON.stringify({ market: MARKET, side: buy ? 'buy' : 'sell', type: 'limit', price: cents(buy ? MIDDLE - ticks : MIDDLE + ticks), quantity: this.quantity(), client_order_id: `soak-${this.orders++}` });
      return this.signed(trader, 'POST', '/api/v1/orders', body, 'place', now);
    }
    if (draw < MIX.take) {
      const body = JSON.stringify({ market: MARKET, side: buy ? 'buy' : 'sell', type: 'limit', time_in_force: 'IOC', price: cents(buy ? MIDDLE + 60 : MIDDLE - 60), quantity: this.quantity(), client_order_id: `soak-${this.orders++}` });
      return this.signed(trader, 'POST', '/api/v1/orders', body, 'take', now);
    }
    if (now !== this.readMs) {
      this.readMs = now;
      this.readsThisMs = 0;
    }
    const limit = 20 + this.readsThisMs++;
    const reads = [`/api/v1/orders?limit=${limit}`, `/api/v1/ledger?limit=${limit}`, `/api/v1/markets/${MARKET}/depth?limit=${limit}`, `/api/v1/trades?limit=${limit}`];
    return this.signed(trader, 'GET', reads[Math.floor(this.random() * reads.length)]!, '', 'read', now);
  }

  private quantity(): string {
    return `0.00${10 + Math.floor(this.random() * 90)}`;
  }

  /** Signed at `now`, the millisecond the read's limit was chosen for. */
  private signed(trader: number, method: string, path: string, body: string, kind: Kind, now: number): { body: string; headers: Record<string, string>; method: string; path: string; tag: Tag } {
    return { body, method, path, headers: signedHeaders(this.traders[trader]!, method, path, body, now), tag: { kind, trader } };
  }

  answer(status: number, body: string, tag: Tag): void {
    if (status !== 201 || (tag.kind !== 'place' && tag.kind !== 'take')) return;
    const order = JSON.parse(body) as { id: string; status: string };
    const id = Number(order.id);
    this.acknowledged += 1;
    if (this.sample.length < SAMPLE_MAX) this.sample.push({ trader: tag.trader, id });
    else {
      const slot = Math.floor(this.sampling() * this.acknowledged);
      if (slot < SAMPLE_MAX) this.sample[slot] = { trader: tag.trader, id };
    }
    if (tag.kind === 'place' && (order.status === 'NEW' || order.status === 'PARTIALLY_FILLED')) this.open[tag.trader]!.push(id);
  }
}

/** A socket following the market's trades: each trade id must be the previous one plus one. */
class TradeFollower {
  first: number | null = null;
  last: number | null = null;
  seen = 0;
  outOfOrder = 0;
  closedEarly: string | null = null;
  private readonly socket: WebSocket;
  readonly ready: Promise<void>;
  private stopping = false;

  constructor(url: string) {
    this.socket = new WebSocket(`${url.replace('http', 'ws')}/ws`);
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.on('message', (data) => {
        const message = JSON.parse(data.toString()) as { event?: string; channel?: string; trades?: { id: string }[] };
        if (message.event === 'subscribed') resolve();
        if (message.channel !== 'trades') return;
        for (const trade of message.trades!) {
          const id = Number(trade.id);
          if (this.last !== null && id !== this.last + 1) this.outOfOrder += 1;
          this.first ??= id;
          this.last = id;
          this.seen += 1;
        }
      });
      this.socket.once('open', () => this.socket.send(JSON.stringify({ op: 'subscribe', channel: 'trades', market: MARKET })));
    });
    this.socket.on('close', (code, reason) => {
      if (!this.stopping) this.closedEarly = `${code} ${reason.toString()}`;
    });
  }

  close(): void {
    this.stopping = true;
    this.socket.close();
  }
}

/** A window's figures. */
interface Window { answers: number; errors: Map<string, number>; latency: Histogram; lag: Histogram }
const newWindow = (): Window => ({ answers: 0, errors: new Map(), latency: new Histogram(), lag: new Histogram() });

async function scrape(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string): number => Number(new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rssMb: value('process_resident_memory_bytes') / 1_048_576,
    heapMb: value('nodejs_heap_size_used_bytes') / 1_048_576,
    // prom-client samples with a 10 ms timer and records whole intervals: an idle loop reads 10 ms.
    loopP99Ms: value('nodejs_eventloop_lag_p99_seconds') * 1_000 - LOOP_SAMPLING_MS,
    openOrders: value('bourse_open_orders'),
  };
}

async function signedGetStatus(url: string, credentials: Credentials, path: string): Promise<number> {
  const response = await fetch(`${url}${path}`, { headers: signedHeaders(credentials, 'GET', path, '') });
  await response.arrayBuffer();
  return response.status;
}

async function lastTradeId(url: string): Promise<number> {
  const response = await fetch(`${url}/api/v1/markets/${MARKET}/trades?limit=1`);
  const { trades } = (await response.json()) as { trades: { id: string }[] };
  return trades.length === 0 ? 0 : Number(trades[0]!.id);
}

const fixed = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');

async function main(): Promise<void> {
  console.log(`Bourse soak: ${RATE.toLocaleString('en-US')} requests/s offered for ${MINUTES} min (open loop, up to ${CONNECTIONS} connections), ${TRADERS} traders, ${SUBSCRIBERS} trade subscribers, seed ${SEED}. Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-soak-'));
  let { child, url } = await startServer(dataDir);
  const pid = child.pid!;
  const credentials: Credentials[] = [];
  for (let i = 0; i < TRADERS; i++) credentials.push(await trader(url, dataDir, `soak-${i}@example.com`));
  const followers = Array.from({ length: SUBSCRIBERS }, () => new TradeFollower(url));
  await Promise.all(followers.map((f) => f.ready));
  const tradesBefore = await lastTradeId(url);

  const workload = new Workload(credentials);
  const total = Math.floor(MINUTES * 60 * RATE);
  const perWindow = Math.max(1, Math.round(WINDOW_SECONDS * RATE));
  // Requests belong to the window in which they were due, and a window is reported once every
  // request due in it is answered (or at the end): a late answer counts where it was due.
  const windows = Array.from({ length: Math.ceil(total / perWindow) }, newWindow);
  const windowSize = (k: number): number => Math.min(total, (k + 1) * perWindow) - k * perWindow;
  const overall = newWindow();
  const counted = Math.floor(WARMUP_SECONDS * RATE);
  const request: LoadRequest = {
    method: 'GET', path: '/', next: () => workload.next(),
    answer: (status, body, tag) => workload.answer(status, body, tag as Tag),
  };
  const start = performance.now();
  const backlog: number[] = [];
  let backlogHead = 0;
  const free: Connection[] = [];
  let unexpected = 0;
  let answeredCount = 0;
  const indexOf = (dueAt: number): number => Math.round(((dueAt - start) * RATE) / 1_000);
  const answered = (connection: Connection, status: number, body: string, dueAt: number, sentAt: number): void => {
    const now = performance.now();
    const index = indexOf(dueAt);
    answeredCount += 1;
    // A cancel that finds its order already filled is the market's doing, not an error.
    const error = status >= 300 && !(status === 404 && body.includes('UNKNOWN_ORDER'));
    if (error) unexpected += 1;
    for (const w of index >= counted ? [windows[Math.floor(index / perWindow)]!, overall] : [windows[Math.floor(index / perWindow)]!]) {
      w.answers += 1;
      w.latency.add(now - dueAt);
      w.lag.add(sentAt - dueAt);
      if (error) {
        const what = `${status} ${body.slice(0, 160)}`;
        w.errors.set(what, (w.errors.get(what) ?? 0) + 1);
      }
    }
    if (backlogHead < backlog.length) connection.send(backlog[backlogHead++]!);
    else free.push(connection);
  };
  const pool: Connection[] = [];
  await new Promise<void>((resolve) => {
    let connected = 0;
    for (let i = 0; i < CONNECTIONS; i++) {
      pool.push(new Connection(new URL(url), request, answered, (connection) => {
        free.push(connection);
        if (++connected === CONNECTIONS) resolve();
      }));
    }
  });

  const server: { rssMb: number; loopP99Ms: number }[] = [];
  let offered = 0;
  let reported = 0;
  let lastReport = performance.now();
  let cpuBefore = cpuSeconds(pid);
  let ownBefore = process.cpuUsage();
  const report = async (w: Window): Promise<void> => {
    const seconds = (performance.now() - lastReport) / 1_000;
    lastReport = performance.now();
    const metrics = await scrape(url);
    const cpu = cpuSeconds(pid);
    const busy = (100 * (cpu - cpuBefore)) / seconds;
    cpuBefore = cpu;
    const own = process.cpuUsage(ownBefore);
    ownBefore = process.cpuUsage();
    const ownBusy = (100 * (own.user + own.system)) / 1e6 / seconds;
    server.push({ rssMb: metrics.rssMb!, loopP99Ms: metrics.loopP99Ms! });
    const errors = [...w.errors.values()].reduce((a, b) => a + b, 0);
    console.log(`  ${String(server.length).padStart(3)}: ${w.answers.toLocaleString('en-US')} answered, ${errors} errors, latency p50 ${fixed(w.latency.at(0.5))} p99 ${fixed(w.latency.at(0.99))} p99.9 ${fixed(w.latency.at(0.999))} max ${fixed(w.latency.at(1))} ms (generator late p99 ${fixed(w.lag.at(0.99))} ms); server RSS ${fixed(metrics.rssMb!, 0)} MB, heap ${fixed(metrics.heapMb!, 0)} MB, event loop p99 ${fixed(metrics.loopP99Ms!)} ms, ${metrics.openOrders} open orders, CPU ${fixed(busy, 0)} % of a core (this process ${fixed(ownBusy, 0)} %)`);
    for (const [what, count] of w.errors) console.log(`       ${count}× ${what}`);
  };

  let reporting: Promise<void> = Promise.resolve();
  /** Reports each window whose requests have all been offered and answered. */
  const reportDone = (): void => {
    while (reported < windows.length && windows[reported]!.answers === windowSize(reported)) {
      const w = windows[reported++]!;
      reporting = reporting.then(() => report(w));
    }
  };
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) * RATE) / 1_000));
      for (; offered < due; offered++) {
        const dueAt = start + (offered * 1_000) / RATE;
        let connection = free.pop();
        while (connection?.gone === true) connection = free.pop();
        if (connection !== undefined) connection.send(dueAt);
        else backlog.push(dueAt);
      }
      reportDone();
      if (offered < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const deadline = performance.now() + 10_000;
  while (answeredCount < total && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
    reportDone();
  }
  const unanswered = total - answeredCount;
  while (reported < windows.length) {
    const w = windows[reported++]!;
    reporting = reporting.then(() => report(w));
  }
  await reporting;
  for (const connection of pool) connection.end();

  await new Promise((r) => setTimeout(r, 1_000));
  const tradesAfter = await lastTradeId(url);
  const runTrades = tradesAfter - tradesBefore;
  const followersMissing = followers.filter((f) => f.seen !== runTrades || f.outOfOrder > 0 || f.closedEarly !== null || (runTrades > 0 && (f.first !== tradesBefore + 1 || f.last !== tradesAfter)));
  for (const follower of followers) follower.close();

  const stopCode = await stopServer(child);
  const verify = spawnSync(process.execPath, [CLI, 'verify', '--data', dataDir], { encoding: 'utf8' });
  const verified = (() => {
    try {
      return JSON.parse(verify.stdout) as { lastSeq: number; snapshotAgrees: boolean; violations: string[]; replaySeconds: number };
    } catch {
      return null;
    }
  })();
  const restartBegan = performance.now();
  ({ child, url } = await startServer(dataDir));
  const restartSeconds = (performance.now() - restartBegan) / 1_000;
  let lost = 0;
  for (const { trader: owner, id } of workload.sample) {
    if (await signedGetStatus(url, credentials[owner]!, `/api/v1/orders/${id}`) !== 200) lost += 1;
  }
  const tradesRestarted = await lastTradeId(url);
  await stopServer(child);
  if (process.env.SOAK_KEEP === undefined) rmSync(dataDir, { recursive: true, force: true });
  else console.log(`data folder kept: ${dataDir}`);

  const p50 = overall.latency.at(0.5);
  const p99 = overall.latency.at(0.99);
  const p999 = overall.latency.at(0.999);
  const errors = [...overall.errors.values()].reduce((a, b) => a + b, 0);
  const baseline = server[0]?.rssMb ?? NaN;
  const rssEnd = server.at(-1)?.rssMb ?? NaN;
  const rssGrowth = (100 * (rssEnd - baseline)) / baseline;
  // The first window holds the warm-up: memory is judged from its end, the loop after it.
  const loopWorst = Math.max(...(server.length > 1 ? server.slice(1) : server).map((w) => w.loopP99Ms));
  const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const checks = {
    p3Latency: p50 <= 5 && p99 <= 20 && p999 <= 50,
    p3Answers: unexpected === 0 && unanswered === 0,
    p4Trades: followersMissing.length === 0,
    p5Memory: rssGrowth <= 10,
    p5Loop: loopWorst <= 20,
    recovery: stopCode === 0 && verify.status === 0 && verified !== null && verified.snapshotAgrees && verified.violations.length === 0 && lost === 0 && tradesRestarted === tradesAfter,
  };
  console.log(`After the ${WARMUP_SECONDS} s warm-up: ${overall.answers.toLocaleString('en-US')} answers, latency from when due p50 ${fixed(p50)} ms, p99 ${fixed(p99)} ms, p99.9 ${fixed(p999)} ms, max ${fixed(overall.latency.at(1))} ms; generator late p99 ${fixed(overall.lag.at(0.99))} ms`);
  console.log(`P3 latency (p50 ≤ 5, p99 ≤ 20, p99.9 ≤ 50 ms): ${verdict(checks.p3Latency)}`);
  console.log(`P3 answers (only 2xx, or a cancel finding its order closed; none unanswered): ${verdict(checks.p3Answers)}: ${unexpected} errors (${errors} after the warm-up), ${unanswered} unanswered`);
  console.log(`P4 trades to ${SUBSCRIBERS} subscribers (each of the run's ${runTrades.toLocaleString('en-US')} trades once, in order): ${verdict(checks.p4Trades)}${followersMissing.length > 0 ? `: ${followersMissing.length} subscribers missed some (first: seen ${followersMissing[0]!.seen}, out of order ${followersMissing[0]!.outOfOrder}, closed ${followersMissing[0]!.closedEarly ?? 'no'})` : ''}`);
  console.log(`P5 memory (resident ≤ +10 % from the first window's end): ${verdict(checks.p5Memory)}: ${fixed(baseline, 0)} → ${fixed(rssEnd, 0)} MB (${fixed(rssGrowth)} %)`);
  console.log(`P5 event loop (delay p99 ≤ 20 ms in every window after the first): ${verdict(checks.p5Loop)}: worst window ${fixed(loopWorst)} ms`);
  console.log(`Recovery (graceful stop, bourse verify, ${workload.sample.length.toLocaleString('en-US')} sampled acknowledged orders and the last trade after a restart): ${verdict(checks.recovery)}: stop exit ${stopCode}, serving again ${fixed(restartSeconds)} s after the restart began, verify ${verified === null ? `failed: ${verify.stderr.slice(0, 300)}` : `replayed ${verified.lastSeq.toLocaleString('en-US')} commands in ${fixed(verified.replaySeconds)} s, snapshot ${verified.snapshotAgrees ? 'agrees' : 'DISAGREES'}, ${verified.violations.length} violations`}, ${lost} orders missing, last trade ${tradesRestarted === tradesAfter ? 'there' : `${tradesRestarted} instead of ${tradesAfter}`}`);
  console.log(JSON.stringify({
    soak_rate: RATE, soak_minutes: MINUTES, soak_answers: overall.answers, soak_p50_ms: p50, soak_p99_ms: p99, soak_p999_ms: p999,
    soak_errors: unexpected, soak_unanswered: unanswered, soak_trades: runTrades, soak_subscribers_missing: followersMissing.length,
    soak_rss_start_mb: Math.round(baseline), soak_rss_end_mb: Math.round(rssEnd), soak_loop_p99_worst_ms: loopWorst,
    soak_acknowledged_orders: workload.acknowledged, soak_sampled_lost: lost, soak_replay_seconds: verified?.replaySeconds ?? null, soak_restart_seconds: Number(restartSeconds.toFixed(2)), ...checks,
  }));
  const correct = checks.p3Answers && checks.p4Trades && checks.recovery;
  process.exitCode = correct ? 0 : 1;
}

void main();
