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
 *
 * Two ways to drive it:
 * - runLoad, a closed loop: each connection sends its next request as soon as the answer to the
 *   previous one is in. It finds the most the server answers at that concurrency.
 * - runRate, an open loop at a fixed rate: request i is due at start + i / rate, whether or not
 *   earlier ones are answered, and its latency counts from when it was due. A server that stalls
 *   meets the requests that pile up meanwhile, as it would with real clients, instead of the
 *   closed loop's clients politely waiting (coordinated omission). This is how a latency target
 *   at a given rate is checked.
 */
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export interface LoadRequest {
  method: string;
  path: string;
  /**
   * Called once per request, when it is sent: the body and the extra headers, and the method and
   * path when they are not the defaults above (a mixed workload). An empty body goes without a
   * content type.
   */
  next: () => { body: string; headers: Record<string, string>; method?: string; path?: string; tag?: unknown };
  /**
   * If set, gets every answer's status, whole body and the tag its request was sent with (costs
   * the generator a string per answer).
   */
  answer?: (status: number, body: string, tag: unknown) => void;
}

export interface LoadResult {
  /** Responses by status class. */
  ok: number;
  failed: number;
  requests: number;
  latenciesMs: Float64Array;
  /**
   * How long after it was due each counted request went out, sorted: the generator's own delay
   * (its turn on the CPU, or, in an open loop, waiting for a free connection); in a closed loop only
   * the microseconds it takes to sign and build the request.
   */
  sendLagsMs: Float64Array;
  /** Failed answers by status and body (the first 200 characters), with their counts. */
  failures: Map<string, number>;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** Tallies answers that arrive while the run is counting. */
class Tally {
  counting = true;
  /** Only requests due at or after this (performance.now()) count. */
  countFrom = -Infinity;
  ok = 0;
  failed = 0;
  readonly latencies: number[] = [];
  readonly sendLags: number[] = [];
  /** With BENCH_LATENCY_LOG set, when each counted request was due (ms after `origin`, the epoch ms performance.now() counts from), for a time series of the run. */
  private readonly dues: number[] | null = process.env.BENCH_LATENCY_LOG === undefined ? null : [];
  readonly failures = new Map<string, number>();

  /** Every answer, counted or not (the warm-up's too). */
  answered = 0;

  record(status: number, body: string, latencyMs: number, dueAt: number, sentAt: number): void {
    this.answered += 1;
    if (!this.counting || dueAt < this.countFrom) return;
    this.latencies.push(latencyMs);
    this.sendLags.push(sentAt - dueAt);
    this.dues?.push(dueAt);
    if (status >= 200 && status < 300) {
      this.ok += 1;
      return;
    }
    this.failed += 1;
    const what = `${status} ${body}`;
    this.failures.set(what, (this.failures.get(what) ?? 0) + 1);
  }

  result(): LoadResult {
    if (this.dues !== null) writeFileSync(process.env.BENCH_LATENCY_LOG!, JSON.stringify({ origin: performance.timeOrigin, due: this.dues, latency: this.latencies, sendLag: this.sendLags }));
    return {
      ok: this.ok, failed: this.failed, requests: this.ok + this.failed, failures: this.failures,
      latenciesMs: Float64Array.from(this.latencies).sort(), sendLagsMs: Float64Array.from(this.sendLags).sort(),
    };
  }
}

/** One keep-alive connection with at most one request in flight. */
export class Connection {
  private readonly socket: Socket;
  private pending: Buffer = Buffer.alloc(0);
  private readonly host: string;
  /** When the request in flight was due (performance.now()); NaN when idle. */
  private dueAt = NaN;
  /** When it went out. */
  private sentAt = NaN;
  private tag: unknown = undefined;
  readonly closed: Promise<void>;

  constructor(
    url: URL,
    private readonly request: LoadRequest,
    private readonly answered: (connection: Connection, status: number, body: string, dueAt: number, sentAt: number) => void,
    ready: (connection: Connection) => void,
  ) {
    this.host = `${url.hostname}:${url.port}`;
    this.socket = connect({ host: url.hostname, port: Number(url.port), noDelay: true });
    this.socket.on('connect', () => ready(this));
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.closed = new Promise((resolve, reject) => {
      this.socket.on('error', reject);
      this.socket.on('close', () => resolve());
    });
  }

  get idle(): boolean {
    return Number.isNaN(this.dueAt);
  }

  /** The socket has closed (or is closing): it can carry no more requests. */
  get gone(): boolean {
    return this.socket.destroyed || !this.socket.writable;
  }

  /** Sends the next request; `dueAt` is when it was due (now, in a closed loop). */
  send(dueAt: number): void {
    const { body, headers, method = this.request.method, path = this.request.path, tag } = this.request.next();
    this.tag = tag;
    let head = body === ''
      ? `${method} ${path} HTTP/1.1\r\nhost: ${this.host}\r\n`
      : `${method} ${path} HTTP/1.1\r\nhost: ${this.host}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    this.dueAt = dueAt;
    this.sentAt = performance.now();
    this.socket.write(`${head}\r\n${body}`);
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      const headerEnd = this.pending.indexOf(HEADER_END);
      if (headerEnd < 0) return;
      const head = this.pending.toString('latin1', 0, headerEnd);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      const total = headerEnd + 4 + (length === null ? 0 : Number(length[1]));
      if (this.pending.length < total) return;
      const status = Number(head.slice(9, 12));
      if (this.idle) {
        // Not an answer: the server's notice before it closes a connection left unused (Node
        // answers 408 once a fresh connection has sent nothing for headersTimeout, 60 s).
        this.pending = this.pending.subarray(total);
        continue;
      }
      const body = status >= 200 && status < 300 ? '' : this.pending.toString('utf8', headerEnd + 4, Math.min(total, headerEnd + 204));
      if (this.request.answer !== undefined) this.request.answer(status, this.pending.toString('utf8', headerEnd + 4, total), this.tag);
      this.pending = this.pending.subarray(total);
      const dueAt = this.dueAt;
      this.dueAt = NaN;
      this.answered(this, status, body, dueAt, this.sentAt);
    }
  }
}

/** Ends the connections, lets requests in flight finish (uncounted) for up to 2 s, then waits for them to close. */
async function finish(connections: Connection[]): Promise<void> {
  for (const connection of connections) if (connection.idle) connection.end();
  const stragglers = setTimeout(() => { for (const connection of connections) connection.destroy(); }, 2_000);
  await Promise.all(connections.map((c) => c.closed));
  clearTimeout(stragglers);
}

/** Runs `connections` keep-alive connections for `seconds`, each with one request in flight. */
export async function runLoad(url: string, connections: number, seconds: number, request: LoadRequest): Promise<LoadResult> {
  const tally = new Tally();
  let running = true;
  const pool = Array.from({ length: connections }, () => new Connection(new URL(url), request, (connection, status, body, dueAt, sentAt) => {
    tally.record(status, body, performance.now() - dueAt, dueAt, sentAt);
    if (running) connection.send(performance.now());
    else connection.end();
  }, (connection) => connection.send(performance.now())));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  tally.counting = false;
  await finish(pool);
  return tally.result();
}

/**
 * Offers `perSecond` requests a second for `seconds` over up to `connections` connections. A
 * request due while every connection is busy waits for the first one free; its latency still
 * counts from when it was due. Requests go out on a 1 ms tick, so a latency includes up to 1 ms of
 * the generator's own delay.
 */
export async function runRate(url: string, connections: number, seconds: number, perSecond: number, request: LoadRequest, warmupSeconds = 0): Promise<LoadResult & { offered: number; answeredWithWarmup: number; waitedForConnection: number }> {
  const tally = new Tally();
  const backlog: number[] = [];
  let backlogHead = 0;
  const free: Connection[] = [];
  const answered = (connection: Connection, status: number, body: string, dueAt: number, sentAt: number): void => {
    tally.record(status, body, performance.now() - dueAt, dueAt, sentAt);
    if (backlogHead < backlog.length) connection.send(backlog[backlogHead++]!);
    else free.push(connection);
  };
  const pool: Connection[] = [];
  await new Promise<void>((resolve) => {
    let connected = 0;
    for (let i = 0; i < connections; i++) {
      pool.push(new Connection(new URL(url), request, answered, (connection) => {
        free.push(connection);
        if (++connected === connections) resolve();
      }));
    }
  });
  // The same connections carry the warm-up and the measured run; only requests due after the warm-up count.
  const start = performance.now();
  const counted = Math.floor(warmupSeconds * perSecond);
  const total = counted + Math.floor(seconds * perSecond);
  tally.countFrom = start + (counted * 1000) / perSecond;
  let offered = 0;
  let waitedForConnection = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - start) * perSecond) / 1000));
      for (; offered < due; offered++) {
        const dueAt = start + (offered * 1000) / perSecond;
        const connection = free.pop();
        if (connection !== undefined) connection.send(dueAt);
        else {
          backlog.push(dueAt);
          if (offered >= counted) waitedForConnection += 1;
        }
      }
      if (offered < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  // Every offered request counts: wait (up to 10 s) for the backlog and those in flight to be answered.
  const deadline = performance.now() + 10_000;
  while ((backlogHead < backlog.length || free.length < pool.length) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  tally.counting = false;
  await finish(pool);
  return { ...tally.result(), offered: offered - counted, answeredWithWarmup: tally.answered, waitedForConnection };
}

export function percentile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
