/**
 * A preload for the server under benchmark that counts its main thread's garbage collections:
 *
 *   BENCH_GC_LOG=/tmp/gc.json BENCH_SERVER_FLAGS="--import ./dist/bench/gc-watch.js" BENCH_RUNS=1 npm run bench:api
 *
 * At exit it writes, by kind (minor = scavenge, major = mark-compact, incremental, weakcb), how
 * many collections there were, their total and longest pause in ms and how many took over 5 ms,
 * one JSON object per line appended to BENCH_GC_LOG, with the server's pid.
 */
import { appendFileSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

const file = process.env.BENCH_GC_LOG;
if (isMainThread && file !== undefined) {
  const kinds = new Map<number, string>([
    [constants.NODE_PERFORMANCE_GC_MINOR, 'minor'], [constants.NODE_PERFORMANCE_GC_MAJOR, 'major'],
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental'], [constants.NODE_PERFORMANCE_GC_WEAKCB, 'weakcb'],
  ]);
  const stats: Record<string, { count: number; totalMs: number; longestMs: number; over5ms: number }> = {};
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = kinds.get((entry as unknown as { detail: { kind: number } }).detail.kind) ?? 'other';
      const s = (stats[kind] ??= { count: 0, totalMs: 0, longestMs: 0, over5ms: 0 });
      s.count += 1;
      s.totalMs += entry.duration;
      s.longestMs = Math.max(s.longestMs, entry.duration);
      if (entry.duration > 5) s.over5ms += 1;
    }
  }).observe({ entryTypes: ['gc'] });
  process.on('exit', () => appendFileSync(file, `${JSON.stringify({ pid: process.pid, gc: stats })}\n`));
}
