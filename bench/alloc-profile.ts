/**
 * A preload for the server under benchmark that profiles what its main thread allocates,
 * collected objects included (V8's sampling heap profiler, one sample per 4 KiB), from
 * BENCH_ALLOC_AFTER_MS (default 6,000: past the warm-up) until the server exits:
 *
 *   BENCH_ALLOC_PROFILE=/tmp/alloc.heapprofile BENCH_SERVER_FLAGS="--import ./dist/bench/alloc-profile.js" \
 *     BENCH_RUNS=1 BENCH_PHASES=lean npm run bench:api
 *
 * The file opens in Chrome DevTools (Memory tab); total sampled bytes over orders answered is the
 * allocation per order.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { isMainThread } from 'node:worker_threads';

const file = process.env.BENCH_ALLOC_PROFILE;
if (isMainThread && file !== undefined) {
  const session = new Session();
  session.connect();
  setTimeout(() => {
    session.post('HeapProfiler.startSampling', { samplingInterval: 4_096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }, Number(process.env.BENCH_ALLOC_AFTER_MS ?? 6_000)).unref();
  // The in-thread inspector session answers synchronously, so this completes before exit.
  process.on('exit', () => {
    session.post('HeapProfiler.stopSampling', (error, result) => {
      if (error === null) writeFileSync(file, JSON.stringify(result.profile));
    });
  });
}
