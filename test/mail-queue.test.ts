import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { call } from './support/api-client.js';
import { codeIn, parseMail } from './support/mail.js';
import { Venue } from './support/venue.js';
import { until } from './support/until.js';

/** An SMTP server on loopback whose answer to each recipient the test decides: null takes the mail, a number refuses with that code. */
async function mailServer(answer: (to: string) => number | null): Promise<{ port: number; received: { to: string; raw: string }[]; connections: () => number; close: () => Promise<void> }> {
  const received: { to: string; raw: string }[] = [];
  let connections = 0;
  const smtp = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS'],
    onConnect: (_session, callback) => { connections += 1; callback(); },
    onRcptTo: (address, _session, callback) => {
      const code = answer(address.address);
      if (code === null) return callback();
      return callback(Object.assign(new Error(code >= 500 ? 'no such mailbox' : 'try again later'), { responseCode: code }));
    },
    onData: (stream, session, callback) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        for (const to of session.envelope.rcptTo) received.push({ to: to.address, raw: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  return {
    port: (smtp.server.address() as { port: number }).port, received, connections: () => connections,
    close: () => new Promise<void>((resolve) => smtp.close(() => resolve())),
  };
}

const smtpAt = (port: number) => ({ mail: { from: 'no-reply@test.example', venueName: 'Bourse', smtp: { host: '127.0.0.1', port, secure: false, requireTls: false } } });
const QUICK_RETRY = { firstDelayMs: 40, maxDelayMs: 160, attempts: 4 };

const signup = (venue: Venue, email: string) => call(venue.url, 'POST', '/api/v1/auth/signup', { body: { email, password: 'a long enough password' } });

test('a mail server that answers "try later" delays a mail instead of losing it: the mail is tried again after growing pauses and delivered once, and the metrics count the attempts', async () => {
  let refusals = 2;
  const server = await mailServer(() => (refusals-- > 0 ? 451 : null));
  const venue = await Venue.start({ server: { ...smtpAt(server.port), mailRetry: QUICK_RETRY } });
  try {
    const started = Date.now();
    assert.equal((await signup(venue, 'rita@example.com')).status, 202, 'answered at once, whatever the mail server says');
    await until(() => server.received.length, (n) => n === 1, 'the third attempt');
    assert.ok(Date.now() - started >= 40 + 80, 'two pauses, the second twice the first');
    await venue.app.mailer.settled();
    assert.deepEqual(venue.app.mailer.counts.confirm_email, { sent: 1, failed: 0, retried: 2 });
    assert.equal(server.received[0]!.to, 'rita@example.com');
    const code = codeIn(parseMail(server.received[0]!.raw));
    assert.equal((await call(venue.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: code } })).status, 201, 'the late code works');
    assert.deepEqual((await venue.admin('/mail', undefined, 'GET')).body.counts, { pending: 0, failed: 0 }, 'a delivered mail leaves the queue');
    const metrics = await (await fetch(`${venue.url}/metrics`)).text();
    assert.match(metrics, /bourse_mails_total\{purpose="confirm_email",outcome="retried"\} 2/);
    assert.match(metrics, /bourse_mail_queue\{state="pending"\} 0/);
  } finally {
    await venue.stop();
    await server.close();
  }
});

test('mail goes over a few kept-open connections, one per worker at most, not a connection per mail', async () => {
  const server = await mailServer(() => null);
  const venue = await Venue.start({ server: smtpAt(server.port) });
  try {
    for (let i = 0; i < 8; i++) assert.equal((await signup(venue, `pooled-${i}@example.com`)).status, 202);
    await until(() => server.received.length, (n) => n === 8, 'eight mails');
    assert.ok(server.connections() <= 4, `${server.connections()} connections for 8 mails`);
  } finally {
    await venue.stop();
    await server.close();
  }
});

test('mail waiting when the server stops goes out after the restart, its code still working; the queue on disk holds no code in the clear', async () => {
  // Nothing listens on this port: every attempt fails to connect.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadPort = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));

  const first = await Venue.start({ server: { ...smtpAt(deadPort), mailRetry: { ...QUICK_RETRY, firstDelayMs: 60_000, maxDelayMs: 60_000 } } });
  const dataDir = first.dataDir;
  let stopped = false;
  try {
    assert.equal((await signup(first, 'sam@example.com')).status, 202);
    const waiting = await until(async () => (await first.admin('/mail?state=pending', undefined, 'GET')).body.mails, (m: { to: string; purpose: string; last_error: string; next_attempt_at: number; attempts: number }[]) => m.length === 1 && m[0]!.attempts === 1, 'the first attempt');
    assert.equal(waiting[0].to, 'sam@example.com');
    assert.equal(waiting[0].purpose, 'confirm_email');
    assert.match(waiting[0].last_error, /ECONNREFUSED/);
    assert.ok(waiting[0].next_attempt_at >= Date.now() + 50_000, 'the next attempt a minute on');
    await first.stop(true);
    stopped = true;
    const onDisk = readFileSync(join(dataDir, 'mail.db'));
    assert.equal(onDisk.includes('Your code'), false, 'the text is sealed');
    assert.equal(onDisk.includes('Confirm your email'), false, 'the subject too');
  } finally {
    if (!stopped) await first.stop(true);
  }

  const server = await mailServer(() => null);
  const second = await Venue.start({ dataDir, server: { ...smtpAt(server.port), mailRetry: QUICK_RETRY } });
  try {
    await until(() => server.received.length, (n) => n === 1, 'the mail after the restart');
    const code = codeIn(parseMail(server.received[0]!.raw));
    assert.equal((await call(second.url, 'POST', '/api/v1/auth/signup/confirm', { body: { token: code } })).status, 201);
    await second.app.mailer.settled();
    assert.deepEqual((await second.admin('/mail', undefined, 'GET')).body.counts, { pending: 0, failed: 0 });
  } finally {
    await second.stop();
    await server.close();
  }
});

test('a mail refused for good (5xx) is given up on at once and kept for the operator, who lists it with the reason, retries it once the mail server is mended, or drops it; a test mail checks the settings at once', async () => {
  let mended = false;
  const server = await mailServer((to) => (to.startsWith('nobody') || (to.startsWith('bounce') && !mended) ? 550 : null));
  const venue = await Venue.start({ server: { ...smtpAt(server.port), mailRetry: QUICK_RETRY } });
  try {
    assert.equal((await signup(venue, 'bounce.one@example.com')).status, 202);
    assert.equal((await signup(venue, 'bounce.two@example.com')).status, 202);
    await venue.app.mailer.settled();
    assert.deepEqual(venue.app.mailer.counts.confirm_email, { sent: 0, failed: 2, retried: 0 }, 'no retry of a permanent refusal');
    const listed = await venue.admin('/mail?state=failed', undefined, 'GET');
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.mails.map((m: { to: string; attempts: number; next_attempt_at: null }) => [m.to, m.attempts, m.next_attempt_at]),
      [['bounce.one@example.com', 1, null], ['bounce.two@example.com', 1, null]]);
    assert.match(listed.body.mails[0].last_error, /no such mailbox/);
    assert.equal('text' in listed.body.mails[0] || 'subject' in listed.body.mails[0], false, 'codes are not shown to the operator');
    const [one, two] = listed.body.mails as { id: number }[];
    const theirs = await venue.admin('/mail?email=Bounce.Two%40example.com', undefined, 'GET');
    assert.deepEqual(theirs.body.mails.map((m: { id: number }) => m.id), [two!.id], 'support finds one user\'s mail');

    mended = true;
    assert.deepEqual((await venue.admin('/mail/retry', { id: one!.id })).body, { id: one!.id, state: 'pending' });
    await until(() => server.received.length, (n) => n === 1, 'the retried mail');
    assert.equal(server.received[0]!.to, 'bounce.one@example.com');
    assert.deepEqual((await venue.admin('/mail/drop', { id: two!.id })).body, { id: two!.id, dropped: true });
    assert.equal((await venue.admin('/mail/drop', { id: two!.id })).body.error.code, 'UNKNOWN_MAIL');
    assert.equal((await venue.admin('/mail/retry', { id: 999 })).status, 404);
    assert.equal((await venue.admin('/mail/retry', { id: 'x' })).status, 400);
    await venue.app.mailer.settled();
    assert.deepEqual((await venue.admin('/mail', undefined, 'GET')).body.counts, { pending: 0, failed: 0 });
    // The operator checks the settings with a test mail, sent at once past the queue.
    const good = await venue.admin('/mail/test', { to: 'ops@example.com' });
    assert.equal(good.status, 200);
    assert.equal(good.body.sent, true);
    assert.match(good.body.answer, /^250 /);
    assert.equal(server.received.at(-1)!.to, 'ops@example.com');
    const refused = await venue.admin('/mail/test', { to: 'nobody@example.com' });
    assert.deepEqual([refused.status, refused.body.sent], [502, false]);
    assert.match(refused.body.error, /no such mailbox/);
    assert.equal((await venue.admin('/mail/test', { to: 'not an address' })).status, 400);
    assert.deepEqual((await venue.admin('/mail', undefined, 'GET')).body.counts, { pending: 0, failed: 0 }, 'a test mail is never queued');
    const audit = (await venue.admin('/audit', undefined, 'GET')).body.actions
      .filter((a: { path: string }) => a.path.startsWith('/admin/v1/mail/') && a.path !== '/admin/v1/mail/test').map((a: { path: string; status: number; subject: { id?: number } }) => [a.path, a.status, a.subject.id]);
    assert.deepEqual(audit.reverse(), [
      ['/admin/v1/mail/retry', 200, one!.id], ['/admin/v1/mail/drop', 200, two!.id], ['/admin/v1/mail/drop', 404, two!.id], ['/admin/v1/mail/retry', 404, 999], ['/admin/v1/mail/retry', 400, 'x'],
    ], 'the operator\'s retries and drops are in the audit trail');
  } finally {
    await venue.stop();
    await server.close();
  }
});

test('a damaged mail queue does not keep the venue from starting: it is moved aside for the operator and an empty one takes mail', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-mailq-'));
  writeFileSync(join(dataDir, 'mail.db'), 'not a database at all, but long enough that SQLite reads a header: '.repeat(20));
  const venue = await Venue.start({ dataDir });
  try {
    assert.ok(readdirSync(dataDir).some((f) => /^mail\.db\.broken-\d+$/.test(f)), 'the damaged file is kept aside');
    assert.equal((await signup(venue, 'ola@example.com')).status, 202);
    await venue.app.mailer.settled();
    assert.deepEqual(venue.app.mailer.counts.confirm_email, { sent: 1, failed: 0, retried: 0 });
  } finally {
    await venue.stop();
  }
});

test('mail sealed under another master key (a mail queue copied from another venue) is given up on, and the venue\'s own mail still goes out', async () => {
  const elsewhere = await Venue.start({ server: { ...smtpAt(1), mailRetry: { ...QUICK_RETRY, firstDelayMs: 60_000, maxDelayMs: 60_000 } } });
  assert.equal((await signup(elsewhere, 'uli@example.com')).status, 202);
  await until(async () => (await elsewhere.admin('/mail?state=pending', undefined, 'GET')).body.mails.length, (n) => n === 1, 'the unsent mail');
  await elsewhere.stop(true);
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-mailq-'));
  copyFileSync(join(elsewhere.dataDir, 'mail.db'), join(dataDir, 'mail.db'));
  rmSync(elsewhere.dataDir, { recursive: true, force: true });

  const server = await mailServer(() => null);
  const venue = await Venue.start({ dataDir, server: { ...smtpAt(server.port), mailRetry: QUICK_RETRY } });
  try {
    assert.equal((await signup(venue, 'vic@example.com')).status, 202);
    await until(() => server.received.length, (n) => n === 1, 'this venue\'s mail');
    assert.equal(server.received[0]!.to, 'vic@example.com');
    const failed = (await venue.admin('/mail?state=failed', undefined, 'GET')).body.mails;
    assert.deepEqual(failed.map((m: { to: string; last_error: string }) => [m.to, m.last_error]), [['uli@example.com', 'cannot be unsealed with this venue\'s master key']]);
  } finally {
    await venue.stop();
    await server.close();
  }
});

test('without SMTP, outbox files older than 30 days are deleted at start (and daily): their codes have expired, and the disk must not fill', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-outbox-'));
  const outboxDir = join(dataDir, 'outbox');
  mkdirSync(outboxDir, { recursive: true });
  const aged = (name: string, days: number) => {
    writeFileSync(join(outboxDir, name), 'Subject: old\n\nYour code: 0');
    const at = (Date.now() - days * 86_400_000) / 1000;
    utimesSync(join(outboxDir, name), at, at);
  };
  aged('old.eml', 31);
  aged('recent.eml', 29);
  aged('notes.txt', 90);
  const venue = await Venue.start({ dataDir });
  try {
    assert.deepEqual(readdirSync(outboxDir).sort(), ['notes.txt', 'recent.eml'], 'only old mail files go');
    assert.equal(venue.app.mailer.pruneOutbox(Date.now() + 2 * 86_400_000), 1, 'a day later, the next');
    assert.ok(!existsSync(join(outboxDir, 'recent.eml')));
  } finally {
    await venue.stop();
  }
});
