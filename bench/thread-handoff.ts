/**
 * `npm run bench:handoff`: what one message between two threads costs on this machine.
 *
 * The server hands every journal batch to the writer thread and on to the projection thread, and
 * both answer: four thread wake-ups per group commit. On a virtual machine a wake-up is a system
 * call and often an inter-processor interrupt, which can cost more than the work it carries. This
 * measures a ping-pong of small messages between the main thread and a worker: wall time and the
 * process's CPU time (user and system, both threads) per round trip.
 */
import { isMainThread, parentPort, Worker } from 'node:worker_threads';

const ROUND_TRIPS = Number(process.env.BENCH_ROUND_TRIPS ?? 20_000);

async function measure(): Promise<{ wallMicros: number; userMicros: number; systemMicros: number }> {
  const worker = new Worker(new URL(import.meta.url));
  await new Promise((resolve) => worker.once('online', resolve));
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await new Promise<void>((resolve) => {
    let count = 0;
    worker.on('message', () => {
      count += 1;
      if (count === ROUND_TRIPS) resolve();
      else worker.postMessage(count);
    });
    worker.postMessage(0);
  });
  const wall = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  await worker.terminate();
  return { wallMicros: (wall * 1000) / ROUND_TRIPS, userMicros: cpu.user / ROUND_TRIPS, systemMicros: cpu.system / ROUND_TRIPS };
}

if (isMainThread) {
  const runs = [];
  for (let run = 0; run < 3; run++) {
    const result = await measure();
    runs.push(result);
    console.log(`round trip ${run + 1}: wall ${result.wallMicros.toFixed(1)} µs, CPU ${(result.userMicros + result.systemMicros).toFixed(1)} µs (user ${result.userMicros.toFixed(1)}, system ${result.systemMicros.toFixed(1)})`);
  }
  const median = runs.map((r) => r.userMicros + r.systemMicros).sort((a, b) => a - b)[1]!;
  console.log(JSON.stringify({ round_trips: ROUND_TRIPS, cpu_us_per_round_trip: Number(median.toFixed(1)) }));
} else {
  parentPort!.on('message', (message: number) => parentPort!.postMessage(message));
}
