/** A minimal signed HTTP client for the native API, as a bot would write it. */
import { createHmac } from 'node:crypto';

export interface Credentials { key: string; secret: string }

export interface ApiResponse { status: number; body: any; headers: Headers }

/**
 * The timestamp each distinct signed request last carried. The same request twice in one
 * millisecond would be one signature, which the server rightly refuses as a replay; a careful bot
 * signs a repeat with the next millisecond instead.
 */
const lastSigned = new Map<string, number>();

function timestampFor(key: string, payloadWithoutTime: string): number {
  const id = `${key} ${payloadWithoutTime}`;
  const last = lastSigned.get(id);
  const timestamp = last === undefined ? Date.now() : Math.max(Date.now(), last + 1);
  lastSigned.set(id, timestamp);
  return timestamp;
}

export async function call(base: string, method: string, path: string, options: { body?: unknown; rawBody?: string; credentials?: Credentials; timestamp?: number; headers?: Record<string, string>; sign?: (payload: string) => string } = {}): Promise<ApiResponse> {
  const body = options.rawBody ?? (options.body === undefined ? '' : JSON.stringify(options.body));
  const headers: Record<string, string> = { ...options.headers };
  if (body !== '' && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  if (options.credentials !== undefined) {
    const timestamp = String(options.timestamp ?? timestampFor(options.credentials.key, `${method}${path}${body}`));
    const payload = `${timestamp}${method}${path}${body}`;
    headers['x-bourse-key'] = options.credentials.key;
    headers['x-bourse-timestamp'] = timestamp;
    headers['x-bourse-signature'] = options.sign?.(payload) ?? createHmac('sha256', options.credentials.secret).update(payload).digest('hex');
  }
  const response = await fetch(`${base}${path}`, { method, headers, body: body === '' ? undefined : body });
  const text = await response.text();
  const json = (response.headers.get('content-type') ?? '').includes('json');
  return { status: response.status, body: text === '' ? null : json ? JSON.parse(text) : text, headers: response.headers };
}
