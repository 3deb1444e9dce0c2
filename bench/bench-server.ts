/**
 * What the API benchmarks share: a server in its own process on a temporary data folder (rate
 * limits raised so that they measure throughput, not policy), a funded trader with an API key,
 * the order stream, request signing and the server's CPU time.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadRequest } from './http-load.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export interface Credentials { key: string; secret: string }

/**
 * One BTC-USDT market, and limits raised so that the benchmarks measure throughput, not policy.
 * Snapshots come at the server's default interval (every 100,000 commands), as in production,
 * unless BENCH_SNAPSHOT_EVERY says otherwise.
 */
export const BENCH_CONFIG = {
  server: { port: 0, keyWeightPerSecond: 10_000_000, ipWeightPerSecond: 10_000_000, ordersPerSecondPerUser: 10_000_000, wsMessagesPerSecond: 10_000_000, wsSocketsPerAddress: 10_000, connectionsPerAddress: 0 },
  ...(process.env.BENCH_SNAPSHOT_EVERY === undefined ? {} : { journal: { snapshotEvery: Number(process.env.BENCH_SNAPSHOT_EVERY) } }),
  assets: [{ code: 'BTC', precision: 8 }, { code: 'USDT', precision: 6 }],
  // One trader rests every order the benchmark places (well over 100,000).
  markets: [{ base: 'BTC', quote: 'USDT', tick: '0.01', lot: '0.0001', maxOpenOrders: 0 }],
};

/** Starts `bourse start` with BENCH_CONFIG; BENCH_SERVER_FLAGS passes Node flags to it. */
export function startServer(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  writeFileSync(join(dataDir, 'config.json'), JSON.stringify(BENCH_CONFIG));
  const serverFlags = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter((flag) => flag !== '');
  return spawnServer([...serverFlags, CLI, 'start', '--config', join(dataDir, 'config.json'), '--data', dataDir]);
}

/** Runs `node …args` and resolves once the process prints its `{"msg":"started","url":…}` line. */
export function spawnServer(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('"started"'));
      if (line !== undefined) resolve({ child, url: (JSON.parse(line) as { url: string }).url });
    });
    child.on('exit', (code) => reject(new Error(`server exited (${code})`)));
  });
}

/** Sends SIGTERM (unless the process has already ended) and resolves with its exit code once it has exited (null if a signal ended it). */
export async function stopServer(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

async function admin(url: string, dataDir: string, path: string, body: unknown): Promise<any> {
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const response = await fetch(`${url}/admin/v1${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${path}: ${await response.text()}`);
  return response.json();
}

/** A user with plenty of USDT and BTC and a read + trade key. */
export async function trader(url: string, dataDir: string, email: string): Promise<Credentials> {
  await admin(url, dataDir, '/users', { email, password: 'benchmark password' });
  await admin(url, dataDir, '/deposits', { email, asset: 'USDT', amount: '1000000000' });
  await admin(url, dataDir, '/deposits', { email, asset: 'BTC', amount: '100000' });
  const key = await admin(url, dataDir, '/apikeys', { email, permissions: ['read', 'trade'] });
  return { key: key.key, secret: key.secret };
}

/** The order stream repeats after this many orders (prices and sides every 50, quantities every 4,500). */
const ORDER_CYCLE = 4_500;
let orderBodies: string[] | null = null;
let iocBodies: string[] | null = null;
/** BENCH_ORDER_FLOW, read once: the generator asks for a body per request. */
export const ORDER_FLOW = process.env.BENCH_ORDER_FLOW === 'ioc' ? 'ioc' : 'resting';

/**
 * Alternating buys and sells around 100 USDT that overlap, so that some trade; about half rest, so
 * the book grows through a phase (nothing is cancelled). A body repeats only every 4,500 orders:
 * two identical bodies signed within the same millisecond would carry the same signature, and the
 * server rightly refuses the second as a replay. The bodies are built once: the load generator
 * shares the CPU with the server, and the stream is fixed anyway.
 */
export function orderBody(i: number): string {
  orderBodies ??= Array.from({ length: ORDER_CYCLE }, (_, n) => buildOrderBody(n, false));
  return orderBodies[i % ORDER_CYCLE]!;
}

/**
 * The order phases' stream (HTTP and WebSocket order entry): orderBody's, or with
 * BENCH_ORDER_FLOW=ioc the same orders as immediate-or-cancel, so that none rests and each opens
 * and closes within its command (a taker's flow; the book stays empty). The ceiling and the
 * fan-out keep orderBody: the fan-out needs the book to change.
 */
export function flowOrderBody(i: number): string {
  if (ORDER_FLOW !== 'ioc') return orderBody(i);
  iocBodies ??= Array.from({ length: ORDER_CYCLE }, (_, n) => buildOrderBody(n, true));
  return iocBodies[i % ORDER_CYCLE]!;
}

function buildOrderBody(i: number, ioc: boolean): string {
  const buy = i % 2 === 0;
  const offset = (i * 7919) % 50;
  const price = buy ? 9_975 + offset : 10_025 - offset;
  const quantity = 10 + (Math.floor(i / 50) % 90);
  return JSON.stringify({
    market: 'BTC-USDT', side: buy ? 'buy' : 'sell', type: 'limit', ...(ioc ? { time_in_force: 'IOC' } : {}),
    price: `${Math.floor(price / 100)}.${String(price % 100).padStart(2, '0')}`, quantity: `0.00${quantity}`,
  });
}

/** The order stream as signed POST /api/v1/orders requests (fresh timestamp and HMAC each), for the light load generator. */
export function signedOrders(credentials: Credentials): LoadRequest {
  let counter = 0;
  return {
    method: 'POST', path: '/api/v1/orders',
    next: () => {
      const body = flowOrderBody(counter++);
      return { body, headers: signedHeaders(credentials, 'POST', '/api/v1/orders', body) };
    },
  };
}

/** The same order stream in signed batches of `size` (POST /orders/batch), one request per batch. */
export function signedBatches(credentials: Credentials, size: number): LoadRequest {
  let counter = 0;
  return {
    method: 'POST', path: '/api/v1/orders/batch',
    next: () => {
      const orders: string[] = [];
      for (let i = 0; i < size; i++) orders.push(flowOrderBody(counter++));
      const body = `{"orders":[${orders.join(',')}]}`;
      return { body, headers: signedHeaders(credentials, 'POST', '/api/v1/orders/batch', body) };
    },
  };
}

/** The native scheme's headers for a request signed now (or at `now`, ms): HMAC-SHA256(secret, timestamp + METHOD + path + body). */
export function signedHeaders(credentials: Credentials, method: string, path: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = String(now);
  const signature = createHmac('sha256', credentials.secret).update(`${timestamp}${method}${path}${body}`).digest('hex');
  return { 'x-bourse-key': credentials.key, 'x-bourse-timestamp': timestamp, 'x-bourse-signature': signature };
}

/** CPU seconds (user + system) from a /proc stat file: a process's (all threads) or one thread's. */
export function statCpuSeconds(statPath: string): number {
  try {
    const fields = readFileSync(statPath, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN; // not Linux, or the thread has ended
  }
}

/** CPU seconds (user + system, all threads) a process has used so far (Linux; NaN elsewhere). */
export function cpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}
