/**
 * No secret is written down: a running `bourse start` is given a password, a TOTP secret, a
 * session token, an API secret and signed requests (REST and WebSocket, good and bad), and none
 * of them may then be found in any file of its data folder (databases, WAL, journal, snapshots),
 * in anything the process printed, or echoed in an error answer. Only the master key and the
 * admin token, which are secrets themselves and stay outside the databases, are left out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enableTwoFactor } from './support/two-factor.js';
import { call } from './support/api-client.js';
import type { ApiResponse } from './support/api-client.js';
import { admin, startServer } from './support/server-process.js';
import { SocketClient } from './support/ws-client.js';

const OUTSIDE_THE_DATABASES = new Set(['master.key', 'admin.token']);

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && !OUTSIDE_THE_DATABASES.has(entry.name))
    .map((entry) => join(entry.parentPath, entry.name));
}

/** RFC 4648 base32, as TOTP secrets are given out: their raw bytes must not be stored either. */
function base32Bytes(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of text.replace(/=+$/, '')) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

test('no password, TOTP secret, session token, API secret or signature is found in the data folder, the logs or an error answer', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-secrets-'));
  const { child, url } = await startServer(dataDir);
  let printed = '';
  child.stdout!.on('data', (chunk: Buffer) => { printed += chunk.toString('latin1'); });
  child.stderr!.on('data', (chunk: Buffer) => { printed += chunk.toString('latin1'); });
  // Each secret as text, and as raw bytes where it encodes some.
  const secrets = new Map<string, Buffer[]>();
  const remember = (name: string, text: string, raw?: Buffer): void => { secrets.set(name, [Buffer.from(text), ...(raw === undefined ? [] : [raw])]); };
  const errorAnswers: ApiResponse[] = [];
  try {
    const password = `pw-${randomBytes(12).toString('hex')}`;
    remember('password', password);
    await admin(url, dataDir, '/users', { email: 'erin@example.com', password });
    await admin(url, dataDir, '/deposits', { email: 'erin@example.com', asset: 'USDT', amount: '1000' });
    const wrongPassword = `pw-${randomBytes(12).toString('hex')}`;
    remember('mistyped password', wrongPassword);
    errorAnswers.push(await call(url, 'POST', '/api/v1/auth/login', { body: { email: 'erin@example.com', password: wrongPassword } }));

    const login = await call(url, 'POST', '/api/v1/auth/login', { body: { email: 'erin@example.com', password } });
    assert.equal(login.status, 200);
    remember('session token', login.body.token, Buffer.from(login.body.token, 'hex'));
    const session = { authorization: `Bearer ${login.body.token}` };
    const { secret } = await enableTwoFactor(url, session, password, Date.now);
    remember('TOTP secret', secret, base32Bytes(secret));
    const created = { body: await admin(url, dataDir, '/apikeys', { email: 'erin@example.com', permissions: ['read', 'trade'] }) };
    const credentials = { key: created.body.key, secret: created.body.secret };
    remember('API secret', credentials.secret, Buffer.from(credentials.secret, 'hex'));

    // Signed requests, accepted and refused; each signature is remembered.
    const signAs = (name: string, secret: string) => (payload: string): string => {
      const signature = createHmac('sha256', secret).update(payload).digest('hex');
      remember(name, signature);
      return signature;
    };
    assert.equal((await call(url, 'GET', '/api/v1/balances', { credentials, sign: signAs('signature of a read', credentials.secret) })).status, 200);
    const order = { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '60000.00', quantity: '0.0100' };
    const placed = await call(url, 'POST', '/api/v1/orders', { credentials, body: order, sign: signAs('signature of an order', credentials.secret) });
    assert.equal(placed.status, 201, JSON.stringify(placed.body));
    errorAnswers.push(await call(url, 'POST', '/api/v1/orders', { credentials, body: order, sign: signAs('signature made with a wrong secret', randomBytes(32).toString('hex')) }));
    errorAnswers.push(await call(url, 'POST', '/api/v1/orders', { credentials, body: { ...order, price: 'x' }, sign: signAs('signature of a refused order', credentials.secret) }));
    const socket = await SocketClient.connect(url);
    const timestamp = Date.now();
    const socketSignature = createHmac('sha256', credentials.secret).update(`${timestamp}GET/ws`).digest('hex');
    remember('signature of a socket login', socketSignature);
    await socket.login(credentials, timestamp);
    socket.close();
    for (const answer of errorAnswers) assert.ok(answer.status >= 400 && answer.status < 500, JSON.stringify(answer.body));

    const look = (where: string, bytes: Buffer): void => {
      for (const [name, forms] of secrets) {
        for (const form of forms) assert.equal(bytes.includes(form), false, `${where} holds the ${name}`);
      }
    };
    // While running (the WAL files hold the latest writes), and once stopped and checkpointed.
    for (const file of filesUnder(dataDir)) look(file, readFileSync(file));
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const files = filesUnder(dataDir);
    assert.ok(files.some((file) => file.endsWith('.sqlite') || file.endsWith('.db')), `the data folder holds databases: ${files.join(', ')}`);
    for (const file of files) look(file, readFileSync(file));
    look('what the server printed', Buffer.from(printed, 'latin1'));
    for (const answer of errorAnswers) look(`the error answer ${JSON.stringify(answer.body)}`, Buffer.from(JSON.stringify(answer.body)));
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});
