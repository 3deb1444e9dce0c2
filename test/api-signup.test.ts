import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { availableParallelism } from 'node:os';
import { passwordWork } from '../src/identity/password-work.js';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { enableTwoFactor } from './support/two-factor.js';
import { SMTPServer } from 'smtp-server';
import { call } from './support/api-client.js';
import { codeIn, outbox, parseMail } from './support/mail.js';
import type { ReadMail } from './support/mail.js';
import { Venue } from './support/venue.js';
import { until } from './support/until.js';
import { CLI } from './support/server-process.js';

const execFileAsync = promisify(execFile);
const signup = (venue: Venue, email: string, password: string) => call(venue.url, 'POST', '/api/v1/auth/signup', { body: { email, password } });
const login = (venue: Venue, email: string, password: string, totp?: string) =>
  call(venue.url, 'POST', '/api/v1/auth/login', { body: { email, password, ...(totp === undefined ? {} : { totp }) } });

/** Every mail the venue has sent so far (once those under way are written). */
async function mails(venue: Venue): Promise<ReadMail[]> {
  await venue.app.mailer.settled();
  return outbox(venue.dataDir, 0);
}

test('anyone signs up by mail: no account until the mailed code comes back, a login before is told to confirm, the code opens the account once, and the new user logs in, makes a key and trades', async () => {
  const venue = await Venue.start();
  try {
    const asked = await signup(venue, ' Dana@Example.com ', 'a long enough password');
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    assert.equal(asked.body.status, 'check_your_email');
    const [mail, ...more] = await mails(venue);
    assert.equal(more.length, 0);
    assert.equal(mail!.to, 'dana@example.com');
    assert.equal(mail!.subject, 'Confirm your email for Bourse');
    assert.equal(statSync(mail!.file!).mode & 0o777, 0o600, 'a code in the outbox is for the operator only');
    const code = codeIn(mail!);

    assert.equal((await venue.admin('/users?email=dana@example.com', undefined, 'GET')).status, 404, 'no user before the code comes back');
    const early = await login(venue, 'dana@example.com', 'a long enough password');
    assert.equal(early.status, 403);
    assert.equal(early.body.error.code, 'EMAIL_NOT_CONFIRMED');
    const guess = await login(venue, 'dana@example.com', 'some other password');
    assert.equal(guess.body.error.code, 'INVALID_CREDENTIALS', 'only the sign-up\'s own password learns that it waits');

    const wrong = await call(venue.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: code.replace(/^./, code[0] === 'a' ? 'b' : 'a') } });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.error.code, 'INVALID_TOKEN');
    const malformed = await call(venue.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: 'x' } });
    assert.equal(malformed.status, 400);

    const confirmed = await call(venue.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: code } });
    assert.equal(confirmed.status, 201, JSON.stringify(confirmed.body));
    assert.equal(confirmed.body.email, 'dana@example.com');
    assert.equal(confirmed.body.kyc, 'NOT_VERIFIED');
    const again = await call(venue.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: code } });
    assert.equal(again.body.error.code, 'INVALID_TOKEN', 'a code works once');

    const session = await login(venue, 'dana@example.com', 'a long enough password');
    assert.equal(session.status, 200, JSON.stringify(session.body));
    const headers = { authorization: `Bearer ${session.body.token}` };
    const key = await call(venue.url, 'POST', '/api/v1/auth/apikeys', { headers, body: { permissions: ['read', 'trade'] } });
    assert.equal(key.status, 201);
    const credentials = { key: key.body.key, secret: key.body.secret };
    assert.equal((await venue.admin('/deposits', { email: 'dana@example.com', asset: 'USDT', amount: '1000' })).status, 201);
    const order = await call(venue.url, 'POST', '/api/v1/orders', { credentials, body: { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '100.00', quantity: '0.0100' } });
    assert.equal(order.status, 201, JSON.stringify(order.body));
    assert.equal(order.body.account, confirmed.body.account, 'the engine knows the account the sign-up opened');
  } finally {
    await venue.stop();
  }
});

test('a sign-up with an address that has an account is answered alike, opens nothing and tells the owner; bad input gets 400 and no mail; an address gets one mail a minute, and codes expire in a day', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now });
  try {
    assert.equal((await venue.admin('/users', { email: 'erin@example.com', password: 'correct horse battery' })).status, 201);
    const taken = await signup(venue, 'erin@example.com', 'another password here');
    const fresh = await signup(venue, 'frank@example.com', 'frank password one');
    assert.equal(taken.status, 202);
    assert.deepEqual(taken.body, fresh.body, 'the answer does not tell who has an account');
    const sent = await mails(venue);
    assert.deepEqual(sent.map((m) => [m.to, m.subject]), [
      ['erin@example.com', 'Sign-up attempt at Bourse'],
      ['frank@example.com', 'Confirm your email for Bourse'],
    ]);
    assert.equal((await login(venue, 'erin@example.com', 'another password here')).body.error.code, 'INVALID_CREDENTIALS', 'the account is unchanged');
    assert.equal((await login(venue, 'erin@example.com', 'correct horse battery')).status, 200);

    assert.equal((await signup(venue, 'not-an-address', 'long enough pass')).body.error.code, 'INVALID_EMAIL');
    assert.equal((await signup(venue, 'gina@example.com', 'short')).body.error.code, 'WEAK_PASSWORD');
    assert.equal((await signup(venue, 'gina@example.com', 'x'.repeat(300))).status, 400);

    // Within the minute: answered alike, no second mail, and the first code still opens the account.
    const first = codeIn(sent[1]!);
    assert.equal((await signup(venue, 'frank@example.com', 'frank password two')).status, 202);
    assert.equal((await signup(venue, 'erin@example.com', 'yet another one')).status, 202);
    assert.equal((await mails(venue)).length, 2, 'no inbox is flooded through the exchange');
    // A minute on, a new sign-up mails a new code, which replaces the first.
    now += 61_000;
    assert.equal((await signup(venue, 'frank@example.com', 'frank password three')).status, 202);
    const third = await mails(venue);
    assert.equal(third.length, 3);
    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: first } })).body.error.code, 'INVALID_TOKEN');
    // A day on, that code has expired too.
    now += 86_400_000;
    const late = await call(venue.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: codeIn(third[2]!) } });
    assert.equal(late.body.error.code, 'INVALID_TOKEN');
    assert.equal((await venue.admin('/users?email=frank@example.com', undefined, 'GET')).status, 404);

    // A sign-up the operator overtakes: the operator's user stands, the mailed code opens nothing.
    now += 61_000;
    await signup(venue, 'hana@example.com', 'hana password one');
    const hanaCode = codeIn((await mails(venue))[3]!);
    assert.equal((await venue.admin('/users', { email: 'hana@example.com', password: 'operator set this' })).status, 201);
    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: hanaCode } })).body.error.code, 'INVALID_TOKEN');
    assert.equal((await login(venue, 'hana@example.com', 'operator set this')).status, 200);

    // Support sees the sign-ups waiting, and opens one whose mail never came, with the user's own password.
    now += 61_000;
    await signup(venue, 'omar@example.com', 'omar password one');
    // The venue runs in this process: the CLI must not block it.
    const admin = async (...words: string[]) => JSON.parse((await execFileAsync(process.execPath, [CLI, 'admin', ...words, '--data', venue.dataDir, '--url', venue.url])).stdout) as Record<string, any>;
    assert.deepEqual((await admin('signup', 'list')).signups, [{ email: 'omar@example.com', created_at: now, expires_at: now + 86_400_000 }]);
    assert.equal((await venue.admin('/signups/confirm', { email: 'omar@example.com' })).status, 201);
    assert.equal((await login(venue, 'omar@example.com', 'omar password one')).status, 200);
    assert.deepEqual((await admin('signup', 'list', '--email', 'omar@example.com')).signups, []);
    assert.equal((await venue.admin('/signups/confirm', { email: 'omar@example.com' })).body.error.code, 'UNKNOWN_SIGNUP');
  } finally {
    await venue.stop();
  }

  const closed = await Venue.start({ server: { registration: { open: false } } });
  try {
    const refused = await signup(closed, 'ivan@example.com', 'long enough pass');
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'REGISTRATION_CLOSED');
    assert.equal((await mails(closed)).length, 0);
  } finally {
    await closed.stop();
  }
});

test('a forgotten password is reset with a mailed code: unknown addresses get the same answer and no mail; the code works once within the hour and a newer one replaces it; a two-factor user also gives a code; every session ends and the owner is told', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now });
  const reset = (email: string) => call(venue.url, 'POST', '/api/v1/auth/password-reset', { body: { email } });
  const confirm = (token: string, password: string, totp?: string) =>
    call(venue.url, 'POST', '/api/v1/auth/password-reset/confirm', { body: { token, new_password: password, ...(totp === undefined ? {} : { totp }) } });
  try {
    await venue.admin('/users', { email: 'bob@example.com', password: 'correct horse battery' });
    const session = await login(venue, 'bob@example.com', 'correct horse battery');
    const unknown = await reset('nobody@example.com');
    const known = await reset('Bob@Example.com');
    assert.equal(known.status, 202);
    assert.deepEqual(unknown.body, known.body);
    let sent = await mails(venue);
    assert.deepEqual(sent.map((m) => [m.to, m.subject]), [['bob@example.com', 'Reset your Bourse password']]);
    const first = codeIn(sent[0]!);

    assert.equal((await reset('bob@example.com')).status, 202);
    assert.equal((await mails(venue)).length, 1, 'one reset mail a minute');
    now += 61_000;
    await reset('bob@example.com');
    sent = await mails(venue);
    assert.equal(sent.length, 2);
    const second = codeIn(sent[1]!);
    assert.equal((await confirm(first, 'a new password 1')).body.error.code, 'INVALID_TOKEN', 'a newer code replaces the older');

    assert.equal((await confirm(second, 'short')).body.error.code, 'WEAK_PASSWORD');
    const done = await confirm(second, 'a new password 1');
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.deepEqual(done.body, { password_changed: true, sessions_ended: 1 });
    assert.equal((await call(venue.url, 'GET', '/api/v1/auth/me', { headers: { authorization: `Bearer ${session.body.token}` } })).status, 401, 'every session ended');
    assert.equal((await login(venue, 'bob@example.com', 'correct horse battery')).status, 401);
    const fresh = await login(venue, 'bob@example.com', 'a new password 1');
    assert.equal(fresh.status, 200);
    assert.equal((await confirm(second, 'a new password 2')).body.error.code, 'INVALID_TOKEN', 'a code works once');
    sent = await mails(venue);
    assert.deepEqual(sent.slice(2).map((m) => [m.to, m.subject]), [['bob@example.com', 'Your Bourse password was changed']]);
    assert.match(sent[2]!.text, /changed with a reset code/);

    // An hour on, an unused code has expired.
    now += 61_000;
    await reset('bob@example.com');
    const expiring = codeIn((await mails(venue))[3]!);
    now += 3_600_000;
    assert.equal((await confirm(expiring, 'a new password 2')).body.error.code, 'INVALID_TOKEN');

    // With two-factor on, the mailbox alone is not enough (a new session: the first one idled out in the hour).
    const headers = { authorization: `Bearer ${(await login(venue, 'bob@example.com', 'a new password 1')).body.token}` };
    const { code: totp } = await enableTwoFactor(venue.url, headers, 'a new password 1', () => now);
    now += 61_000;
    await reset('bob@example.com');
    const withTotp = codeIn((await mails(venue)).filter((m) => m.subject === 'Reset your Bourse password').at(-1)!);
    assert.equal((await confirm(withTotp, 'a new password 3')).body.error.code, 'TOTP_REQUIRED');
    assert.equal((await confirm(withTotp, 'a new password 3', totp() === '000000' ? '111111' : '000000')).body.error.code, 'INVALID_TOTP');
    now += 30_000;
    assert.equal((await confirm(withTotp, 'a new password 3', totp())).status, 200);
    assert.equal((await login(venue, 'bob@example.com', 'a new password 3', (now += 30_000, totp()))).status, 200);

    // Support's resets are told to the owner too.
    await venue.admin('/users/password', { email: 'bob@example.com', password: 'support set this' });
    await venue.admin('/users/reset-2fa', { email: 'bob@example.com' });
    sent = await mails(venue);
    assert.deepEqual(sent.slice(-2).map((m) => m.subject), ['Your Bourse password was changed', 'Two-factor authentication turned off at Bourse']);
    assert.match(sent.at(-2)!.text, /changed by support/);

    // A disabled user gets no reset mail.
    await venue.admin('/users/disable', { email: 'bob@example.com' });
    now += 61_000;
    const count = sent.length;
    assert.equal((await reset('bob@example.com')).status, 202);
    assert.equal((await mails(venue)).length, count);
  } finally {
    await venue.stop();
  }
});

test('wrong codes count toward the address\'s lockout like wrong passwords: after the limit even a good code waits', async () => {
  const venue = await Venue.start({ auth: { failuresBeforeLockout: 3, lockoutMs: 60_000 } });
  try {
    await signup(venue, 'kim@example.com', 'kim password one');
    const code = codeIn((await mails(venue))[0]!);
    for (let i = 0; i < 3; i += 1) {
      const guess = await call(venue.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: `${i}`.repeat(64) } });
      assert.equal(guess.body.error.code, 'INVALID_TOKEN');
    }
    const locked = await call(venue.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: code } });
    assert.equal(locked.status, 429);
    assert.equal(locked.body.error.code, 'LOCKED_OUT');
    assert.ok(Number(locked.headers.get('retry-after')) > 0);
    const reset = await call(venue.url, 'POST', '/api/v1/auth/password-reset/confirm', { body: { token: code, new_password: 'whatever long' } });
    assert.equal(reset.body.error.code, 'LOCKED_OUT');
  } finally {
    await venue.stop();
  }
});

test('with an SMTP server configured, mail goes to it with the venue\'s sender, name and links, logging in with the password from BOURSE_SMTP_PASSWORD, and nothing is written to the outbox', async () => {
  const received: { from: string; to: string[]; raw: string; user: string }[] = [];
  const smtp = new SMTPServer({
    disabledCommands: ['STARTTLS'], allowInsecureAuth: true,
    onAuth: (auth, _session, callback) => (auth.username === 'bourse' && auth.password === 'mail secret'
      ? callback(null, { user: auth.username }) : callback(new Error('bad login'))),
    onData: (stream, session, callback) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address, to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'), user: String(session.user),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const port = (smtp.server.address() as { port: number }).port;
  process.env.BOURSE_SMTP_PASSWORD = 'mail secret';
  let venue: Venue | undefined;
  try {
    venue = await Venue.start({
      server: {
        mail: {
          from: 'Test Exchange <no-reply@test.example>', venueName: 'Test Exchange', linkBase: 'https://test.example/',
          smtp: { host: '127.0.0.1', port, secure: false, requireTls: false, user: 'bourse' },
        },
      },
    });
    assert.equal((await signup(venue, 'lee@example.com', 'lee password one')).status, 202);
    await venue.app.mailer.settled();
    assert.equal(received.length, 1);
    const message = received[0]!;
    assert.equal(message.user, 'bourse');
    assert.equal(message.from, 'no-reply@test.example');
    assert.deepEqual(message.to, ['lee@example.com']);
    const mail = parseMail(message.raw);
    assert.equal(mail.subject, 'Confirm your email for Test Exchange');
    assert.match(mail.text, /https:\/\/test\.example\/confirm-email\?token=[0-9a-f]{64}/);
    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: codeIn(mail) } })).status, 201);
    assert.equal(existsSync(join(venue.dataDir, 'outbox')), false);
    const metrics = await (await fetch(`${venue.url}/metrics`)).text();
    assert.match(metrics, /bourse_mails_total\{purpose="confirm_email",outcome="sent"\} 1/);
  } finally {
    delete process.env.BOURSE_SMTP_PASSWORD;
    await venue?.stop();
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
  }
});

test('a mail server that refuses leaves the request answered and the failure counted, never a 5xx; one that never answers does not hold up a shutdown', async () => {
  const smtp = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], onRcptTo: (_address, _session, callback) => callback(new Error('mailbox unavailable')) });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const port = (smtp.server.address() as { port: number }).port;
  const venue = await Venue.start({ server: { mail: { from: 'no-reply@test.example', venueName: 'Bourse', smtp: { host: '127.0.0.1', port, secure: false, requireTls: false } } } });
  try {
    assert.equal((await signup(venue, 'max@example.com', 'max password one')).status, 202);
    await venue.app.mailer.settled();
    assert.deepEqual(venue.app.mailer.counts.confirm_email, { sent: 0, failed: 1, retried: 0 }, 'a 5xx refusal is not retried');
  } finally {
    await venue.stop();
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
  }

  // One that never answers does not hold up a shutdown.
  const silent = createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const hung = await Venue.start({ server: { mail: { from: 'no-reply@test.example', venueName: 'Bourse', smtp: { host: '127.0.0.1', port: (silent.address() as { port: number }).port, secure: false, requireTls: false } } } });
  try {
    assert.equal((await signup(hung, 'ned@example.com', 'ned password one')).status, 202, 'answered at once');
  } finally {
    const stopping = Date.now();
    await hung.stop();
    assert.ok(Date.now() - stopping < 5_000, `stopped in ${Date.now() - stopping} ms`);
    silent.close();
  }
});

test('a login from an address the user never logged in from is mailed to them (not the first login, not a known address); the anti-phishing code a user sets shows in every mail to them, and setting it needs the TOTP code once enrolled', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now, server: { trustProxy: ['127.0.0.1'] } });
  const from = (address: string, totp?: string) => call(venue.url, 'POST', '/api/v1/auth/login', {
    body: { email: 'nina@example.com', password: 'correct horse battery', ...(totp === undefined ? {} : { totp }) },
    headers: { 'x-forwarded-for': address, 'user-agent': 'test-browser/1.0' },
  });
  try {
    await venue.admin('/users', { email: 'nina@example.com', password: 'correct horse battery' });
    const first = await from('198.51.100.7');
    assert.equal(first.status, 200);
    assert.equal((await from('198.51.100.7')).status, 200);
    assert.equal((await mails(venue)).length, 0, 'neither the first login nor one from a known address is news');
    assert.equal((await from('203.0.113.9')).status, 200);
    let sent = await mails(venue);
    assert.deepEqual(sent.map((m) => [m.to, m.subject]), [['nina@example.com', 'New login to Bourse from 203.0.113.9']]);
    assert.match(sent[0]!.text, /client: {2}test-browser\/1\.0/);
    assert.doesNotMatch(sent[0]!.text, /anti-phishing/);

    const headers = { authorization: `Bearer ${first.body.token}` };
    const set = (code: string | null, totp?: string) => call(venue.url, 'PUT', '/api/v1/auth/anti-phishing', { headers, body: { code, ...(totp === undefined ? {} : { totp }) } });
    assert.equal((await set('no spaces!')).body.error.code, 'INVALID_ANTI_PHISHING_CODE');
    assert.equal((await set('abc')).body.error.code, 'INVALID_ANTI_PHISHING_CODE');
    assert.deepEqual((await set('Heron42')).body, { anti_phishing: true });
    assert.equal((await call(venue.url, 'GET', '/api/v1/auth/me', { headers })).body.anti_phishing, true);
    await from('192.0.2.44');
    await call(venue.url, 'POST', '/api/v1/auth/password-reset', { body: { email: 'nina@example.com' } });
    sent = await mails(venue);
    assert.deepEqual(sent.slice(1).map((m) => m.subject), ['New login to Bourse from 192.0.2.44', 'Reset your Bourse password']);
    for (const mail of sent.slice(1)) assert.match(mail.text, /^Your anti-phishing code: Heron42\n/);

    const { code: totp } = await enableTwoFactor(venue.url, headers, 'correct horse battery', () => now);
    assert.equal((await set(null)).body.error.code, 'TOTP_REQUIRED', 'a stolen session cannot change what genuine mail shows');
    now += 30_000;
    assert.deepEqual((await set(null, totp())).body, { anti_phishing: false });
    now += 30_000;
    await from('192.0.2.45', totp());
    sent = await mails(venue);
    assert.equal(sent.at(-1)!.subject, 'New login to Bourse from 192.0.2.45');
    assert.doesNotMatch(sent.at(-1)!.text, /anti-phishing/);
  } finally {
    await venue.stop();
  }
});

test('a user moves their account to another address with their password (and TOTP once enrolled): the code goes to the new address, the old one is told, every session ends and they log in with the new one; a taken address is answered alike and mailed nothing; support moves a user whose mailbox is lost', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now });
  try {
    await venue.admin('/users', { email: 'olga@example.com', password: 'correct horse battery' });
    await venue.admin('/users', { email: 'taken@example.com', password: 'correct horse battery' });
    const session = await login(venue, 'olga@example.com', 'correct horse battery');
    const headers = { authorization: `Bearer ${session.body.token}` };
    const move = (newEmail: string, password = 'correct horse battery', totp?: string) =>
      call(venue.url, 'POST', '/api/v1/auth/email', { headers, body: { new_email: newEmail, password, ...(totp === undefined ? {} : { totp }) } });
    const confirm = (token: string) => call(venue.url, 'POST', '/api/v1/auth/email/confirm', { body: { token } });

    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/email', { body: { new_email: 'x@example.com', password: 'correct horse battery' } })).status, 401, 'a session is needed');
    assert.equal((await move('olga.new@example.com', 'wrong password')).body.error.code, 'INVALID_CREDENTIALS');
    assert.equal((await move('olga@example.com')).body.error.code, 'SAME_EMAIL');
    const taken = await move('Taken@Example.com');
    const fresh = await move('olga.new@example.com');
    assert.equal(fresh.status, 202);
    assert.deepEqual(taken.body, fresh.body, 'the answer does not say the address is taken');
    let sent = await mails(venue);
    assert.deepEqual(sent.map((m) => [m.to, m.subject]), [['olga.new@example.com', 'Confirm your new email for Bourse']]);
    assert.equal((await login(venue, 'olga@example.com', 'correct horse battery')).status, 200, 'nothing changes before the code comes back');

    const code = codeIn(sent[0]!);
    const done = await confirm(code);
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.deepEqual(done.body, { email: 'olga.new@example.com', sessions_ended: 2 });
    assert.equal((await confirm(code)).body.error.code, 'INVALID_TOKEN', 'a code works once');
    assert.equal((await call(venue.url, 'GET', '/api/v1/auth/me', { headers })).status, 401, 'every session ended');
    assert.equal((await login(venue, 'olga@example.com', 'correct horse battery')).status, 401);
    const moved = await login(venue, 'olga.new@example.com', 'correct horse battery');
    assert.equal(moved.status, 200);
    sent = await mails(venue);
    assert.deepEqual(sent.slice(1).map((m) => [m.to, m.subject]), [['olga@example.com', 'Your Bourse email was changed']]);
    assert.match(sent[1]!.text, /changed by you from olga@example\.com to olga\.new@example\.com/);

    // With two-factor on, the code is asked for too; an unused code expires in an hour.
    const headers2 = { authorization: `Bearer ${moved.body.token}` };
    const { code: totp } = await enableTwoFactor(venue.url, headers2, 'correct horse battery', () => now);
    const move2 = (totpCode?: string) => call(venue.url, 'POST', '/api/v1/auth/email', { headers: headers2, body: { new_email: 'olga.third@example.com', password: 'correct horse battery', ...(totpCode === undefined ? {} : { totp: totpCode }) } });
    assert.equal((await move2()).body.error.code, 'TOTP_REQUIRED');
    now += 30_000;
    assert.equal((await move2(totp())).status, 202);
    const late = codeIn((await mails(venue)).filter((m) => m.subject === 'Confirm your new email for Bourse').at(-1)!);
    now += 3_600_000;
    assert.equal((await confirm(late)).body.error.code, 'INVALID_TOKEN');

    // Support moves a user who lost their mailbox; both addresses are told.
    const bySupport = await venue.admin('/users/email', { email: 'olga.new@example.com', new_email: 'olga.fourth@example.com' });
    assert.deepEqual(bySupport.body, { email: 'olga.fourth@example.com', previous_email: 'olga.new@example.com', sessions_ended: 1 });
    assert.equal((await venue.admin('/users/email', { email: 'olga.fourth@example.com', new_email: 'taken@example.com' })).body.error.code, 'EMAIL_TAKEN');
    const audit = (await venue.admin('/audit?limit=2', undefined, 'GET')).body.actions as { path: string; status: number; subject: unknown }[];
    assert.deepEqual(audit.map((a) => [a.path, a.status, a.subject]), [
      ['/admin/v1/users/email', 409, { email: 'olga.fourth@example.com', new_email: 'taken@example.com' }],
      ['/admin/v1/users/email', 200, { email: 'olga.new@example.com', new_email: 'olga.fourth@example.com' }],
    ], 'the audit trail names both addresses');
    sent = await mails(venue);
    assert.deepEqual(sent.slice(-3).map((m) => [m.to, m.subject]), [['olga.third@example.com', 'Confirm your new email for Bourse'], ['olga.new@example.com', 'Your Bourse email was changed'], ['olga.fourth@example.com', 'Your Bourse email was changed']]);
    assert.equal((await login(venue, 'olga.fourth@example.com', 'correct horse battery', (now += 30_000, totp()))).status, 200);

    // The old address, which a thief may have moved the account away from, can still freeze it.
    const toOld = sent.at(-2)!;
    assert.equal(toOld.to, 'olga.new@example.com');
    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/freeze/code', { body: { token: codeIn(toOld) } })).status, 200);
    assert.equal((await login(venue, 'olga.fourth@example.com', 'correct horse battery', (now += 30_000, totp()))).body.error.code, 'USER_DISABLED');
  } finally {
    await venue.stop();
  }
});

test('password hashing is bounded: an address gets 30 password attempts a minute (then 429 with Retry-After), and beyond the hashes running and waiting a request is refused at once with 503 BUSY rather than queued', async () => {
  const venue = await Venue.start({ server: { trustProxy: ['127.0.0.1'] } });
  const from = (address: string, email: string) => call(venue.url, 'POST', '/api/v1/auth/signup', { body: { email, password: 'long enough pass' }, headers: { 'x-forwarded-for': address } });
  passwordWork.configure({ concurrency: 1, queue: 2 });
  try {
    for (let i = 0; i < 30; i += 1) assert.equal((await from('198.51.100.1', `not-an-address-${i}`)).body.error.code, 'INVALID_EMAIL');
    const limited = await from('198.51.100.1', 'fine@example.com');
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, 'RATE_LIMITED');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'fine@example.com', password: 'long enough pass' }, headers: { 'x-forwarded-for': '198.51.100.1' } })).status, 429, 'logins draw on the same budget');

    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => from(`203.0.113.${i + 1}`, `flood-${i}@example.com`)));
    const statuses = answers.map((a) => a.status);
    assert.deepEqual(statuses.filter((s) => s !== 202 && s !== 503), [], JSON.stringify(answers.map((a) => a.body)));
    const busy = answers.filter((a) => a.status === 503);
    assert.ok(busy.length >= 6, `one hash at a time and two waiting: most of 12 at once are refused (${statuses.join(',')})`);
    assert.ok(statuses.filter((s) => s === 202).length >= 3);
    for (const answer of busy) {
      assert.equal(answer.body.error.code, 'BUSY');
      assert.equal(answer.headers.get('retry-after'), '1');
    }
  } finally {
    passwordWork.configure({ concurrency: Math.max(1, Math.floor(availableParallelism() / 2)), queue: 32 });
    await venue.stop();
  }
});

test('every warning mail carries a code that freezes the account without logging in: then no login, key or withdrawal works and sessions end, until support unfreezes it; the code works once; a user also freezes from a session with the password', async () => {
  const venue = await Venue.start({ server: { trustProxy: ['127.0.0.1'] } });
  const login = (address: string) => call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'pia@example.com', password: 'correct horse battery' }, headers: { 'x-forwarded-for': address } });
  try {
    const key = await venue.trader('pia@example.com', { USDT: '100' });
    const first = await login('198.51.100.1');
    assert.equal((await login('198.51.100.2')).status, 200);
    const warning = (await mails(venue)).at(-1)!;
    assert.equal(warning.subject, 'New login to Bourse from 198.51.100.2');
    assert.match(warning.text, /Not you\? Freeze the account at once, without logging in:\nYour code: [0-9a-f]{64}\n\nTo use it: POST \/api\/v1\/auth\/freeze\/code/);
    const code = codeIn(warning);

    const frozen = await call(venue.url, 'POST', '/api/v1/auth/freeze/code', { body: { token: code } });
    assert.equal(frozen.status, 200, JSON.stringify(frozen.body));
    assert.deepEqual(frozen.body, { frozen: true, withdrawals_cancelled: [] });
    assert.equal((await venue.signed(key, 'GET', '/api/v1/balances')).body.error.code, 'USER_DISABLED');
    assert.equal((await login('198.51.100.1')).body.error.code, 'USER_DISABLED');
    assert.equal((await call(venue.url, 'GET', '/api/v1/auth/me', { headers: { authorization: `Bearer ${first.body.token}` } })).status, 401, 'sessions ended');
    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/freeze/code', { body: { token: code } })).body.error.code, 'INVALID_TOKEN', 'a code works once');
    assert.equal((await mails(venue)).at(-1)!.subject, 'Your Bourse account is frozen');

    assert.equal((await venue.admin('/users/enable', { email: 'pia@example.com' })).status, 200);
    assert.equal((await venue.signed(key, 'GET', '/api/v1/balances')).status, 200, 'support unfreezes');
    const session = await login('198.51.100.1');
    const headers = { authorization: `Bearer ${session.body.token}` };
    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/freeze', { headers, body: { password: 'not the password' } })).body.error.code, 'INVALID_CREDENTIALS');
    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/freeze', { headers, body: { password: 'correct horse battery' } })).status, 200);
    assert.equal((await login('198.51.100.1')).body.error.code, 'USER_DISABLED');
  } finally {
    await venue.stop();
  }
});

test('a user and support read the account\'s security activity, newest first: every change to its password, second factor, keys, address, anti-phishing code and withdrawal addresses, with when, by whom and from where', async () => {
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now, server: { trustProxy: ['127.0.0.1'] } });
  const at = (address: string) => ({ 'x-forwarded-for': address, 'user-agent': 'test-browser/2.0' });
  try {
    await signup(venue, 'quinn@example.com', 'quinn password one');
    await call(venue.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: codeIn((await mails(venue))[0]!) }, headers: at('198.51.100.10') });
    const session = await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'quinn@example.com', password: 'quinn password one' }, headers: at('198.51.100.11') });
    const headers = { authorization: `Bearer ${session.body.token}`, ...at('198.51.100.11') };
    const key = await call(venue.url, 'POST', '/api/v1/auth/apikeys', { headers, body: { permissions: ['read', 'withdraw'], ip: ['127.0.0.1'], label: 'bot' } });
    assert.equal(key.status, 201);
    now += 1;
    await call(venue.url, 'PUT', '/api/v1/auth/anti-phishing', { headers, body: { code: 'Otter7' } });
    now += 1;
    const added = await call(venue.url, 'POST', '/api/v1/withdrawal-addresses', {
      credentials: { key: key.body.key, secret: key.body.secret }, timestamp: now, headers: at('127.0.0.1'), body: { asset: 'BTC', address: 'bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq' },
    });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    now += 1;
    await call(venue.url, 'POST', '/api/v1/auth/password', { headers, body: { current_password: 'quinn password one', new_password: 'quinn password two' } });
    now += 1;
    await call(venue.url, 'DELETE', `/api/v1/auth/apikeys/${key.body.key}`, { headers });
    now += 1;
    await call(venue.url, 'POST', '/admin/v1/users/reset-2fa', { headers: { authorization: `Bearer ${venue.exchange.adminToken}`, 'x-bourse-operator': 'sam' }, body: { email: 'quinn@example.com' } });
    await call(venue.url, 'POST', '/admin/v1/users/password', { headers: { authorization: `Bearer ${venue.exchange.adminToken}`, 'x-bourse-operator': 'sam' }, body: { email: 'quinn@example.com', password: 'quinn password three' } });

    const again = await call(venue.url, 'POST', '/api/v1/auth/login', { body: { email: 'quinn@example.com', password: 'quinn password three' }, headers: at('198.51.100.11') });
    const mine = await call(venue.url, 'GET', '/api/v1/auth/activity', { headers: { authorization: `Bearer ${again.body.token}` } });
    assert.equal(mine.status, 200);
    const events = mine.body.activity as { event: string; by: string; address: string; user_agent: string; detail: string; time: number }[];
    assert.deepEqual(events.map((e) => [e.event, e.by]), [
      ['password_changed', 'support'], ['two_factor_reset', 'support'], ['api_key_revoked', 'user'], ['password_changed', 'user'], ['withdrawal_address_added', 'user'],
      ['anti_phishing_set', 'user'], ['api_key_created', 'user'], ['signed_up', 'user'],
    ]);
    assert.equal(events[1]!.detail, 'sam; it was off');
    assert.deepEqual([events.at(-1)!.address, events.at(-1)!.user_agent], ['198.51.100.10', 'test-browser/2.0']);
    assert.equal(events[0]!.detail, 'sam');
    assert.match(events.find((e) => e.event === 'api_key_created')!.detail, new RegExp(`^${key.body.key} \\(read,withdraw; from 127\\.0\\.0\\.1; "bot"\\)$`));
    assert.match(events.find((e) => e.event === 'withdrawal_address_added')!.detail, /^BTC bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq with key /);
    const support = await venue.admin('/users/activity?email=quinn@example.com&limit=2', undefined, 'GET');
    assert.deepEqual(support.body.activity, events.slice(0, 2), 'support reads the same, paged by limit');
  } finally {
    await venue.stop();
  }
});

test('the owner of an API key about to expire is mailed once, three days before, so that their bot is moved to a new key in time; revoked keys, keys without an end and disabled users\' keys are not', async () => {
  const DAY = 86_400_000;
  let now = Date.now();
  const venue = await Venue.start({ clock: () => now, server: { keyExpiryCheckMs: 30 } });
  try {
    await venue.admin('/users', { email: 'kai@example.com', password: 'correct horse battery' });
    const key = async (body: Record<string, unknown>) => (await venue.admin('/apikeys', { email: 'kai@example.com', permissions: ['read', 'trade'], ...body })).body.key as string;
    const soon = await key({ expires_at: now + 2 * DAY, label: 'grid bot' });
    const later = await key({ expires_at: now + 5 * DAY });
    await key({});
    const revoked = await key({ expires_at: now + 4.5 * DAY }); // in the window after the clock moves below, were it live
    await venue.admin('/users', { email: 'gone@example.com', password: 'correct horse battery' });
    await venue.admin('/apikeys', { email: 'gone@example.com', permissions: ['read'], expires_at: now + 4.5 * DAY }); // the same, were its user enabled
    assert.equal((await venue.admin('/users/disable', { email: 'gone@example.com' })).status, 200);
    assert.equal((await venue.admin(`/apikeys/${revoked}?email=kai%40example.com`, undefined, 'DELETE')).status, 200);
    const notices = async () => (await mails(venue)).filter((m) => m.subject.startsWith('An API key on your Bourse account expires'));

    await until(notices, (n) => n.length > 0, 'the first notice');
    await new Promise((r) => setTimeout(r, 150)); // several more checks
    const first = await notices();
    assert.equal(first.length, 1, 'one notice, for the key with two days left');
    assert.equal(first[0]!.to, 'kai@example.com');
    assert.match(first[0]!.text, new RegExp(`key: ${soon} \\("grid bot"\\)`));
    assert.match(first[0]!.text, new RegExp(new Date(now + 2 * DAY).toISOString().replace(/\./g, '\\.')));

    now += 2 * DAY + 60_000; // the later key now has three days left, the revoked one two and a half
    await until(notices, (n) => n.length > 1, 'the second notice');
    await new Promise((r) => setTimeout(r, 150));
    const second = await notices();
    assert.equal(second.length, 2, 'the first key is not noticed again, nor the revoked one, nor the disabled user\'s');
    assert.match(second[1]!.text, new RegExp(`key: ${later}\\n`));
  } finally {
    await venue.stop();
  }
});
