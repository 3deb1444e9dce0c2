import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { IdentityStore, LOGINS_KEPT } from '../src/identity/store.js';

test('an identity store made before users could be disabled or set an anti-phishing code is migrated on open: its users are enabled, and can be disabled and enabled and set a code', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bourse-identity-'));
  try {
    const path = join(dir, 'identity.db');
    const old = new Database(path);
    // The users table as it was until session 24.
    old.exec(`CREATE TABLE users (
      id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, account INTEGER NOT NULL,
      kyc TEXT NOT NULL DEFAULT 'NOT_VERIFIED', level INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
      totp_secret_sealed BLOB, totp_enabled INTEGER NOT NULL DEFAULT 0, totp_last_step INTEGER NOT NULL DEFAULT 0
    )`);
    old.prepare("INSERT INTO users (email, password_hash, account, created_at) VALUES ('old@example.com', 'x', 1, 5)").run();
    old.close();

    const store = new IdentityStore(path, randomBytes(32));
    try {
      assert.equal(store.userByEmail('old@example.com')?.disabledAt, null);
      assert.equal(store.setDisabled(1, 1_000), true);
      assert.equal(store.setDisabled(1, 2_000), false, 'already disabled: the first time stays');
      assert.equal(store.user(1)?.disabledAt, 1_000);
      assert.equal(store.setDisabled(1, null), true);
      // And before users could set an anti-phishing code (session 26).
      assert.equal(store.antiPhishingOf('old@example.com'), null);
      store.setAntiPhishing(1, 'Heron42');
      assert.equal(store.antiPhishingOf('old@example.com'), 'Heron42');
      assert.deepEqual(store.mailTurnedOff(1), []);
      store.setMailTurnedOff(1, ['withdrawals', 'deposits', 'deposits']);
      assert.deepEqual(store.mailTurnedOff(1), ['deposits', 'withdrawals']);
      assert.equal(store.user(1)?.disabledAt, null);
    } finally {
      store.close();
    }
    const reopened = new IdentityStore(path, randomBytes(32));
    assert.equal(reopened.user(1)?.email, 'old@example.com', 'a second open finds the column there');
    reopened.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('API keys made before keys had labels, a last use and an expiry, and sessions before they said where they were opened or when last used, are migrated on open', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bourse-identity-'));
  const masterKey = randomBytes(32);
  try {
    const path = join(dir, 'identity.db');
    const first = new IdentityStore(path, masterKey);
    const user = await first.createUser('keys@example.com', 'correct horse battery', 1_000);
    const { record, secret } = first.createApiKey(user.id, { permissions: ['read'], ipAllow: [] }, 2_000);
    first.createSession(user.id, 2_000);
    first.close();
    // The api_keys table as it was until session 25.
    const old = new Database(path);
    old.exec('ALTER TABLE api_keys DROP COLUMN label; ALTER TABLE api_keys DROP COLUMN last_used_at; ALTER TABLE api_keys DROP COLUMN last_used_ip');
    old.exec('ALTER TABLE api_keys DROP COLUMN expires_at; ALTER TABLE api_keys DROP COLUMN expiry_noticed');
    old.exec('ALTER TABLE sessions DROP COLUMN address; ALTER TABLE sessions DROP COLUMN user_agent; ALTER TABLE sessions DROP COLUMN seen_at');
    old.close();

    const store = new IdentityStore(path, masterKey);
    try {
      const migrated = store.apiKey(record.key)!;
      assert.deepEqual([migrated.secret, migrated.label, migrated.lastUsedAt, migrated.lastUsedIp], [secret, '', null, null]);
      store.recordKeyUse([{ key: record.key, at: 9_000, ip: '10.0.0.7' }]);
      store.recordKeyUse([{ key: record.key, at: 8_000, ip: '10.0.0.8' }]);
      assert.deepEqual([store.apiKey(record.key)!.lastUsedAt, store.apiKey(record.key)!.lastUsedIp], [9_000, '10.0.0.7'], 'an older use never overwrites a newer one');
      const labelled = store.createApiKey(user.id, { permissions: ['read', 'trade'], ipAllow: [], label: 'grid bot' }, 3_000);
      assert.equal(store.apiKeysOf(user.id).find((k) => k.key === labelled.record.key)?.label, 'grid bot');
      assert.throws(() => store.createApiKey(user.id, { permissions: ['read'], ipAllow: [], label: 'x'.repeat(65) }, 3_000), /label/);
      const expiring = store.createApiKey(user.id, { permissions: ['read'], ipAllow: [], expiresAt: 10_000 }, 3_000);
      assert.deepEqual(store.takeExpiringKeys(5_000, 20_000).map((k) => k.key), [expiring.record.key], 'keys that expire, and whether their owner was told, are kept');
      assert.deepEqual(store.takeExpiringKeys(5_000, 20_000), []);
      store.createSession(user.id, 3_000, { address: '10.0.0.9', userAgent: 'phone' });
      assert.deepEqual(store.sessionsOf(user.id, 4_000).map((x) => [x.createdAt, x.lastSeenAt, x.address, x.userAgent]), [[3_000, 3_000, '10.0.0.9', 'phone'], [2_000, 2_000, '', '']]);
    } finally {
      store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a user\'s login history keeps the newest LOGINS_KEPT attempts, newest first, and no other user\'s', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bourse-identity-'));
  const store = new IdentityStore(join(dir, 'identity.db'), randomBytes(32));
  try {
    const one = await store.createUser('one@example.com', 'correct horse battery', 1);
    const two = await store.createUser('two@example.com', 'correct horse battery', 1);
    for (let i = 1; i <= LOGINS_KEPT + 5; i++) store.recordLogin({ userId: one.id, ts: i, address: '10.0.0.1', userAgent: 'x'.repeat(300), outcome: 'wrong_password' });
    store.recordLogin({ userId: two.id, ts: 7, address: '10.0.0.2', userAgent: '', outcome: 'ok' });
    const kept = store.loginsOf(one.id, 1_000);
    assert.deepEqual([kept.length, kept[0]!.ts, kept.at(-1)!.ts, kept[0]!.userAgent.length], [LOGINS_KEPT, LOGINS_KEPT + 5, 6, 200]);
    assert.deepEqual(store.loginsOf(two.id, 10).map((l) => [l.ts, l.outcome]), [[7, 'ok']]);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
