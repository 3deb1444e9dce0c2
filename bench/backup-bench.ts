/**
 * What a backup costs a running exchange (`npm run bench:backup`): a journal of BENCH_COMMANDS
 * commands (default 1,000,000: placements and their cancels, written through the sequencer), the
 * server started on it, one trader sending orders one after another, and BENCH_RUNS backups
 * (default 3) taken meanwhile. Prints each backup's time and the orders' latency before and
 * during it; the last line is JSON.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sequencer } from '../src/journal/index.js';
import type { Command } from '../src/core/index.js';
import { orderBody, signedHeaders, startServer, stopServer, trader } from './bench-server.js';
import type { Credentials } from './bench-server.js';
import { percentile } from './http-load.js';

const COMMANDS = Number(process.env.BENCH_COMMANDS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const ROUND = 500;
/** An account of the journal's own, far above the ids the identity store hands out. */
const ACCOUNT = 900_000;

/** Places ROUND orders and cancels them, round after round, so that the book stays small. */
async function writeJournal(path: string): Promise<number> {
  const sequencer = Sequencer.open({ path });
  const setup: Command[] = [
    { type: 'create_asset', code: 'BTC', precision: 8 }, { type: 'create_asset', code: 'USDT', precision: 6 },
    { type: 'create_market', market: 'BTC-USDT', base: 'BTC', quote: 'USDT', tick: 10_000, lot: 10_000, maxOpenOrders: 0 },
    { type: 'create_user', user: ACCOUNT }, { type: 'create_account', account: ACCOUNT, user: ACCOUNT },
    { type: 'deposit', account: ACCOUNT, asset: 'USDT', amount: 1e15, key: 'bench' },
  ];
  for (const cmd of setup) await sequencer.submit(cmd);
  while (sequencer.lastSeq < COMMANDS) {
    const placed = await Promise.all(Array.from({ length: ROUND }, (_, i) => sequencer.submit({
      type: 'place_order', account: ACCOUNT, market: 'BTC-USDT', side: 'buy', orderType: 'limit', price: 10_000_000 + i * 10_000, quantity: 100_000,
    })));
    await Promise.all(placed.map((ack) => sequencer.submit({ type: 'cancel_order', account: ACCOUNT, orderId: ack.seq })));
  }
  const lastSeq = sequencer.lastSeq;
  sequencer.close();
  return lastSeq;
}

interface Latency { n: number; p50: number; p99: number; max: number }

function summary(ms: number[]): Latency {
  const sorted = Float64Array.from(ms).sort();
  const round = (x: number): number => Math.round(x * 10) / 10;
  return { n: ms.length, p50: round(percentile(sorted, 0.5)), p99: round(percentile(sorted, 0.99)), max: round(sorted.at(-1) ?? 0) };
}

const show = (l: Latency): string => `${l.n} orders, p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms`;

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-bench-backup-'));
  try {
    const started = performance.now();
    const lastSeq = await writeJournal(join(dataDir, 'journal.db'));
    const bytes = statSync(join(dataDir, 'journal.db')).size;
    console.log(`Bourse backup benchmark: a journal of ${lastSeq.toLocaleString('en-US')} commands (${(bytes / 1e6).toFixed(0)} MB) written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const { child, url } = await startServer(dataDir);
    try {
      const credentials: Credentials = await trader(url, dataDir, 'backup-bench@example.com');
      let sent = 0;
      const order = async (): Promise<number> => {
        const body = orderBody(sent++);
        const t = performance.now();
        const response = await fetch(`${url}/api/v1/orders`, { method: 'POST', headers: { 'content-type': 'application/json', ...signedHeaders(credentials, 'POST', '/api/v1/orders', body) }, body });
        if (response.status !== 201) throw new Error(`order refused: ${response.status} ${await response.text()}`);
        return performance.now() - t;
      };
      const ordersFor = async (ms: number): Promise<number[]> => {
        const out: number[] = [];
        for (const until = performance.now() + ms; performance.now() < until;) out.push(await order());
        return out;
      };
      const before = summary(await ordersFor(3_000));
      console.log(`orders before: ${show(before)}`);
      const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
      const runs: { seconds: number; during: Latency }[] = [];
      for (let run = 1; run <= RUNS; run++) {
        const during: number[] = [];
        let done = false;
        const load = (async () => { while (!done) during.push(await order()); })();
        const response = await fetch(`${url}/admin/v1/backups`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ name: `bench-${run}` }) });
        done = true;
        await load;
        const report = await response.json() as { seconds: number; last_seq: number };
        if (response.status !== 201) throw new Error(`backup refused: ${JSON.stringify(report)}`);
        runs.push({ seconds: report.seconds, during: summary(during) });
        console.log(`backup ${run}: ${report.seconds} s up to seq ${report.last_seq}; orders during it: ${show(summary(during))}`);
        await new Promise((r) => setTimeout(r, 1_500));
      }
      console.log(JSON.stringify({
        journal_commands: lastSeq, journal_bytes: bytes, backup_seconds: runs.map((r) => r.seconds),
        orders_before_p99_ms: before.p99, orders_before_max_ms: before.max,
        orders_during_p99_ms: runs.map((r) => r.during.p99), orders_during_max_ms: runs.map((r) => r.during.max),
      }));
    } finally {
      await stopServer(child);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
