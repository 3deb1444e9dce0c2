/**
 * `bourse admin …`: calls the admin API of a running server, found through DATA/server.json
 * (or --url), with the token in DATA/admin.token. Prints the server's JSON answer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AdminOptions {
  dataDir: string;
  url?: string;
  [flag: string]: string | boolean | undefined;
}

function need(options: AdminOptions, flag: string): string {
  const value = options[flag];
  if (typeof value !== 'string' || value === '') throw new Error(`--${flag} is required`);
  return value;
}

const STATES: Record<string, string> = { halt: 'halted', resume: 'trading', 'cancel-only': 'cancel_only', 'post-only': 'post_only' };

export async function runAdmin(words: string[], options: AdminOptions): Promise<unknown> {
  const [noun, verb] = words;
  let path: string;
  let body: Record<string, unknown>;
  if (noun === 'user' && verb === 'create') {
    path = '/users';
    body = { email: need(options, 'email'), password: need(options, 'password') };
  } else if (noun === 'apikey' && verb === 'create') {
    path = '/apikeys';
    const ip = typeof options.ip === 'string' ? options.ip.split(',').filter((x) => x !== '') : [];
    body = { email: need(options, 'email'), permissions: need(options, 'permissions').split(','), ip };
  } else if (noun === 'deposit') {
    path = '/deposits';
    body = { email: need(options, 'email'), asset: need(options, 'asset'), amount: need(options, 'amount') };
  } else if (noun === 'asset' && verb === 'create') {
    path = '/assets';
    body = { code: need(options, 'code'), precision: Number(need(options, 'precision')) };
  } else if (noun === 'market' && verb === 'create') {
    path = '/markets';
    body = { base: need(options, 'base'), quote: need(options, 'quote'), tick: need(options, 'tick'), lot: need(options, 'lot') };
  } else if (noun === 'market' && verb !== undefined && STATES[verb] !== undefined) {
    path = `/markets/${encodeURIComponent(need(options, 'market'))}/state`;
    body = { state: STATES[verb] };
  } else if (noun === 'fees' && verb === 'set') {
    path = `/markets/${encodeURIComponent(need(options, 'market'))}/fees`;
    body = { maker: need(options, 'maker'), taker: need(options, 'taker') };
  } else {
    throw new Error(`unknown admin command: ${words.join(' ')}`);
  }
  const base = options.url ?? (JSON.parse(readFileSync(join(options.dataDir, 'server.json'), 'utf8')) as { url: string }).url;
  const token = readFileSync(join(options.dataDir, 'admin.token'), 'utf8').trim();
  const response = await fetch(`${base}/admin/v1${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as unknown;
  if (!response.ok) {
    process.exitCode = 1;
  }
  return answer;
}
