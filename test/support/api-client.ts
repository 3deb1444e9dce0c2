/** A minimal signed HTTP client for the native API, as a bot would write it. */
import { createHmac } from 'node:crypto';

export interface Credentials { key: string; secret: string }

export interface ApiResponse { status: number; body: any; headers: Headers }

export async function call(base: string, method: string, path: string, options: { body?: unknown; rawBody?: string; credentials?: Credentials; timestamp?: number; headers?: Record<string, string>; sign?: (payload: string) => string } = {}): Promise<ApiResponse> {
  const body = options.rawBody ?? (options.body === undefined ? '' : JSON.stringify(options.body));
  const headers: Record<string, string> = { ...options.headers };
  if (body !== '' && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  if (options.credentials !== undefined) {
    const timestamp = String(options.timestamp ?? Date.now());
    const payload = `${timestamp}${method}${path}${body}`;
    headers['x-bourse-key'] = options.credentials.key;
    headers['x-bourse-timestamp'] = timestamp;
    headers['x-bourse-signature'] = options.sign?.(payload) ?? createHmac('sha256', options.credentials.secret).update(payload).digest('hex');
  }
  const response = await fetch(`${base}${path}`, { method, headers, body: body === '' ? undefined : body });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text), headers: response.headers };
}
