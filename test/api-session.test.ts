import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { generateSync } from 'otplib';
import { call } from './support/api-client.js';
import { Venue } from './support/venue.js';

test('sessions and two-factor authentication: login, TOTP enrolment, codes required, wrong and replayed codes refused', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now });
  try {
    await venue.admin('/users', { email: 'carol@example.com', password: 'correct horse battery' });
    const wrong = await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'carol@example.com', password: 'nope-nope' } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, 'INVALID_CREDENTIALS');
    const login = await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'carol@example.com', password: 'correct horse battery' } });
    assert.equal(login.status, 200);
    const auth = { authorization: `Bearer ${login.body.token}` };
    assert.equal((await call(venue.url, 'GET', '/api/v1/auth/me', { headers: auth })).body.two_factor, false);

    const setup = await call(venue.url, 'POST', '/api/v1/auth/2fa/setup', { headers: auth });
    assert.match(setup.body.otpauth_uri, /^otpauth:\/\/totp\//);
    const code = (offsetSeconds = 0) => generateSync({ secret: setup.body.secret, epoch: Math.floor(now / 1000) + offsetSeconds });
    const badEnable = await call(venue.url, 'POST', '/api/v1/auth/2fa/enable', { headers: auth, body: { code: code() === '000000' ? '111111' : '000000' } });
    assert.equal(badEnable.body.error.code, 'INVALID_TOTP');
    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/2fa/enable', { headers: auth, body: { code: code() } })).body.two_factor, true);

    now += 30_000;
    const missing = await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'carol@example.com', password: 'correct horse battery' } });
    assert.equal(missing.body.error.code, 'TOTP_REQUIRED');
    const withCode = await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'carol@example.com', password: 'correct horse battery', totp: code() } });
    assert.equal(withCode.status, 200);
    const replayed = await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'carol@example.com', password: 'correct horse battery', totp: code() } });
    assert.equal(replayed.body.error.code, 'INVALID_TOTP', 'a code is accepted once');

    const session = { authorization: `Bearer ${withCode.body.token}` };
    const noCode = await call(venue.url, 'POST', '/api/v1/auth/apikeys', { headers: session, body: { permissions: ['read'] } });
    assert.equal(noCode.body.error.code, 'TOTP_REQUIRED', 'creating a key needs the second factor');
    now += 30_000;
    const created = await call(venue.url, 'POST', '/api/v1/auth/apikeys', { headers: session, body: { permissions: ['read'], totp: code() } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const listed = await call(venue.url, 'GET', '/api/v1/auth/apikeys', { headers: session });
    assert.deepEqual(listed.body.keys.map((k: { key: string }) => k.key), [created.body.key]);
    assert.equal(JSON.stringify(listed.body).includes(created.body.secret), false, 'the secret is shown once');
    const credentials = { key: created.body.key, secret: created.body.secret };
    assert.equal((await call(venue.url, 'GET', '/api/v1/balances', { credentials, timestamp: now })).status, 200);
    assert.equal((await call(venue.url, 'DELETE', `/api/v1/auth/apikeys/${created.body.key}`, { headers: session })).body.revoked, true);
    assert.equal((await call(venue.url, 'GET', '/api/v1/balances', { credentials, timestamp: now + 1 })).status, 401);

    await call(venue.url, 'POST', '/api/v1/auth/logout', { headers: session });
    assert.equal((await call(venue.url, 'GET', '/api/v1/auth/me', { headers: session })).status, 401);
  } finally {
    await venue.stop();
  }
});

test('KYC status and user level are set by the operator, and the engine learns the level (api-operator.test.ts shows it pricing fees)', async () => {
  const venue = await Venue.start();
  try {
    await venue.admin('/users', { email: 'dave@example.com', password: 'correct horse battery' });
    const kyc = await venue.admin('/users/kyc', { email: 'dave@example.com', kyc: 'OK', level: 2 });
    assert.equal(kyc.status, 200, JSON.stringify(kyc.body));
    const user = venue.exchange.identity.userByEmail('dave@example.com')!;
    assert.equal(user.kyc, 'OK');
    assert.equal(venue.exchange.engine.users.get(user.id)!.level, 2);
    const bad = await venue.admin('/users/kyc', { email: 'dave@example.com', kyc: 'MAYBE', level: 2 });
    assert.equal(bad.status, 400);
  } finally {
    await venue.stop();
  }
});

/** A login sent from a given loopback address (Linux routes all of 127.0.0.0/8 to the loopback). */
function loginFrom(url: string, localAddress: string, email: string, password: string): Promise<{ status: number; code: string | undefined }> {
  const body = JSON.stringify({ email, password });
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${url}/api/v1/auth/login`, { method: 'POST', localAddress, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, code: (JSON.parse(text) as { error?: { code: string } }).error?.code }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

test('failed logins lock out the guessing address, not the user; many addresses guessing one email lock the email', { skip: process.platform !== 'linux' }, async () => {
  const venue = await Venue.start({ auth: { failuresBeforeLockout: 3, lockoutMs: 60_000 } });
  try {
    await venue.admin('/users', { email: 'dave@example.com', password: 'correct horse battery' });
    for (let i = 0; i < 3; i++) assert.equal((await loginFrom(venue.url, '127.0.0.2', 'dave@example.com', 'guess')).code, 'INVALID_CREDENTIALS');
    assert.deepEqual(await loginFrom(venue.url, '127.0.0.2', 'dave@example.com', 'correct horse battery'), { status: 429, code: 'LOCKED_OUT' }, 'the guessing address is locked out');
    assert.equal((await loginFrom(venue.url, '127.0.0.3', 'dave@example.com', 'correct horse battery')).status, 200, 'the user, elsewhere, is not');

    // Ten times the count from many addresses: the email itself is locked, wherever the next try comes from.
    for (let a = 10; a < 20; a++) {
      for (let i = 0; i < 3; i++) await loginFrom(venue.url, `127.0.0.${a}`, 'dave@example.com', 'guess');
    }
    assert.deepEqual(await loginFrom(venue.url, '127.0.0.4', 'dave@example.com', 'correct horse battery'), { status: 429, code: 'LOCKED_OUT' });
    assert.equal((await loginFrom(venue.url, '127.0.0.4', 'erin@example.com', 'whatever')).code, 'INVALID_CREDENTIALS', 'other emails from that address are not');
  } finally {
    await venue.stop();
  }
});
