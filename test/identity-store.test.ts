import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { IdentityStore } from '../src/identity/store.js';

test('an identity store made before users could be disabled is migrated on open: its users are enabled, and can be disabled and enabled', () => {
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
