/**
 * Lines up a run's request latencies with the server's collections and event-loop stalls:
 *
 *   BENCH_LATENCY_LOG=/tmp/lat.json BENCH_GC_TIMELINE=/tmp/gc.json \
 *     BENCH_SERVER_FLAGS="--import ./dist/bench/gc-watch.js" BENCH_RUNS=1 BENCH_PHASES=rate npm run bench:api
 *   node dist/bench/timeline.js /tmp/lat.json /tmp/gc.json [bucket ms, default 50] [threshold ms, default 12]
 *
 * Prints, for each bucket of due times whose slowest request took over the threshold or in which
 * something happened on the server, the slowest latency and the collections and stalls that began
 * in it; the worst buckets first.
 */
import { readFileSync } from 'node:fs';

const [latencyFile, timelineFile, bucketArg, thresholdArg] = process.argv.slice(2);
if (latencyFile === undefined || timelineFile === undefined) {
  console.error('usage: node dist/bench/timeline.js LATENCY_LOG GC_TIMELINE [bucket ms] [threshold ms]');
  process.exit(2);
}
const bucketMs = Number(bucketArg ?? 50);
const thresholdMs = Number(thresholdArg ?? 12);
const log = JSON.parse(readFileSync(latencyFile, 'utf8')) as { origin: number; due: number[]; latency: number[] };
// The timeline file gets one line per server that ran with it: the last is this run's.
const events = JSON.parse(readFileSync(timelineFile, 'utf8').trim().split('\n').at(-1)!) as [string, number, number][];
const start = log.origin + (log.due[0] ?? 0);
const slowest = new Map<number, number>();
log.due.forEach((due, i) => {
  const bucket = Math.floor((log.origin + due - start) / bucketMs);
  slowest.set(bucket, Math.max(slowest.get(bucket) ?? 0, log.latency[i]!));
});
const happened = new Map<number, string[]>();
for (const [what, at, ms] of events) {
  const bucket = Math.floor((at - start) / bucketMs);
  if (bucket >= 0) happened.set(bucket, [...(happened.get(bucket) ?? []), `${what} ${ms.toFixed(1)} ms`]);
}
const rows = [...slowest].filter(([bucket, ms]) => ms > thresholdMs || happened.has(bucket)).sort((a, b) => b[1] - a[1]);
for (const [bucket, ms] of rows) {
  console.log(`${((bucket * bucketMs) / 1000).toFixed(2).padStart(6)} s  slowest ${ms.toFixed(1).padStart(6)} ms  ${(happened.get(bucket) ?? []).join(', ')}`);
}
