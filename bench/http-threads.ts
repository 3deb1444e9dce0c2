/**
 * `npm run bench:threads`: would a second thread taking HTTP lift the order-entry cap on this
 * machine? An experiment, not a product path.
 *
 * The thread that owns the sockets is the cap on HTTP order entry (README): about three fifths of
 * its time per order is what any HTTP request costs. Node 20 has no `reusePort`, but a worker
 * thread can listen on the main thread's listening descriptor (`listen({ fd })`): both threads
 * then accept from the one socket, each connection going to whichever thread accepts it first
 * (`UV_TCP_SINGLE_ACCEPT=1` makes libuv take one connection per wake-up, so that they share).
 * A product would need more care: two handles then own one descriptor, and whichever closes it
 * second could close a descriptor number reused meanwhile. Here the process simply exits.
 *
 * Each run starts a server process like `bourse start` (the same engine, journal, read model and
 * routes). With `two threads`, that process also runs the socket gateway of bench:gateway on a
 * worker thread listening on the same descriptor: it checks signatures itself and passes orders to
 * the engine over the server's own socket order entry, the cheapest path into the engine there
 * is. The load generator (bench/http-load.ts, 50 connections, every request signed afresh) runs
 * in this process. The two set-ups alternate, BENCH_THREAD_ROUNDS (default 2) times each.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { percentile, runLoad } from './http-load.js';
import { BENCH_CONFIG, cpuSeconds, signedOrders, trader } from './bench-server.js';
import type { Credentials } from './bench-server.js';
import { serveGateway } from './socket-gateway.js';
import { loadConfig } from '../src/config.js';
import { Exchange } from '../src/exchange.js';
import { buildServer } from '../src/gateway/server.js';

const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_THREAD_ROUNDS ?? 2);
const CONNECTIONS = 50;

interface HelperData { fd: number; engineUrl: string; key: string; secret: string }
type ServerMessage = { url: string; credentials: Credentials } | { helperOrders: number };

/** The server process: the venue and its routes on the main thread; with `helper`, the gateway thread too. */
async function server(helper: boolean): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-threads-bench-'));
  writeFileSync(join(dataDir, 'config.json'), JSON.stringify(BENCH_CONFIG));
  const config = loadConfig(join(dataDir, 'config.json'));
  const exchange = await Exchange.open({ dataDir, snapshotEvery: config.journal.snapshotEvery, venue: config });
  const app = await buildServer(exchange, {
    logger: true, keyWeightPerSecond: config.server.keyWeightPerSecond, ipWeightPerSecond: config.server.ipWeightPerSecond, ordersPerSecondPerUser: config.server.ordersPerSecondPerUser,
    ws: { messagesPerSecond: config.server.wsMessagesPerSecond, socketsPerAddress: config.server.wsSocketsPerAddress },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const credentials = await trader(url, dataDir, 'threads@example.com');
  let helperOrders = 0;
  if (helper) {
    const fd = (app.server as unknown as { _handle: { fd: number } })._handle.fd;
    const worker = new Worker(new URL(import.meta.url), { workerData: { fd, engineUrl: url, ...credentials } satisfies HelperData });
    worker.on('message', (count: number) => { helperOrders = count; });
    await new Promise((resolve) => worker.once('message', resolve));
  }
  process.on('message', () => process.send!({ helperOrders } satisfies ServerMessage));
  process.once('SIGTERM', () => {
    exchange.close();
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  });
  process.send!({ url, credentials } satisfies ServerMessage);
}

/** The gateway thread: it accepts from the main thread's listening socket. */
async function helperThread(): Promise<void> {
  const { fd, engineUrl, key, secret } = workerData as HelperData;
  let orders = 0;
  await serveGateway({ engineUrl, key, secret, listen: { fd } as never, onOrder: () => { orders += 1; } });
  parentPort!.postMessage(0);
  setInterval(() => parentPort!.postMessage(orders), 200).unref();
}

async function run(helper: boolean): Promise<string> {
  // libuv reads it at the first listen; it only matters when two threads accept.
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['server', helper ? 'helper' : ''], { env: { ...process.env, UV_TCP_SINGLE_ACCEPT: '1' } });
  const next = (): Promise<ServerMessage> => new Promise((resolve) => child.once('message', resolve));
  const started = await next() as { url: string; credentials: Credentials };
  try {
    await runLoad(started.url, CONNECTIONS, WARMUP_SECONDS, signedOrders(started.credentials));
    child.send('count');
    const helperBefore = (await next() as { helperOrders: number }).helperOrders;
    const serverBefore = cpuSeconds(child.pid!);
    const clientBefore = process.cpuUsage();
    const result = await runLoad(started.url, CONNECTIONS, SECONDS, signedOrders(started.credentials));
    const client = process.cpuUsage(clientBefore);
    const serverCpu = cpuSeconds(child.pid!) - serverBefore;
    child.send('count');
    const helperShare = ((await next() as { helperOrders: number }).helperOrders - helperBefore) / Math.max(1, result.ok + result.failed);
    return `${Math.round(result.ok / SECONDS).toLocaleString('en-US')}/s, ${result.failed} failed, p50 ${percentile(result.latenciesMs, 0.5).toFixed(2)} ms, `
      + `p99 ${percentile(result.latenciesMs, 0.99).toFixed(2)} ms, server CPU ${((serverCpu * 1e6) / result.ok).toFixed(1)} µs per order `
      + `(load generator ${((client.user + client.system) / result.ok).toFixed(1)})${helper ? `, ${Math.round(helperShare * 100)} % through the second thread` : ''}`;
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

async function main(): Promise<void> {
  console.log(`HTTP threads experiment, node ${process.version}: signed orders, ${CONNECTIONS} connections, ${SECONDS} s per run, alternating`);
  for (let round = 0; round < ROUNDS; round++) {
    console.log(`one thread:  ${await run(false)}`);
    console.log(`two threads: ${await run(true)}`);
  }
}

if (!isMainThread) await helperThread();
else if (process.argv[2] === 'server') await server(process.argv[3] === 'helper');
else await main();
