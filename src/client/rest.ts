/**
 * A REST client for the native API, as a bot would want one: requests signed as the README says
 * (HMAC-SHA256 over timestamp + METHOD + path with query + body), a clock kept in step with the
 * server's, so that a machine whose clock drifts does not meet STALE_REQUEST, and the API's
 * errors as exceptions with their status and code.
 */
import { createHmac } from 'node:crypto';

export interface Credentials { key: string; secret: string }

export class BourseApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly retryAfterSeconds?: number) {
    super(message);
    this.name = 'BourseApiError';
  }
}

export interface RestClientOptions {
  /** The server, e.g. http://127.0.0.1:8080. */
  url: string;
  credentials?: Credentials;
  /** X-BOURSE-RECV-WINDOW in milliseconds (the server's default when left out, 5 s; at most 60 s). */
  recvWindowMs?: number;
  /**
   * A request refused for now with a Retry-After of at most this many seconds (429: a spent
   * request-weight budget; 503: a busy exchange) is sent again once that time has passed, up to
   * three times, instead of raising. Such a request was not carried out, so any method may be
   * sent again. 0 (the default) raises at once.
   */
  waitOnRefusalSeconds?: number;
}

/** What a request-weight budget has left (it refills continuously at `perSecond`). */
export interface RequestBudget { perSecond: number; remaining: number }

/** Refusals that say the request was not carried out and when to try again. */
const RETRIED_STATUSES: ReadonlySet<number> = new Set([429, 503]);
const RETRIES_AFTER_REFUSAL = 3;

/**
 * An error answer as the API error its body names; by its status alone (code HTTP_ERROR) when the
 * body names none, as a proxy's error page would not.
 */
export function apiErrorOf(status: number, body: string, retryAfterSeconds: number | undefined, statusText = `HTTP ${status}`): BourseApiError {
  let error: { code?: unknown; message?: unknown } | undefined;
  try {
    error = (JSON.parse(body) as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  } catch {
    error = undefined;
  }
  return typeof error?.code === 'string'
    ? new BourseApiError(status, error.code, typeof error.message === 'string' ? error.message : error.code, retryAfterSeconds)
    : new BourseApiError(status, 'HTTP_ERROR', statusText, retryAfterSeconds);
}

/** How far the server's clock at `url` is ahead of `now` (negative: behind), from GET /time, halving the round trip. */
export async function serverClockOffset(url: string, now: () => number = Date.now): Promise<number> {
  const sent = now();
  const response = await fetch(`${url}/api/v1/time`);
  if (!response.ok) throw new BourseApiError(response.status, 'HTTP_ERROR', `GET /api/v1/time answered ${response.status}`);
  const { server_time: serverTime } = (await response.json()) as { server_time: number };
  return Math.round(serverTime - (sent + now()) / 2);
}

export class RestClient {
  /** Server time minus this machine's, as last measured. */
  private offsetMs = 0;
  private lastTimestamp = 0;
  private lastBudget: RequestBudget | null = null;

  constructor(private readonly options: RestClientOptions) {}

  /** How far the server's clock is ahead of this machine's (negative: behind), as last measured. */
  get clockOffsetMs(): number {
    return this.offsetMs;
  }

  /**
   * The request-weight budget the last answer reported (its X-RateLimit-* headers): the weight
   * per second of the address's or the key's budget, whichever had less left, and what it had
   * left. null before the first answer, or from a server that sends none.
   */
  get budget(): RequestBudget | null {
    return this.lastBudget;
  }

  /** Measures the offset to the server's clock (serverClockOffset). */
  async syncClock(): Promise<number> {
    this.offsetMs = await serverClockOffset(this.options.url);
    return this.offsetMs;
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T = unknown>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  patch<T = unknown>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }

  delete<T = unknown>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  /**
   * One request (signed when the client has credentials); the answer's JSON, or a BourseApiError.
   * A request refused as stale is signed again once, after the clock is measured; one refused for
   * now is sent again after its Retry-After if `waitOnRefusalSeconds` allows.
   */
  async request<T = unknown>(method: string, path: string, body?: unknown, signed = this.options.credentials !== undefined): Promise<T> {
    let waits = 0;
    for (let attempt = 0; ; attempt++) {
      const response = await this.send(method, path, body, signed);
      const limit = response.headers.get('x-ratelimit-limit');
      const remaining = response.headers.get('x-ratelimit-remaining');
      if (limit !== null && remaining !== null) this.lastBudget = { perSecond: Number(limit), remaining: Number(remaining) };
      const text = await response.text();
      if (response.ok) return (text === '' ? null : JSON.parse(text)) as T;
      const header = response.headers.get('retry-after');
      const retryAfter = header === null ? undefined : Number(header);
      const refusal = apiErrorOf(response.status, text, retryAfter, response.statusText);
      if (refusal.code === 'STALE_REQUEST' && signed && attempt === 0) {
        await this.syncClock();
        continue;
      }
      const patience = this.options.waitOnRefusalSeconds ?? 0;
      if (RETRIED_STATUSES.has(response.status) && patience > 0 && retryAfter !== undefined && retryAfter >= 0 && retryAfter <= patience && waits < RETRIES_AFTER_REFUSAL) {
        waits += 1;
        await new Promise((resolve) => setTimeout(resolve, retryAfter * 1_000));
        continue;
      }
      throw refusal;
    }
  }

  private send(method: string, path: string, body: unknown, signed: boolean): Promise<Response> {
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string> = {};
    if (text !== '') headers['content-type'] = 'application/json';
    const credentials = this.options.credentials;
    if (signed && credentials !== undefined) {
      // Strictly increasing: the same request twice in one millisecond would be one signature,
      // which the server refuses as a replay.
      const timestamp = Math.max(Date.now() + this.offsetMs, this.lastTimestamp + 1);
      this.lastTimestamp = timestamp;
      headers['x-bourse-key'] = credentials.key;
      headers['x-bourse-timestamp'] = String(timestamp);
      if (this.options.recvWindowMs !== undefined) headers['x-bourse-recv-window'] = String(this.options.recvWindowMs);
      headers['x-bourse-signature'] = createHmac('sha256', credentials.secret).update(`${timestamp}${method}${path}${text}`).digest('hex');
    }
    return fetch(`${this.options.url}${path}`, { method, headers, body: text === '' ? undefined : text });
  }
}
