import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { generateSync } from 'otplib';
import { enableTwoFactor } from './support/two-factor.js';
import { call } from './support/api-client.js';
import { Venue } from './support/venue.js';
import { SocketClient } from './support/ws-client.js';
import { outbox } from './support/mail.js';

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

    const setup = await call(venue.url, 'POST', '/api/v1/auth/2fa/setup', { headers: auth, body: { password: 'correct horse battery' } });
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

test('two-factor takes the password to set up (a stolen session cannot enrol a thief\'s device), turning it on mails the owner, and the user turns it off with the password and a code to move to another device: other sessions end and the owner is told', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now });
  try {
    await venue.admin('/users', { email: 'uma@example.com', password: 'correct horse battery' });
    const login = (totp?: string) => call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'uma@example.com', password: 'correct horse battery', ...(totp === undefined ? {} : { totp }) } });
    const headers = { authorization: `Bearer ${(await login()).body.token}` };
    const setup = (password?: string) => call(venue.url, 'POST', '/api/v1/auth/2fa/setup', { headers, body: password === undefined ? {} : { password } });
    assert.equal((await setup()).status, 400, 'the password is asked for');
    assert.deepEqual([(await setup('a guess')).status, (await setup('a guess')).body.error.code], [401, 'INVALID_CREDENTIALS']);
    const first = await setup('correct horse battery');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const code = (secret: string) => generateSync({ secret, epoch: Math.floor(now / 1000) });
    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/2fa/enable', { headers, body: { code: code(first.body.secret) } })).body.two_factor, true);
    await venue.app.mailer.settled();
    const turnedOn = (await outbox(venue.dataDir, 0)).filter((m) => m.subject === 'Two-factor authentication turned on at Bourse');
    assert.equal(turnedOn.length, 1, 'the owner is told');
    assert.match(turnedOn[0]!.text, /Not you\? Freeze the account/);
    assert.deepEqual([(await setup('correct horse battery')).status, (await setup('correct horse battery')).body.error.code], [409, 'TOTP_ALREADY_ENABLED']);

    now += 30_000;
    const other = { authorization: `Bearer ${(await login(code(first.body.secret))).body.token}` };
    now += 30_000;
    const disable = (body: Record<string, unknown>) => call(venue.url, 'POST', '/api/v1/auth/2fa/disable', { headers, body });
    assert.equal((await disable({ password: 'correct horse battery' })).status, 400, 'a code is asked for');
    const wrongCode = code(first.body.secret) === '000000' ? '111111' : '000000';
    assert.equal((await disable({ password: 'correct horse battery', totp: wrongCode })).body.error.code, 'INVALID_TOTP');
    assert.equal((await disable({ password: 'a guess', totp: code(first.body.secret) })).body.error.code, 'INVALID_CREDENTIALS');
    const off = await disable({ password: 'correct horse battery', totp: code(first.body.secret) });
    assert.deepEqual(off.body, { two_factor: false, other_sessions_ended: 1 });
    assert.equal((await call(venue.url, 'GET', '/api/v1/auth/me', { headers: other })).status, 401, 'the other session ended');
    assert.equal((await call(venue.url, 'GET', '/api/v1/auth/me', { headers })).body.two_factor, false, 'this one stays');
    assert.equal((await disable({ password: 'correct horse battery', totp: code(first.body.secret) })).body.error.code, 'TOTP_NOT_ENABLED');
    await venue.app.mailer.settled();
    const turnedOff = (await outbox(venue.dataDir, 0)).filter((m) => m.subject === 'Two-factor authentication turned off at Bourse');
    assert.equal(turnedOff.length, 1);
    assert.match(turnedOff[0]!.text, /You turned off two-factor authentication/);
    const activity = (await call(venue.url, 'GET', '/api/v1/auth/activity', { headers })).body.activity.map((e: { event: string; by: string }) => `${e.event} ${e.by}`);
    assert.deepEqual(activity.slice(0, 2), ['two_factor_disabled user', 'two_factor_enabled user']);

    // The new device.
    assert.equal((await login()).status, 200, 'a password alone logs in again');
    const second = await setup('correct horse battery');
    assert.notEqual(second.body.secret, first.body.secret);
    now += 30_000;
    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/2fa/enable', { headers, body: { code: code(second.body.secret) } })).body.two_factor, true);
  } finally {
    await venue.stop();
  }
});

test('a user changes their password giving the current one (and a code once enrolled): other sessions end, this one stays, the old password stops working; the operator resets a lost password or device; wrong current passwords lock out', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now, auth: { failuresBeforeLockout: 3, lockoutMs: 60_000 } });
  const login = (password: string, totp?: string) => call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'erin@example.com', password, ...(totp === undefined ? {} : { totp }) } });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const me = async (token: string) => (await call(venue.url, 'GET', '/api/v1/auth/me', { headers: bearer(token) })).status;
  const change = (token: string, body: Record<string, unknown>) => call(venue.url, 'POST', '/api/v1/auth/password', { headers: bearer(token), body });
  try {
    await venue.admin('/users', { email: 'erin@example.com', password: 'first password' });
    const here = (await login('first password')).body.token as string;
    const elsewhere = (await login('first password')).body.token as string;
    const { code } = await enableTwoFactor(venue.url, bearer(here), 'first password', () => now);
    now += 30_000;

    assert.equal((await change(here, { current_password: 'first password', new_password: 'second password' })).body.error.code, 'TOTP_REQUIRED');
    assert.equal((await change(here, { current_password: 'first password', new_password: 'short', totp: code() })).body.error.code, 'WEAK_PASSWORD');
    now += 30_000;
    const changed = await change(here, { current_password: 'first password', new_password: 'second password', totp: code() });
    assert.deepEqual([changed.status, changed.body], [200, { password_changed: true, other_sessions_ended: 1 }]);
    assert.deepEqual([await me(here), await me(elsewhere)], [200, 401], 'the session that changed it stays; the other ends');
    assert.equal((await login('first password', code())).body.error.code, 'INVALID_CREDENTIALS');
    now += 30_000;
    assert.equal((await login('second password', code())).status, 200);

    // Support: a lost device, then a lost password. Each ends every session.
    const reset = await venue.admin('/users/reset-2fa', { email: 'erin@example.com' });
    assert.deepEqual(reset.body, { email: 'erin@example.com', two_factor: false, was_on: true, sessions_ended: 2 });
    assert.equal(await me(here), 401);
    const noCode = await login('second password');
    assert.deepEqual([noCode.status, noCode.body.two_factor], [200, false], 'two-factor is off: the password alone logs in');
    const set = await venue.admin('/users/password', { email: 'erin@example.com', password: 'set by support' });
    assert.deepEqual(set.body, { email: 'erin@example.com', password_changed: true, sessions_ended: 1 });
    assert.equal(await me(noCode.body.token), 401);
    assert.equal((await login('second password')).status, 401);
    const fresh = (await login('set by support')).body.token as string;
    assert.equal((await venue.admin('/users/password', { email: 'nobody@example.com', password: 'set by support' })).body.error.code, 'UNKNOWN_USER');

    // A stolen session cannot guess the password: wrong ones count toward the login lockout
    // (counted afresh: the failed logins above are past the minute failures are counted over).
    now += 61_000;
    for (let i = 0; i < 2; i++) assert.equal((await change(fresh, { current_password: 'a guess!', new_password: 'taken over' })).body.error.code, 'INVALID_CREDENTIALS');
    assert.equal((await login('a wrong one')).status, 401);
    const locked = await change(fresh, { current_password: 'set by support', new_password: 'taken over' });
    assert.deepEqual([locked.status, locked.body.error.code], [429, 'LOCKED_OUT'], 'three failures from this address, password guesses and logins together');
    assert.equal((await login('taken over')).status, 429);
  } finally {
    await venue.stop();
  }
});

test('a session unused for 30 minutes ends, whatever its lifetime left; each use keeps it alive, and the list of sessions shows when each was last used', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now });
  try {
    await venue.admin('/users', { email: 'ida@example.com', password: 'correct horse battery' });
    const open = async () => ({ authorization: `Bearer ${(await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'ida@example.com', password: 'correct horse battery' } })).body.token}` });
    const me = (headers: Record<string, string>) => call(venue.url, 'GET', '/api/v1/auth/me', { headers });
    const busy = await open();
    const left = await open();
    for (let minute = 0; minute < 6; minute++) {
      now += 10 * 60_000;
      assert.equal((await me(busy)).status, 200, `used every ten minutes: alive after ${(minute + 1) * 10} minutes`);
    }
    assert.equal((await me(left)).status, 401, 'left unused for an hour: ended');
    const listed = (await call(venue.url, 'GET', '/api/v1/auth/sessions', { headers: busy })).body.sessions as { last_seen_at: number; created_at: number; current: boolean }[];
    assert.equal(listed.length, 1, 'the idle session is not listed');
    assert.deepEqual([listed[0]!.current, listed[0]!.last_seen_at, now - listed[0]!.created_at], [true, now, 60 * 60_000]);
    now += 30 * 60_000 - 1;
    assert.equal((await me(busy)).status, 200, 'a millisecond short of 30 minutes');
    now += 30 * 60_000;
    assert.equal((await me(busy)).status, 401, '30 minutes unused');
  } finally {
    await venue.stop();
  }
});

test('the operator sets how long sessions last (auth.sessionTtlMs, auth.sessionIdleMs): a session in use still ends at its lifetime, and one unused ends at the idle time', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now, sessions: { ttlMs: 2 * 3_600_000, idleMs: 5 * 60_000 } });
  try {
    await venue.admin('/users', { email: 'joy@example.com', password: 'correct horse battery' });
    const open = async () => ({ authorization: `Bearer ${(await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'joy@example.com', password: 'correct horse battery' } })).body.token}` });
    const me = (headers: Record<string, string>) => call(venue.url, 'GET', '/api/v1/auth/me', { headers });
    const opened = now;
    const busy = await open();
    const idle = await open();
    now += 4 * 60_000;
    assert.equal((await me(busy)).status, 200);
    now += 60_000;
    assert.equal((await me(idle)).status, 401, 'five minutes unused');
    while (now + 4 * 60_000 < opened + 2 * 3_600_000) {
      assert.equal((await me(busy)).status, 200, `in use, ${(now - opened) / 60_000} minutes on`);
      now += 4 * 60_000;
    }
    assert.equal((await me(busy)).status, 200);
    now = opened + 2 * 3_600_000;
    assert.equal((await me(busy)).status, 401, 'two hours on, in use or not');
  } finally {
    await venue.stop();
  }
});

test('a user lists their live sessions and ends one, or every one but this: a device left logged in, or another user\'s session, is out of reach', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const login = async (email: string, agent = 'node') => (await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email, password: 'correct horse battery' }, headers: { 'user-agent': agent } })).body.token as string;
  const me = async (token: string) => (await call(venue.url, 'GET', '/api/v1/auth/me', { headers: bearer(token) })).status;
  const list = async (token: string) => (await call(venue.url, 'GET', '/api/v1/auth/sessions', { headers: bearer(token) })).body.sessions as { id: string; created_at: number; current: boolean; address: string; user_agent: string }[];
  try {
    for (const email of ['fay@example.com', 'gus@example.com']) await venue.admin('/users', { email, password: 'correct horse battery' });
    const laptop = await login('fay@example.com');
    now += 1_000;
    const phone = await login('fay@example.com');
    now += 1_000;
    const cafe = await login('fay@example.com', 'Cafe Browser/9');
    const gus = await login('gus@example.com');

    const seen = await list(laptop);
    assert.equal(seen.length, 3, 'only her own sessions');
    assert.deepEqual(seen.map((x) => x.created_at), [now, now - 1_000, now - 2_000], 'newest first');
    assert.deepEqual(seen.map((x) => x.current), [false, false, true], 'the one asking is marked');
    assert.deepEqual([seen[0]!.address, seen[0]!.user_agent], ['127.0.0.1', 'Cafe Browser/9'], 'each says where it was opened, to tell a stranger\'s from one\'s own');
    assert.ok(!JSON.stringify(seen).includes(cafe), 'ids are not tokens');

    const cafeId = (await list(cafe)).find((x) => x.current)!.id;
    const gusId = (await list(gus))[0]!.id;
    const ended = await call(venue.url, 'DELETE', `/api/v1/auth/sessions/${cafeId}`, { headers: bearer(laptop) });
    assert.deepEqual(ended.body, { id: cafeId, ended: true });
    assert.deepEqual([await me(cafe), await me(laptop), await me(phone)], [401, 200, 200]);
    assert.equal((await call(venue.url, 'DELETE', `/api/v1/auth/sessions/${gusId}`, { headers: bearer(laptop) })).body.error.code, 'UNKNOWN_SESSION');
    assert.equal(await me(gus), 200, "another user's session is out of reach");

    assert.deepEqual((await call(venue.url, 'DELETE', '/api/v1/auth/sessions', { headers: bearer(laptop) })).body, { other_sessions_ended: 1 });
    assert.deepEqual([await me(phone), await me(laptop), await me(gus)], [401, 200, 200]);
    assert.equal((await list(laptop)).length, 1);
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

test('a user names each key and sees when and from where it was last used, to the minute, and that it survives a restart', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now });
  let restarted: Venue | undefined;
  try {
    await venue.admin('/users', { email: 'dora@example.com', password: 'correct horse battery' });
    const session = { authorization: `Bearer ${(await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'dora@example.com', password: 'correct horse battery' } })).body.token}` };
    const bot = await call(venue.url, 'POST', '/api/v1/auth/apikeys', { headers: session, body: { permissions: ['read', 'trade'], label: 'grid bot' } });
    assert.deepEqual([bot.status, bot.body.label], [201, 'grid bot']);
    const idle = await venue.admin('/apikeys', { email: 'dora@example.com', permissions: ['read'], label: 'tax export' });
    assert.equal(idle.body.label, 'tax export');
    const badLabel = await call(venue.url, 'POST', '/api/v1/auth/apikeys', { headers: session, body: { permissions: ['read'], label: 'tab\there' } });
    assert.equal(badLabel.status, 400);
    const keys = async (v: Venue) => (await call(v.url, 'GET', '/api/v1/auth/apikeys', { headers: session })).body.keys as { key: string; label: string; account: number; last_used_at: number | null; last_used_ip: string | null }[];
    const byLabel = async (v: Venue, label: string) => (await keys(v)).find((k) => k.label === label)!;
    assert.deepEqual([(await byLabel(venue, 'grid bot')).last_used_at, (await byLabel(venue, 'grid bot')).account], [null, idle.body.account], 'the listing says which account each key acts on');

    const credentials = { key: bot.body.key, secret: bot.body.secret };
    const firstUse = now;
    assert.equal((await call(venue.url, 'GET', '/api/v1/balances', { credentials, timestamp: now })).status, 200);
    assert.deepEqual([(await byLabel(venue, 'grid bot')).last_used_at, (await byLabel(venue, 'grid bot')).last_used_ip], [firstUse, '127.0.0.1']);
    now += 30_000;
    assert.equal((await call(venue.url, 'GET', '/api/v1/balances', { credentials, timestamp: now })).status, 200);
    assert.equal((await byLabel(venue, 'grid bot')).last_used_at, firstUse, 'within the minute, the use is not written again');
    now += 31_000;
    assert.equal((await call(venue.url, 'GET', '/api/v1/balances', { credentials, timestamp: now })).status, 200);
    assert.equal((await byLabel(venue, 'grid bot')).last_used_at, now, 'a minute on, it is');
    assert.equal((await byLabel(venue, 'tax export')).last_used_at, null, 'a key never used says so');
    const bad = await call(venue.url, 'GET', '/api/v1/balances', { credentials: { key: idle.body.key, secret: 'wrong' }, timestamp: now });
    assert.equal(bad.status, 401);
    assert.equal((await byLabel(venue, 'tax export')).last_used_at, null, 'a refused request is no use');
    const admin = (await call(venue.url, 'GET', '/admin/v1/apikeys?email=dora@example.com', { headers: { authorization: `Bearer ${venue.exchange.adminToken}` } })).body.keys;
    assert.deepEqual(admin.map((k: { label: string; last_used_at: number | null }) => [k.label, k.last_used_at]).sort(), [['grid bot', now], ['tax export', null]], 'the operator sees the same');

    const usedAt = now;
    now += 61_000;
    assert.equal((await call(venue.url, 'GET', '/api/v1/balances', { credentials, timestamp: now })).status, 200);
    const dataDir = venue.dataDir;
    await venue.stop(true);
    restarted = await Venue.start({ clock: () => now, dataDir });
    assert.equal((await byLabel(restarted, 'grid bot')).last_used_at, usedAt + 61_000, 'a use gathered in memory is written when the server stops');
  } finally {
    if (restarted !== undefined) await restarted.stop();
    else await venue.stop();
  }
});

test('every login attempt at a user goes into their login history (when, from where, which client, how it ended), which they and support read, newest first; attempts at unknown emails go nowhere', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now, auth: { failuresBeforeLockout: 3, lockoutMs: 60_000 } });
  try {
    await venue.admin('/users', { email: 'erin@example.com', password: 'correct horse battery' });
    const login = (password: string, agent = 'bot/1.0') => call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'Erin@Example.com', password }, headers: { 'user-agent': agent } });
    assert.equal((await login('guess-one')).status, 401);
    now += 1;
    const ok = await login('correct horse battery', 'Mozilla/5.0 (X11)');
    assert.equal(ok.status, 200);
    now += 1;
    await login('guess-two');
    now += 1;
    await login('guess-three');
    now += 1;
    assert.equal((await login('correct horse battery')).status, 429, 'the address is locked out now');
    await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'nobody@example.com', password: 'whatever-1' } });

    const session = { authorization: `Bearer ${ok.body.token}` };
    const mine = (await call(venue.url, 'GET', '/api/v1/auth/logins', { headers: session })).body.logins as { time: number; address: string; user_agent: string; outcome: string }[];
    assert.deepEqual(mine.map((l) => l.outcome), ['locked_out', 'wrong_password', 'wrong_password', 'ok', 'wrong_password']);
    assert.deepEqual([mine[3]!.user_agent, mine[3]!.address, mine[3]!.time], ['Mozilla/5.0 (X11)', '127.0.0.1', now - 3]);
    assert.equal((await call(venue.url, 'GET', '/api/v1/auth/logins?limit=2', { headers: session })).body.logins.length, 2);
    assert.equal((await call(venue.url, 'GET', '/api/v1/auth/logins')).status, 401, 'a session only');
    const support = await venue.admin('/users/logins?email=erin%40example.com', undefined, 'GET');
    assert.deepEqual(support.body.logins, mine, 'support reads the same history');
    assert.equal(JSON.stringify(support.body).includes('guess'), false, 'no password is kept');
  } finally {
    await venue.stop();
  }
});

test('a user changes a key\'s IP allow-list and label without making a new one (a TOTP code once enrolled): the key then works only from there, sockets signed in with it close, a withdraw key keeps a list, another user\'s key is out of reach; the owner is mailed about every new key', async () => {
  const venue = await Venue.start({ server: { trustProxy: ['127.0.0.1'] } });
  try {
    const trader = await venue.trader('ravi@example.com', { USDT: '100' });
    const other = await venue.trader('sana@example.com', { USDT: '100' });
    const login = await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'ravi@example.com', password: 'correct horse battery' } });
    const headers = { authorization: `Bearer ${login.body.token}` };
    const balancesFrom = (address: string) => call(venue.url, 'GET', '/api/v1/balances', { credentials: trader, headers: { 'x-forwarded-for': address } });
    assert.equal((await balancesFrom('198.51.100.20')).status, 200);
    const socket = await SocketClient.connect(venue.url);
    await socket.login(trader);

    const changed = await call(venue.url, 'PATCH', `/api/v1/auth/apikeys/${trader.key}`, { headers, body: { ip: ['203.0.113.0/24'], label: 'office bot' } });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.deepEqual([changed.body.ip, changed.body.label], [['203.0.113.0/24'], 'office bot']);
    assert.equal((await balancesFrom('198.51.100.20')).body.error.code, 'IP_NOT_ALLOWED', 'the cached key is dropped at once');
    assert.equal((await balancesFrom('203.0.113.9')).status, 200);
    for (let i = 0; i < 100 && socket.closed === null; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(socket.closed, { code: 1008, reason: 'API key changed' });

    assert.equal((await call(venue.url, 'PATCH', `/api/v1/auth/apikeys/${other.key}`, { headers, body: { label: 'mine now' } })).status, 404, 'another user\'s key');
    assert.equal((await call(venue.url, 'PATCH', `/api/v1/auth/apikeys/${trader.key}`, { headers, body: {} })).status, 400, 'something must change');
    assert.equal((await call(venue.url, 'PATCH', `/api/v1/auth/apikeys/${trader.key}`, { headers, body: { ip: ['not an address'] } })).body.error.code, 'INVALID_IP');

    const withdrawKey = await call(venue.url, 'POST', '/api/v1/auth/apikeys', { headers, body: { permissions: ['read', 'withdraw'], ip: ['127.0.0.1'] } });
    assert.equal(withdrawKey.status, 201);
    assert.equal((await call(venue.url, 'PATCH', `/api/v1/auth/apikeys/${withdrawKey.body.key}`, { headers, body: { ip: [] } })).body.error.code, 'IP_ALLOW_LIST_REQUIRED');
    const bySupport = await call(venue.url, 'PATCH', `/admin/v1/apikeys/${withdrawKey.body.key}?email=ravi@example.com`, { headers: { authorization: `Bearer ${venue.exchange.adminToken}` }, body: { ip: ['127.0.0.1', '10.0.0.0/8'] } });
    assert.deepEqual(bySupport.body.ip, ['127.0.0.1', '10.0.0.0/8']);

    await venue.app.mailer.settled();
    const sent = (await outbox(venue.dataDir, 0)).filter((m) => m.to === 'ravi@example.com');
    assert.deepEqual(sent.map((m) => m.subject), ['New API key on your Bourse account', 'New API key on your Bourse account'], 'the key support made and the one the user made');
    assert.match(sent[1]!.text, new RegExp(`key: {9}${withdrawKey.body.key}\\n  permissions: read, withdraw\\n  usable from: 127\\.0\\.0\\.1`));
    assert.match(sent[1]!.text, /Not you\? Freeze the account/);
    const activity = (await call(venue.url, 'GET', '/api/v1/auth/activity', { headers })).body.activity.map((e: { event: string; by: string }) => `${e.event} ${e.by}`);
    assert.deepEqual(activity.slice(0, 3), ['api_key_changed support', 'api_key_created user', 'api_key_changed user']);
  } finally {
    await venue.stop();
  }
});

test('wrong two-factor codes on a session\'s sensitive routes (new key, key change, anti-phishing code) count toward the lockout, so a stolen session cannot guess six digits at full rate', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now, auth: { failuresBeforeLockout: 3, lockoutMs: 60_000 } });
  try {
    await venue.admin('/users', { email: 'tess@example.com', password: 'correct horse battery' });
    const login = await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'tess@example.com', password: 'correct horse battery' } });
    const headers = { authorization: `Bearer ${login.body.token}` };
    const { code } = await enableTwoFactor(venue.url, headers, 'correct horse battery', () => now);
    now += 30_000;
    const wrong = () => (code() === '000000' ? '111111' : '000000');
    const guesses = [
      () => call(venue.url, 'POST', '/api/v1/auth/apikeys', { headers, body: { permissions: ['read'], totp: wrong() } }),
      () => call(venue.url, 'PUT', '/api/v1/auth/anti-phishing', { headers, body: { code: 'Heron42', totp: wrong() } }),
      () => call(venue.url, 'PATCH', `/api/v1/auth/apikeys/${'0'.repeat(32)}`, { headers, body: { label: 'x', totp: wrong() } }),
    ];
    for (const guess of guesses) assert.equal((await guess()).body.error.code, 'INVALID_TOTP');
    const locked = await call(venue.url, 'PUT', '/api/v1/auth/anti-phishing', { headers, body: { code: 'Heron42', totp: code() } });
    assert.equal(locked.status, 429, 'even the right code waits out the lockout');
    assert.equal(locked.body.error.code, 'LOCKED_OUT');
  } finally {
    await venue.stop();
  }
});
