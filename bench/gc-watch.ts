/**
 * A preload for the server under benchmark that counts its main thread's garbage collections:
 *
 *   BENCH_GC_LOG=/tmp/gc.json BENCH_SERVER_FLAGS="--import ./dist/bench/gc-watch.js" BENCH_RUNS=1 npm run bench:api
 *
 * At exit it writes, by kind (minor = scavenge, major = mark-compact, incremental, weakcb), how
 * many collections there were, their total and longest pause in ms and how many took over 5 ms,
 * one JSON object per line appended to BENCH_GC_LOG, with the server's pid.
 *
 * BENCH_GC_TIMELINE=FILE (as well or instead) appends, at exit, one JSON array of the main
 * thread's collections over 2 ms (by the same kinds; major = mark-compact) and event-loop stalls over 4 ms, each as [what, epoch ms when it
 * began, ms]: lined up with BENCH_LATENCY_LOG's due times (epoch ms = origin + due), it shows
 * which latency spikes a collection or a stall was behind.
 */
import { appendFileSync } from 'node:fs';
import { constants, performance, PerformanceObserver } from 'node:perf_hooks';
import type { PerformanceEntry } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

const KINDS = new Map<number, string>([
  [constants.NODE_PERFORMANCE_GC_MINOR, 'minor'], [constants.NODE_PERFORMANCE_GC_MAJOR, 'major'],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental'], [constants.NODE_PERFORMANCE_GC_WEAKCB, 'weakcb'],
]);
const kindOf = (entry: PerformanceEntry): string => KINDS.get((entry as unknown as { detail: { kind: number } }).detail.kind) ?? 'other';

const file = process.env.BENCH_GC_LOG;
if (isMainThread && file !== undefined) {
  const stats: Record<string, { count: number; totalMs: number; longestMs: number; over5ms: number }> = {};
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = kindOf(entry);
      const s = (stats[kind] ??= { count: 0, totalMs: 0, longestMs: 0, over5ms: 0 });
      s.count += 1;
      s.totalMs += entry.duration;
      s.longestMs = Math.max(s.longestMs, entry.duration);
      if (entry.duration > 5) s.over5ms += 1;
    }
  }).observe({ entryTypes: ['gc'] });
  process.on('exit', () => appendFileSync(file, `${JSON.stringify({ pid: process.pid, gc: stats })}\n`));
}

const timeline = process.env.BENCH_GC_TIMELINE;
if (isMainThread && timeline !== undefined) {
  const events: [string, number, number][] = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.duration > 2) events.push([kindOf(entry), performance.timeOrigin + entry.startTime, entry.duration]);
    }
  }).observe({ entryTypes: ['gc'] });
  // A 1 ms timer that fires late by more than 4 ms saw the event loop stalled that long.
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    if (now - last > 5) events.push(['stall', performance.timeOrigin + last, now - last - 1]);
    last = now;
  }, 1).unref();
  process.on('exit', () => appendFileSync(timeline, `${JSON.stringify(events)}\n`));
}
