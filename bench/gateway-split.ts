/**
 * `npm run bench:gateway`: would an HTTP gateway process in front of the engine process help on
 * this machine? An experiment for the cluster mode of DESIGN §1, not a product path.
 *
 * The server runs as usual. A second process (this file, started with `gateway`) takes the
 * signed HTTP orders, checks the signature itself, and passes each order to the server over the
 * server's own authenticated WebSocket order entry (4 sockets), answering with the server's reply.
 * The same load (bench/http-load.ts, 50 connections, every request signed afresh) goes first to
 * the server directly, then through the gateway; each line gives the rate and the CPU per order of
 * the server, the gateway and the load generator.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile, runLoad } from './http-load.js';
import { cpuSeconds, signedOrders, startServer, trader } from './bench-server.js';
import { serveGateway } from './socket-gateway.js';

const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 10);

/** The gateway process: HTTP in, signature checked here, the order passed on over the socket. */
async function gateway(): Promise<void> {
  const { ENGINE_URL: engineUrl, KEY: key, SECRET: secret } = process.env as Record<string, string>;
  const app = await serveGateway({ engineUrl, key, secret, listen: { port: 0, host: '127.0.0.1' } });
  const { port } = app.server.address() as { port: number };
  process.send!({ url: `http://127.0.0.1:${port}` });
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-gateway-bench-'));
  const { child: server, url: serverUrl } = await startServer(dataDir);
  const credentials = await trader(serverUrl, dataDir, 'gateway@example.com');
  const gatewayProcess = fork(fileURLToPath(import.meta.url), ['gateway'], { env: { ...process.env, ENGINE_URL: serverUrl, KEY: credentials.key, SECRET: credentials.secret } });
  const gatewayUrl = await new Promise<string>((resolve) => gatewayProcess.once('message', (message: { url: string }) => resolve(message.url)));
  try {
    console.log(`HTTP gateway experiment, node ${process.version}: the same signed orders to the server, then through a gateway process`);
    for (const [name, url] of [['direct to the server', serverUrl], ['through the gateway', gatewayUrl]] as const) {
      const serverBefore = cpuSeconds(server.pid!);
      const gatewayBefore = cpuSeconds(gatewayProcess.pid!);
      const clientBefore = process.cpuUsage();
      const result = await runLoad(url, 50, SECONDS, signedOrders(credentials));
      const client = process.cpuUsage(clientBefore);
      const perOrder = (seconds: number): string => ((seconds * 1e6) / result.ok).toFixed(1);
      console.log(`${name}: ${Math.round(result.ok / SECONDS).toLocaleString('en-US')}/s, ${result.failed} failed, p50 ${percentile(result.latenciesMs, 0.5).toFixed(2)} ms, `
        + `p99 ${percentile(result.latenciesMs, 0.99).toFixed(2)} ms; CPU µs per order: server ${perOrder(cpuSeconds(server.pid!) - serverBefore)}, `
        + `gateway ${perOrder(cpuSeconds(gatewayProcess.pid!) - gatewayBefore)}, load generator ${((client.user + client.system) / result.ok).toFixed(1)}`);
    }
  } finally {
    gatewayProcess.kill();
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'gateway') await gateway();
else await main();
