/**
 * A small HTTP/1.1 keep-alive load generator for the signed order route, for `bench:api`.
 *
 * On a two-core machine the load generator and the server share the CPU, so a generator that
 * spends less per request leaves more to the server. autocannon spends 60–110 µs per signed
 * request here; this one does the same work (a fresh timestamp and HMAC per request, a complete
 * request, a complete response read before the next one goes on that connection, the status
 * checked, the latency recorded) with less machinery: one request template, and a parser that
 * only finds the status, Content-Length and the end of the body. Bodies are never chunked here:
 * Fastify answers JSON with a Content-Length.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export interface LoadRequest {
  method: string;
  path: string;
  /** Called once per request: the body and the extra headers. */
  next: () => { body: string; headers: Record<string, string> };
}

export interface LoadResult {
  /** Responses by status class. */
  ok: number;
  failed: number;
  requests: number;
  latenciesMs: Float64Array;
  /** Failed answers by status and body (the first 200 characters), with their counts. */
  failures: Map<string, number>;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** Runs `connections` keep-alive connections for `seconds`, each with one request in flight. */
export async function runLoad(url: string, connections: number, seconds: number, request: LoadRequest): Promise<LoadResult> {
  const { hostname, port } = new URL(url);
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  const failures = new Map<string, number>();
  let running = true;
  const sockets: Socket[] = [];

  const connection = (): Promise<void> => new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), noDelay: true });
    sockets.push(socket);
    let pending: Buffer = Buffer.alloc(0);
    let sentAt = 0;
    const send = (): void => {
      if (!running) {
        socket.end();
        return;
      }
      const { body, headers } = request.next();
      let head = `${request.method} ${request.path} HTTP/1.1\r\nhost: ${hostname}:${port}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
      for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
      sentAt = performance.now();
      socket.write(`${head}\r\n${body}`);
    };
    socket.on('connect', send);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        const headerEnd = pending.indexOf(HEADER_END);
        if (headerEnd < 0) return;
        const head = pending.toString('latin1', 0, headerEnd);
        const length = /\r\ncontent-length: *(\d+)/i.exec(head);
        const total = headerEnd + 4 + (length === null ? 0 : Number(length[1]));
        if (pending.length < total) return;
        const status = Number(head.slice(9, 12));
        // Only answers that arrive within the run count.
        if (running) {
          if (status >= 200 && status < 300) ok += 1;
          else {
            failed += 1;
            const what = `${status} ${pending.toString('utf8', headerEnd + 4, Math.min(total, headerEnd + 204))}`;
            failures.set(what, (failures.get(what) ?? 0) + 1);
          }
          latencies.push(performance.now() - sentAt);
        }
        pending = pending.subarray(total);
        send();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });

  const all = Promise.all(Array.from({ length: connections }, connection));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  // Let the requests in flight finish (uncounted) so that the connections close cleanly.
  const stragglers = setTimeout(() => { for (const socket of sockets) socket.destroy(); }, 2_000);
  await all;
  clearTimeout(stragglers);
  const latenciesMs = Float64Array.from(latencies).sort();
  return { ok, failed, requests: ok + failed, latenciesMs, failures };
}

export function percentile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
