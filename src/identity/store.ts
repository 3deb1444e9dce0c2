/**
 * Users and API keys, in their own SQLite file beside the journal. The engine knows users and
 * accounts by number; this store maps them to emails, password hashes and keys.
 */
import { createHash, createPublicKey, hkdfSync, randomBytes } from 'node:crypto';
import { generateSecret, generateURI, verifySync } from 'otplib';
import Database from 'better-sqlite3';
import { statementCache } from '../store/statement-cache.js';
import type { Sql } from '../store/statement-cache.js';
import { hashPassword, seal, unseal, verifyPassword } from './secrets.js';
import { blockList } from './ip.js';

export type Permission = 'read' | 'trade' | 'withdraw';
export const PERMISSIONS: readonly Permission[] = ['read', 'trade', 'withdraw'];
export type KycStatus = 'NOT_VERIFIED' | 'PENDING' | 'OK' | 'REJECTED';

export const KYC_STATUSES: readonly KycStatus[] = ['NOT_VERIFIED', 'PENDING', 'OK', 'REJECTED'];

export interface UserRecord {
  id: number;
  email: string;
  /** The user's main trading account in the engine. */
  account: number;
  kyc: KycStatus;
  level: number;
  twoFactor: boolean;
  createdAt: number;
  /** When an operator disabled the user (no login, no key works), or null. */
  disabledAt: number | null;
}

/** One request an operator made to the admin API, and how it ended. */
export interface AdminActionRecord {
  id: number;
  ts: number;
  /** Who says they made it (X-Bourse-Operator; the CLI sends --operator or the login name), else "unnamed". */
  operator: string;
  address: string;
  method: string;
  path: string;
  status: number;
  /** What it was about: the request's email, market, account, asset, amount and such; never a password. */
  subject: Record<string, unknown>;
}

/** Hex digits of a session's digest that name it in a listing. */
const SESSION_ID_LENGTH = 16;

/** A sign-up's mailed code opens the account within a day; a password-reset code works for an hour. Both stored only as their SHA-256. */
const SIGNUP_TTL_MS = 86_400_000;
const PASSWORD_RESET_TTL_MS = 3_600_000;
/** The code in a warning mail freezes the account for a week. */
export const FREEZE_CODE_TTL_MS = 7 * 86_400_000;
/** A new address's code confirms the change within an hour. */
const EMAIL_CHANGE_TTL_MS = 3_600_000;

/**
 * How long sessions of the web page last (tokens are stored only as their SHA-256): `ttlMs` at
 * most, and `idleMs` unused (a browser left open on a shared machine), whichever ends first.
 */
export interface SessionPolicy { ttlMs: number; idleMs: number }
export const DEFAULT_SESSIONS: SessionPolicy = { ttlMs: 86_400_000, idleMs: 30 * 60_000 };
/** How finely a session's last use is kept: written at most once a minute, so a busy page costs no write per request. */
const SESSION_SEEN_RESOLUTION_MS = 60_000;
/** TOTP codes are accepted one 30-second step either side of the server's clock. */
const TOTP_TOLERANCE_SECONDS = 30;

/** Sub-account ids start above this, far from main accounts (whose id is the user's). */
export const SUB_ACCOUNT_BASE = 1_000_000_000;
const SUB_ACCOUNTS_MAX = 100;
/** Live keys (not revoked, not expired) per account, main or sub, as Binance allows: the table and the budgets stay bounded. */
export const KEYS_PER_ACCOUNT = 30;

export interface AccountRecord {
  id: number;
  userId: number;
  label: string;
  main: boolean;
  createdAt: number;
}

const USER_COLUMNS = 'id, email, account, kyc, level, totp_enabled AS twoFactor, created_at AS createdAt, disabled_at AS disabledAt';

function checkNewPassword(password: string): void {
  if (password.length < 8 || password.length > 256) throw new IdentityError('WEAK_PASSWORD', 'password must have 8 to 256 characters');
}

/** The normalized address of a new user, once it and the password pass. */
function checkNewUser(email: string, password: string): string {
  const normalized = email.trim().toLowerCase();
  if (!EMAIL.test(normalized)) throw new IdentityError('INVALID_EMAIL', 'email is not valid');
  checkNewPassword(password);
  return normalized;
}

function toUser(row: unknown): UserRecord | undefined {
  if (row === undefined) return undefined;
  const user = row as UserRecord & { twoFactor: number | boolean };
  return { ...user, twoFactor: Number(user.twoFactor) === 1 };
}

export interface ApiKeyRecord {
  key: string;
  userId: number;
  account: number;
  permissions: Permission[];
  ipAllow: string[];
  scheme: 'hmac' | 'ed25519';
  /** HMAC: the shared secret; Ed25519: the public key (PEM). */
  secret: string;
  createdAt: number;
  revokedAt: number | null;
  /** The user's name for the key ('' when none was given). */
  label: string;
  /** When the key last signed a request the exchange accepted, and from where, to the minute (see recordKeyUse). */
  lastUsedAt: number | null;
  lastUsedIp: string | null;
  /** When the key stops working (ms since the epoch); null: it works until revoked. */
  expiresAt: number | null;
}

/** What the operator tells every trader, by whom, from when, until when (null: until cleared). */
export interface VenueNotice { text: string; actor: string; since: number; until: number | null }

/** An address or CIDR block the operator has blocked, until a time or until lifted (null). */
export interface AddressBlock { cidr: string; reason: string; actor: string; createdAt: number; until: number | null }

/** A ban the gateway made (rate-bans.ts): until when, and how many that subject has had (each doubles the next). */
export interface RateBanRecord { subject: string; until: number; bans: number }

/** How a login attempt ended. */
export type LoginOutcome = 'ok' | 'wrong_password' | 'totp_required' | 'wrong_totp' | 'disabled' | 'locked_out';

export interface LoginRecord { id: number; userId: number; ts: number; address: string; userAgent: string; outcome: LoginOutcome }

/** Changes to what guards an account, as its activity shows them. */
export type SecurityEventKind = 'signed_up' | 'password_changed' | 'two_factor_enabled' | 'two_factor_disabled' | 'two_factor_reset' | 'api_key_created' | 'api_key_changed' | 'api_key_revoked'
  | 'email_changed' | 'anti_phishing_set' | 'anti_phishing_removed' | 'frozen' | 'disabled' | 'enabled' | 'withdrawal_address_added' | 'withdrawal_address_removed';

/** One of them: when, by whom (the user, or support), from where, and what (the key, the addresses…). */
export interface SecurityEvent { id: number; userId: number; ts: number; kind: SecurityEventKind; by: 'user' | 'support'; address: string; userAgent: string; detail: string }

/** Security events kept per user (the oldest go first). */
export const SECURITY_EVENTS_KEPT = 200;

/** Login attempts kept per user (the oldest go first). */
export const LOGINS_KEPT = 100;

/** What a new key may do: its permissions, the addresses it may be used from, its account (default: the user's main) and a label. */
export interface KeySpec {
  permissions: Permission[];
  ipAllow: string[];
  account?: number;
  label?: string;
  /** When the key stops working (ms since the epoch, in the future); absent: until revoked. */
  expiresAt?: number;
}

function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class IdentityError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,190}\.[^\s@]{2,63}$/;
const ANTI_PHISHING = /^[A-Za-z0-9]{4,20}$/;

export class IdentityStore {
  private readonly db: Database.Database;
  private readonly sql: Sql;

  constructor(path: string, private readonly masterKey: Buffer, private readonly sessions: SessionPolicy = DEFAULT_SESSIONS) {
    this.db = new Database(path);
    this.sql = statementCache(this.db);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        account INTEGER NOT NULL,
        kyc TEXT NOT NULL DEFAULT 'NOT_VERIFIED',
        level INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        totp_secret_sealed BLOB,
        totp_enabled INTEGER NOT NULL DEFAULT 0,
        totp_last_step INTEGER NOT NULL DEFAULT 0,
        disabled_at INTEGER,
        anti_phishing TEXT,
        mail_off TEXT NOT NULL DEFAULT ''
      );
      CREATE TABLE IF NOT EXISTS sessions (
        token_sha256 TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        address TEXT NOT NULL DEFAULT '',
        user_agent TEXT NOT NULL DEFAULT '',
        seen_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS api_keys (
        key TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        account INTEGER NOT NULL,
        permissions TEXT NOT NULL,
        ip_allow TEXT NOT NULL,
        scheme TEXT NOT NULL,
        secret_sealed BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER,
        label TEXT NOT NULL DEFAULT '',
        last_used_at INTEGER,
        last_used_ip TEXT,
        expires_at INTEGER,
        expiry_noticed INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE IF NOT EXISTS sub_accounts (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        label TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS admin_audit (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        operator TEXT NOT NULL,
        address TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        status INTEGER NOT NULL,
        subject TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS venue_notice (
        id INTEGER PRIMARY KEY CHECK (id = 1), text TEXT NOT NULL, actor TEXT NOT NULL, since INTEGER NOT NULL, until INTEGER
      );
      CREATE TABLE IF NOT EXISTS blocked_addresses (
        cidr TEXT PRIMARY KEY, reason TEXT NOT NULL, actor TEXT NOT NULL, created_at INTEGER NOT NULL, until INTEGER
      );
      CREATE TABLE IF NOT EXISTS rate_bans (subject TEXT PRIMARY KEY, until INTEGER NOT NULL, bans INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS logins (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        address TEXT NOT NULL,
        user_agent TEXT NOT NULL,
        outcome TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS logins_by_user ON logins (user_id, id);
      CREATE TABLE IF NOT EXISTS signups (
        email TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS email_changes (
        user_id INTEGER PRIMARY KEY REFERENCES users(id),
        new_email TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS security_events (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        kind TEXT NOT NULL,
        by TEXT NOT NULL,
        address TEXT NOT NULL,
        user_agent TEXT NOT NULL,
        detail TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS security_events_by_user ON security_events (user_id, id);
      CREATE TABLE IF NOT EXISTS freeze_codes (
        token_sha256 TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        expires_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS password_resets (
        token_sha256 TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
    `);
    // Stores made before users could be disabled.
    const columns = this.db.prepare('SELECT name FROM pragma_table_info(\'users\')').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'disabled_at')) this.db.exec('ALTER TABLE users ADD COLUMN disabled_at INTEGER');
    // And before sessions said where they were opened.
    const sessionColumns = this.db.prepare('SELECT name FROM pragma_table_info(\'sessions\')').all() as { name: string }[];
    if (!sessionColumns.some((c) => c.name === 'address')) {
      this.db.exec("ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT ''; ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT ''");
    }
    // And before they ended when idle: such a session was last seen, as far as anyone knows, when opened.
    if (!sessionColumns.some((c) => c.name === 'seen_at')) this.db.exec('ALTER TABLE sessions ADD COLUMN seen_at INTEGER; UPDATE sessions SET seen_at = created_at');
    // And before keys had labels and a last use.
    const keyColumns = this.db.prepare('SELECT name FROM pragma_table_info(\'api_keys\')').all() as { name: string }[];
    if (!keyColumns.some((c) => c.name === 'label')) {
      this.db.exec("ALTER TABLE api_keys ADD COLUMN label TEXT NOT NULL DEFAULT ''; ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER; ALTER TABLE api_keys ADD COLUMN last_used_ip TEXT");
    }
    if (!keyColumns.some((c) => c.name === 'expires_at')) this.db.exec('ALTER TABLE api_keys ADD COLUMN expires_at INTEGER');
    if (!keyColumns.some((c) => c.name === 'expiry_noticed')) this.db.exec('ALTER TABLE api_keys ADD COLUMN expiry_noticed INTEGER NOT NULL DEFAULT 0');
    // And before users could set an anti-phishing code.
    if (!columns.some((c) => c.name === 'anti_phishing')) this.db.exec('ALTER TABLE users ADD COLUMN anti_phishing TEXT');
    if (!columns.some((c) => c.name === 'mail_off')) this.db.exec("ALTER TABLE users ADD COLUMN mail_off TEXT NOT NULL DEFAULT ''");
    // A new key counts the account's live ones (KEYS_PER_ACCOUNT); revoked ones stay for the record.
    this.db.exec('CREATE INDEX IF NOT EXISTS api_keys_by_account ON api_keys (account)');
  }

  /** A key of its own for another store's secrets (`purpose` names it), derived from the master key so that it never leaves here. */
  derivedKey(purpose: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.masterKey, Buffer.alloc(0), `bourse ${purpose}`, 32));
  }

  /**
   * Whether the master key opens the secrets already sealed here (one API key's or one user's
   * TOTP secret is tried; with none, any key does). With another key every signed request would
   * fail, so the exchange refuses to start instead.
   */
  masterKeyOpensSecrets(): boolean {
    const sealed = (this.db.prepare('SELECT secret_sealed AS sealed, key AS context FROM api_keys LIMIT 1').get()
      ?? this.db.prepare("SELECT totp_secret_sealed AS sealed, 'totp:' || id AS context FROM users WHERE totp_secret_sealed IS NOT NULL LIMIT 1").get()) as
      { sealed: Buffer; context: string } | undefined;
    if (sealed === undefined) return true;
    try {
      unseal(this.masterKey, sealed.sealed, sealed.context);
      return true;
    } catch {
      return false;
    }
  }

  async createUser(email: string, password: string, now: number): Promise<UserRecord> {
    const normalized = checkNewUser(email, password);
    if (this.userByEmail(normalized) !== undefined) throw new IdentityError('EMAIL_TAKEN', 'a user with this email exists');
    return this.insertUser(normalized, await hashPassword(password), now);
  }

  private insertUser(normalized: string, passwordHash: string, now: number): UserRecord {
    // Checked again here: the address may have been taken while the password was being hashed.
    if (this.userByEmail(normalized) !== undefined) throw new IdentityError('EMAIL_TAKEN', 'a user with this email exists');
    return this.db.transaction(() => {
      // Account ids follow user ids: user n trades in account n until sub-accounts arrive.
      const result = this.sql('INSERT INTO users (email, password_hash, account, created_at) VALUES (?, ?, 0, ?)').run(normalized, passwordHash, now);
      const id = Number(result.lastInsertRowid);
      this.sql('UPDATE users SET account = ? WHERE id = ?').run(id, id);
      // An operator who opens the account directly settles any sign-up waiting for the address.
      this.sql('DELETE FROM signups WHERE email = ?').run(normalized);
      return this.user(id)!;
    })();
  }

  // Sign-up and password reset by mail ------------------------------------------------------

  /**
   * A sign-up: the password is hashed whether or not the address is taken, so that the answer's
   * timing tells nobody which addresses have accounts. For a taken address the existing user is
   * returned and nothing is stored. For a new one, with `record`, the sign-up waits under a new
   * code (to be mailed) until completeSignup, replacing any earlier sign-up of the address;
   * without it (a code was mailed a moment ago) nothing changes and no code is made.
   */
  async startSignup(email: string, password: string, now: number, record = true): Promise<{ kind: 'existing'; user: UserRecord } | { kind: 'new'; token: string | null; validMs: number }> {
    const normalized = checkNewUser(email, password);
    const hash = await hashPassword(password);
    const existing = this.userByEmail(normalized);
    if (existing !== undefined) return { kind: 'existing', user: existing };
    if (!record) return { kind: 'new', token: null, validMs: SIGNUP_TTL_MS };
    const token = randomBytes(32).toString('hex');
    this.sql('DELETE FROM signups WHERE expires_at <= ?').run(now);
    this.sql('INSERT INTO signups (email, password_hash, token_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash, token_sha256 = excluded.token_sha256, created_at = excluded.created_at, expires_at = excluded.expires_at')
      .run(normalized, hash, tokenDigest(token), now, now + SIGNUP_TTL_MS);
    return { kind: 'new', token, validMs: SIGNUP_TTL_MS };
  }

  /** Opens the account of a waiting sign-up whose mailed code this is; the code then works no more. */
  completeSignup(token: string, now: number): UserRecord {
    const row = /^[0-9a-f]{64}$/.test(token)
      ? this.sql('SELECT email, password_hash AS hash FROM signups WHERE token_sha256 = ? AND expires_at > ?').get(tokenDigest(token), now) as { email: string; hash: string } | undefined
      : undefined;
    if (row === undefined) throw new IdentityError('INVALID_TOKEN', 'this code is not valid: it was used, replaced by a newer one, or has expired');
    return this.openSignup(row, now);
  }

  /** Opens the account of the address's waiting sign-up without its code: support, once the address is known to be the user's by other means. */
  completeSignupOf(email: string, now: number): UserRecord {
    const row = this.sql('SELECT email, password_hash AS hash FROM signups WHERE email = ? AND expires_at > ?').get(email.trim().toLowerCase(), now) as { email: string; hash: string } | undefined;
    if (row === undefined) throw new IdentityError('UNKNOWN_SIGNUP', 'no sign-up waits for this address');
    return this.openSignup(row, now);
  }

  private openSignup(row: { email: string; hash: string }, now: number): UserRecord {
    if (this.userByEmail(row.email) !== undefined) {
      this.sql('DELETE FROM signups WHERE email = ?').run(row.email);
      throw new IdentityError('EMAIL_TAKEN', 'a user with this email exists');
    }
    return this.insertUser(row.email, row.hash, now);
  }

  /** Sign-ups waiting for their code, newest first (optionally one address's). */
  waitingSignups(filter: { email?: string; limit: number }, now: number): { email: string; createdAt: number; expiresAt: number }[] {
    const where = filter.email === undefined ? '' : 'AND email = ?';
    const params = filter.email === undefined ? [] : [filter.email.trim().toLowerCase()];
    return this.sql(`SELECT email, created_at AS createdAt, expires_at AS expiresAt FROM signups WHERE expires_at > ? ${where} ORDER BY created_at DESC, email LIMIT ?`)
      .all(now, ...params, filter.limit) as { email: string; createdAt: number; expiresAt: number }[];
  }

  /** Whether a sign-up waits for this address with this password (a login before confirming is told so). */
  async signupWaiting(email: string, password: string, now: number): Promise<boolean> {
    const row = this.sql('SELECT password_hash AS hash FROM signups WHERE email = ? AND expires_at > ?').get(email.trim().toLowerCase(), now) as { hash: string } | undefined;
    return row !== undefined && await verifyPassword(password, row.hash);
  }

  /**
   * A change of the user's address, waiting under a code to be mailed to the new one (replacing
   * any earlier change asked for). An address another user has gets no code: 'taken'.
   */
  startEmailChange(userId: number, newEmail: string, now: number): { kind: 'code'; token: string; validMs: number; email: string } | { kind: 'taken' } {
    const normalized = newEmail.trim().toLowerCase();
    if (!EMAIL.test(normalized)) throw new IdentityError('INVALID_EMAIL', 'email is not valid');
    const owner = this.userByEmail(normalized);
    if (owner?.id === userId) throw new IdentityError('SAME_EMAIL', 'this is the address the account has');
    if (owner !== undefined) return { kind: 'taken' };
    const token = randomBytes(32).toString('hex');
    this.sql('DELETE FROM email_changes WHERE expires_at <= ?').run(now);
    this.sql('INSERT INTO email_changes (user_id, new_email, token_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET new_email = excluded.new_email, token_sha256 = excluded.token_sha256, created_at = excluded.created_at, expires_at = excluded.expires_at')
      .run(userId, normalized, tokenDigest(token), now, now + EMAIL_CHANGE_TTL_MS);
    return { kind: 'code', token, validMs: EMAIL_CHANGE_TTL_MS, email: normalized };
  }

  /** Moves the user whose code this is to the address it was mailed to; the user before and after. */
  completeEmailChange(token: string, now: number): { before: UserRecord; after: UserRecord } {
    const row = /^[0-9a-f]{64}$/.test(token)
      ? this.sql('SELECT user_id AS userId, new_email AS email FROM email_changes WHERE token_sha256 = ? AND expires_at > ?').get(tokenDigest(token), now) as { userId: number; email: string } | undefined
      : undefined;
    if (row === undefined) throw new IdentityError('INVALID_TOKEN', 'this code is not valid: it was used, replaced by a newer one, or has expired');
    return this.changeEmail(row.userId, row.email);
  }

  /** Gives the user another address (the operator's change, and the end of a user's); the user before and after. */
  changeEmail(userId: number, newEmail: string): { before: UserRecord; after: UserRecord } {
    const normalized = newEmail.trim().toLowerCase();
    if (!EMAIL.test(normalized)) throw new IdentityError('INVALID_EMAIL', 'email is not valid');
    const before = this.user(userId);
    if (before === undefined) throw new IdentityError('UNKNOWN_USER', 'no such user');
    if (this.userByEmail(normalized) !== undefined) throw new IdentityError('EMAIL_TAKEN', 'a user with this email exists');
    this.db.transaction(() => {
      this.sql('UPDATE users SET email = ? WHERE id = ?').run(normalized, userId);
      this.sql('DELETE FROM email_changes WHERE user_id = ?').run(userId);
      this.sql('DELETE FROM signups WHERE email = ?').run(normalized);
    })();
    return { before, after: this.user(userId)! };
  }

  /** A code that freezes the user's account without logging in, for a warning mail; each warning has its own. */
  createFreezeCode(userId: number, now: number): string {
    const token = randomBytes(32).toString('hex');
    this.sql('DELETE FROM freeze_codes WHERE expires_at <= ?').run(now);
    this.sql('INSERT INTO freeze_codes (token_sha256, user_id, expires_at) VALUES (?, ?, ?)').run(tokenDigest(token), userId, now + FREEZE_CODE_TTL_MS);
    return token;
  }

  /** The user a live freeze code belongs to; the user's codes are spent with it. */
  spendFreezeCode(token: string, now: number): UserRecord | undefined {
    if (!/^[0-9a-f]{64}$/.test(token)) return undefined;
    const row = this.sql('SELECT user_id AS userId FROM freeze_codes WHERE token_sha256 = ? AND expires_at > ?').get(tokenDigest(token), now) as { userId: number } | undefined;
    if (row === undefined) return undefined;
    this.sql('DELETE FROM freeze_codes WHERE user_id = ?').run(row.userId);
    return this.user(row.userId);
  }

  /** A new password-reset code for the user; any earlier one stops working. */
  startPasswordReset(userId: number, now: number): { token: string; validMs: number } {
    const token = randomBytes(32).toString('hex');
    this.db.transaction(() => {
      this.sql('DELETE FROM password_resets WHERE user_id = ? OR expires_at <= ?').run(userId, now);
      this.sql('INSERT INTO password_resets (token_sha256, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)').run(tokenDigest(token), userId, now, now + PASSWORD_RESET_TTL_MS);
    })();
    return { token, validMs: PASSWORD_RESET_TTL_MS };
  }

  /** The user a live password-reset code belongs to. */
  passwordResetUser(token: string, now: number): UserRecord | undefined {
    if (!/^[0-9a-f]{64}$/.test(token)) return undefined;
    const row = this.sql('SELECT user_id AS userId FROM password_resets WHERE token_sha256 = ? AND expires_at > ?').get(tokenDigest(token), now) as { userId: number } | undefined;
    return row === undefined ? undefined : this.user(row.userId);
  }

  /** Sets the password of the code's user and spends the code. */
  async completePasswordReset(token: string, password: string, now: number): Promise<UserRecord> {
    const user = this.passwordResetUser(token, now);
    if (user === undefined) throw new IdentityError('INVALID_TOKEN', 'this code is not valid: it was used, replaced by a newer one, or has expired');
    await this.setPassword(user.id, password);
    // Spent only now: a code refused for a weak password or a wrong second factor can be tried again.
    this.sql('DELETE FROM password_resets WHERE user_id = ?').run(user.id);
    return user;
  }

  async checkPassword(email: string, password: string): Promise<UserRecord | undefined> {
    const row = this.sql('SELECT id, password_hash FROM users WHERE email = ?').get(email.trim().toLowerCase()) as { id: number; password_hash: string } | undefined;
    if (row === undefined) return undefined;
    return (await verifyPassword(password, row.password_hash)) ? this.user(row.id) : undefined;
  }

  user(id: number): UserRecord | undefined {
    return toUser(this.sql(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?`).get(id));
  }

  userByEmail(email: string): UserRecord | undefined {
    return toUser(this.sql(`SELECT ${USER_COLUMNS} FROM users WHERE email = ?`).get(email.trim().toLowerCase()));
  }

  users(): UserRecord[] {
    return this.sql(`SELECT ${USER_COLUMNS} FROM users ORDER BY id`).all().map((row) => toUser(row)!);
  }

  /** Users newest first, `limit` of them below id `before`, optionally only those of one KYC status or only disabled ones. */
  listUsers(filter: { kyc?: KycStatus; disabled?: boolean; before?: number; limit: number }): UserRecord[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.kyc !== undefined) { where.push('kyc = ?'); params.push(filter.kyc); }
    if (filter.disabled !== undefined) where.push(filter.disabled ? 'disabled_at IS NOT NULL' : 'disabled_at IS NULL');
    if (filter.before !== undefined) { where.push('id < ?'); params.push(filter.before); }
    const clause = where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
    return this.sql(`SELECT ${USER_COLUMNS} FROM users ${clause} ORDER BY id DESC LIMIT ?`).all(...params, filter.limit).map((row) => toUser(row)!);
  }

  setKyc(userId: number, kyc: KycStatus, level: number): void {
    if (!KYC_STATUSES.includes(kyc)) throw new IdentityError('INVALID_KYC', `kyc must be one of ${KYC_STATUSES.join(', ')}`);
    if (this.sql('UPDATE users SET kyc = ?, level = ? WHERE id = ?').run(kyc, level, userId).changes !== 1) {
      throw new IdentityError('UNKNOWN_USER', 'no such user');
    }
  }

  async setPassword(userId: number, password: string): Promise<void> {
    checkNewPassword(password);
    const hash = await hashPassword(password);
    if (this.sql('UPDATE users SET password_hash = ? WHERE id = ?').run(hash, userId).changes !== 1) throw new IdentityError('UNKNOWN_USER', 'no such user');
  }

  /** Turns two-factor authentication off and forgets its secret (a user who lost their device). False if it was not on. */
  resetTotp(userId: number): boolean {
    const user = this.user(userId);
    if (user === undefined) throw new IdentityError('UNKNOWN_USER', 'no such user');
    this.sql('UPDATE users SET totp_secret_sealed = NULL, totp_enabled = 0, totp_last_step = 0 WHERE id = ?').run(userId);
    return user.twoFactor;
  }

  /** Ends the user's sessions, all of them or all but the one with `keepToken`; how many ended. */
  endSessions(userId: number, keepToken?: string): number {
    return this.sql('DELETE FROM sessions WHERE user_id = ? AND token_sha256 != ?').run(userId, keepToken === undefined ? '' : tokenDigest(keepToken)).changes;
  }

  /**
   * Disables the user (`at`: when) or enables them again (null). Disabling ends the user's
   * sessions; their keys stay as they were, unusable while the user is disabled. False if the
   * user was already so.
   */
  setDisabled(userId: number, at: number | null): boolean {
    const changed = at === null
      ? this.sql('UPDATE users SET disabled_at = NULL WHERE id = ? AND disabled_at IS NOT NULL').run(userId).changes === 1
      : this.sql('UPDATE users SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL').run(at, userId).changes === 1;
    if (at !== null) this.endSessions(userId);
    return changed;
  }

  // Two-factor authentication ------------------------------------------------------------

  /** Starts TOTP enrolment: a new secret, stored sealed, that counts once a code confirms it. */
  setupTotp(userId: number, issuer: string): { secret: string; uri: string } {
    const user = this.user(userId);
    if (user === undefined) throw new IdentityError('UNKNOWN_USER', 'no such user');
    if (user.twoFactor) throw new IdentityError('TOTP_ALREADY_ENABLED', 'two-factor authentication is on already');
    const secret = generateSecret();
    this.sql('UPDATE users SET totp_secret_sealed = ?, totp_last_step = 0 WHERE id = ?').run(seal(this.masterKey, secret, `totp:${userId}`), userId);
    return { secret, uri: generateURI({ issuer, label: user.email, secret }) };
  }

  enableTotp(userId: number, code: string, nowMs: number): void {
    if (!this.checkTotp(userId, code, nowMs, true)) throw new IdentityError('INVALID_TOTP', 'the code does not match');
    this.sql('UPDATE users SET totp_enabled = 1 WHERE id = ?').run(userId);
  }

  /**
   * Checks a TOTP code for a user with two-factor authentication on. A code is accepted once:
   * its time step must be later than the last accepted one.
   */
  verifyTotp(userId: number, code: string, nowMs: number): boolean {
    return this.checkTotp(userId, code, nowMs, false);
  }

  private checkTotp(userId: number, code: string, nowMs: number, enrolling: boolean): boolean {
    const row = this.sql('SELECT totp_secret_sealed AS sealed, totp_enabled AS enabled, totp_last_step AS lastStep FROM users WHERE id = ?').get(userId) as
      | { sealed: Buffer | null; enabled: number; lastStep: number }
      | undefined;
    if (row === undefined || row.sealed === null || (row.enabled === 1) === enrolling) return false;
    if (!/^\d{6}$/.test(code)) return false;
    const secret = unseal(this.masterKey, row.sealed, `totp:${userId}`);
    const result = verifySync({ secret, token: code, epoch: Math.floor(nowMs / 1000), epochTolerance: TOTP_TOLERANCE_SECONDS });
    if (!result.valid) return false;
    // The TOTP result carries the matching period's start (seconds); HOTP's type in the union does not.
    const step = Math.floor((result as { epoch: number }).epoch / 30);
    if (step <= row.lastStep) return false;
    this.sql('UPDATE users SET totp_last_step = ? WHERE id = ?').run(step, userId);
    return true;
  }

  // Sessions -------------------------------------------------------------------------------

  /** Opens a session; `from` is where it was opened (address and client), for the user's list of sessions. */
  createSession(userId: number, nowMs: number, from: { address: string; userAgent: string } = { address: '', userAgent: '' }): { token: string; expiresAt: number } {
    const token = randomBytes(32).toString('hex');
    const expiresAt = nowMs + this.sessions.ttlMs;
    this.sql('DELETE FROM sessions WHERE expires_at <= ? OR seen_at <= ?').run(nowMs, nowMs - this.sessions.idleMs);
    this.sql('INSERT INTO sessions (token_sha256, user_id, created_at, expires_at, address, user_agent, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(tokenDigest(token), userId, nowMs, expiresAt, from.address, from.userAgent.slice(0, 200), nowMs);
    return { token, expiresAt };
  }

  /**
   * The user of a live session: one neither past its lifetime nor idle too long (SessionPolicy). Each
   * use counts as activity (written at most once a minute per session).
   */
  sessionUser(token: string, nowMs: number): UserRecord | undefined {
    if (!/^[0-9a-f]{64}$/.test(token)) return undefined;
    const digest = tokenDigest(token);
    const row = this.sql('SELECT user_id AS userId, seen_at AS seenAt FROM sessions WHERE token_sha256 = ? AND expires_at > ?').get(digest, nowMs) as
      { userId: number; seenAt: number } | undefined;
    if (row === undefined) return undefined;
    if (nowMs - row.seenAt >= this.sessions.idleMs) {
      this.sql('DELETE FROM sessions WHERE token_sha256 = ?').run(digest);
      return undefined;
    }
    const user = this.user(row.userId);
    if (user?.disabledAt !== null) return undefined;
    if (nowMs - row.seenAt >= SESSION_SEEN_RESOLUTION_MS) this.sql('UPDATE sessions SET seen_at = ? WHERE token_sha256 = ?').run(nowMs, digest);
    return user;
  }

  /** The user's live sessions, newest first; `id` is the start of the token's digest (it logs nobody in). */
  sessionsOf(userId: number, nowMs: number): { id: string; createdAt: number; expiresAt: number; lastSeenAt: number; address: string; userAgent: string }[] {
    return this.sql(`SELECT substr(token_sha256, 1, ${SESSION_ID_LENGTH}) AS id, created_at AS createdAt, expires_at AS expiresAt, seen_at AS lastSeenAt,
      address, user_agent AS userAgent FROM sessions WHERE user_id = ? AND expires_at > ? AND seen_at > ? ORDER BY created_at DESC, token_sha256`)
      .all(userId, nowMs, nowMs - this.sessions.idleMs) as { id: string; createdAt: number; expiresAt: number; lastSeenAt: number; address: string; userAgent: string }[];
  }

  /** Ends one of the user's sessions by its id (from sessionsOf); false if there is none. */
  endSessionById(userId: number, id: string): boolean {
    if (!new RegExp(`^[0-9a-f]{${SESSION_ID_LENGTH}}$`).test(id)) return false;
    return this.sql(`DELETE FROM sessions WHERE user_id = ? AND substr(token_sha256, 1, ${SESSION_ID_LENGTH}) = ?`).run(userId, id).changes > 0;
  }

  /** The id sessionsOf gives the session of this token. */
  static sessionId(token: string): string {
    return tokenDigest(token).slice(0, SESSION_ID_LENGTH);
  }

  deleteSession(token: string): void {
    this.sql('DELETE FROM sessions WHERE token_sha256 = ?').run(tokenDigest(token));
  }

  /**
   * A further account of the user (a "portfolio"): its own balances and orders, reached by keys
   * bound to it. Ids start above SUB_ACCOUNT_BASE so that they never meet a main account (= user id).
   */
  createSubAccount(userId: number, label: string, now: number): AccountRecord {
    if (this.user(userId) === undefined) throw new IdentityError('UNKNOWN_USER', 'no such user');
    if (label.length === 0 || label.length > 64) throw new IdentityError('INVALID_LABEL', 'label must have 1 to 64 characters');
    if (this.accountsOf(userId).length >= SUB_ACCOUNTS_MAX + 1) throw new IdentityError('TOO_MANY_ACCOUNTS', `at most ${SUB_ACCOUNTS_MAX} sub-accounts`);
    const id = Number(this.sql('INSERT INTO sub_accounts (id, user_id, label, created_at) SELECT COALESCE(MAX(id), ?) + 1, ?, ?, ? FROM sub_accounts')
      .run(SUB_ACCOUNT_BASE, userId, label, now).lastInsertRowid);
    return { id, userId, label, main: false, createdAt: now };
  }

  /** The user's accounts: the main one first, then sub-accounts by id. */
  accountsOf(userId: number): AccountRecord[] {
    const user = this.user(userId);
    if (user === undefined) return [];
    const subs = this.sql('SELECT id, user_id AS userId, label, created_at AS createdAt FROM sub_accounts WHERE user_id = ? ORDER BY id').all(userId) as Omit<AccountRecord, 'main'>[];
    return [{ id: user.account, userId, label: 'main', main: true, createdAt: user.createdAt }, ...subs.map((a) => ({ ...a, main: false }))];
  }

  /** Every sub-account (for reconciling the engine's accounts at start). */
  subAccounts(): AccountRecord[] {
    return (this.sql('SELECT id, user_id AS userId, label, created_at AS createdAt FROM sub_accounts ORDER BY id').all() as Omit<AccountRecord, 'main'>[]).map((a) => ({ ...a, main: false }));
  }

  /** Creates an HMAC key; the secret is returned once and stored only sealed. */
  createApiKey(userId: number, spec: KeySpec, now: number): { record: ApiKeyRecord; secret: string } {
    const user = this.user(userId);
    if (user === undefined) throw new IdentityError('UNKNOWN_USER', 'no such user');
    const key = randomBytes(16).toString('hex');
    const secret = randomBytes(32).toString('hex');
    this.insertKey(key, user, spec, 'hmac', secret, now);
    return { record: this.apiKey(key)!, secret };
  }

  /** Registers an Ed25519 public key (PEM); the private key never reaches the exchange. */
  registerEd25519Key(userId: number, publicKeyPem: string, spec: KeySpec, now: number): ApiKeyRecord {
    const user = this.user(userId);
    if (user === undefined) throw new IdentityError('UNKNOWN_USER', 'no such user');
    let type: string | undefined;
    try {
      type = createPublicKey(publicKeyPem).asymmetricKeyType;
    } catch {
      type = undefined;
    }
    if (type !== 'ed25519') throw new IdentityError('INVALID_PUBLIC_KEY', 'public_key must be an Ed25519 public key in PEM (SPKI)');
    const key = randomBytes(16).toString('hex');
    this.insertKey(key, user, spec, 'ed25519', publicKeyPem, now);
    return this.apiKey(key)!;
  }

  private insertKey(key: string, user: UserRecord, spec: KeySpec, scheme: 'hmac' | 'ed25519', secret: string, now: number): void {
    const { permissions, ipAllow, account = user.account, label = '', expiresAt = null } = spec;
    if (expiresAt !== null && (!Number.isSafeInteger(expiresAt) || expiresAt <= now)) throw new IdentityError('INVALID_EXPIRY', 'a key\'s expiry must be a time in the future (ms since the epoch)');
    if (label.length > 64 || !/^[\x20-\x7e]*$/.test(label)) throw new IdentityError('INVALID_LABEL', 'a key label is up to 64 printable characters');
    if (!this.accountsOf(user.id).some((a) => a.id === account)) throw new IdentityError('UNKNOWN_ACCOUNT', 'the key\'s account must be one of the user\'s accounts');
    for (const p of permissions) if (!PERMISSIONS.includes(p)) throw new IdentityError('INVALID_PERMISSION', `unknown permission ${p}`);
    try {
      blockList(ipAllow);
    } catch (error) {
      throw new IdentityError('INVALID_IP', (error as Error).message);
    }
    // A key that can move money out must be bound to known addresses.
    if (permissions.includes('withdraw') && ipAllow.length === 0) {
      throw new IdentityError('IP_ALLOW_LIST_REQUIRED', 'keys with the withdraw permission need an IP allow-list');
    }
    const { live } = this.sql('SELECT COUNT(*) AS live FROM api_keys WHERE account = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)').get(account, now) as { live: number };
    if (live >= KEYS_PER_ACCOUNT) throw new IdentityError('TOO_MANY_KEYS', `an account holds at most ${KEYS_PER_ACCOUNT} live API keys; revoke one first`);
    this.sql('INSERT INTO api_keys (key, user_id, account, permissions, ip_allow, scheme, secret_sealed, created_at, label, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(key, user.id, account, permissions.join(','), ipAllow.join(','), scheme, seal(this.masterKey, secret, key), now, label, expiresAt);
  }

  apiKey(key: string): ApiKeyRecord | undefined {
    const row = this.sql('SELECT * FROM api_keys WHERE key = ?').get(key) as
      | {
        key: string; user_id: number; account: number; permissions: string; ip_allow: string; scheme: 'hmac' | 'ed25519'; secret_sealed: Buffer;
        created_at: number; revoked_at: number | null; label: string; last_used_at: number | null; last_used_ip: string | null; expires_at: number | null;
      }
      | undefined;
    if (row === undefined) return undefined;
    return {
      key: row.key, userId: row.user_id, account: row.account,
      permissions: row.permissions === '' ? [] : (row.permissions.split(',') as Permission[]),
      ipAllow: row.ip_allow === '' ? [] : row.ip_allow.split(','), scheme: row.scheme,
      secret: unseal(this.masterKey, row.secret_sealed, row.key), createdAt: row.created_at, revokedAt: row.revoked_at,
      label: row.label, lastUsedAt: row.last_used_at, lastUsedIp: row.last_used_ip, expiresAt: row.expires_at,
    };
  }

  apiKeysOf(userId: number): Omit<ApiKeyRecord, 'secret'>[] {
    const keys = this.sql('SELECT key FROM api_keys WHERE user_id = ? ORDER BY created_at, key').all(userId) as { key: string }[];
    return keys.map(({ key }) => {
      const { secret: _secret, ...rest } = this.apiKey(key)!;
      return rest;
    });
  }

  /**
   * Live keys of enabled users that expire after `now` and by `by`, whose owners have not been
   * told yet; each is marked told as it is returned, so that a key is noticed once.
   */
  takeExpiringKeys(now: number, by: number): { key: string; label: string; expiresAt: number; email: string }[] {
    return this.db.transaction(() => {
      const rows = this.sql(`SELECT k.key, k.label, k.expires_at AS expiresAt, u.email FROM api_keys k JOIN users u ON u.id = k.user_id
        WHERE k.revoked_at IS NULL AND k.expiry_noticed = 0 AND k.expires_at > ? AND k.expires_at <= ? AND u.disabled_at IS NULL ORDER BY k.expires_at`)
        .all(now, by) as { key: string; label: string; expiresAt: number; email: string }[];
      const mark = this.sql('UPDATE api_keys SET expiry_noticed = 1 WHERE key = ?');
      for (const row of rows) mark.run(row.key);
      return rows;
    })();
  }

  /** Records when and from where keys were last used, in one transaction (the authenticator gathers them). */
  recordKeyUse(uses: Iterable<{ key: string; at: number; ip: string }>): void {
    const update = this.sql('UPDATE api_keys SET last_used_at = ?, last_used_ip = ? WHERE key = ? AND (last_used_at IS NULL OR last_used_at < ?)');
    this.db.transaction(() => {
      for (const use of uses) update.run(use.at, use.ip, use.key, use.at);
    })();
  }

  /**
   * Changes where an active key of the user may be used from and its label (those given). A key
   * that can withdraw keeps an allow-list. The key as it is now, or undefined (no such active key).
   */
  updateApiKey(userId: number, key: string, change: { ipAllow?: string[]; label?: string }, now: number): ApiKeyRecord | undefined {
    const current = this.apiKey(key);
    if (current === undefined || current.userId !== userId || current.revokedAt !== null || (current.expiresAt !== null && current.expiresAt <= now)) return undefined;
    const ipAllow = change.ipAllow ?? current.ipAllow;
    const label = change.label ?? current.label;
    if (label.length > 64 || !/^[\x20-\x7e]*$/.test(label)) throw new IdentityError('INVALID_LABEL', 'a key label is up to 64 printable characters');
    try {
      blockList(ipAllow);
    } catch (error) {
      throw new IdentityError('INVALID_IP', (error as Error).message);
    }
    if (current.permissions.includes('withdraw') && ipAllow.length === 0) {
      throw new IdentityError('IP_ALLOW_LIST_REQUIRED', 'keys with the withdraw permission need an IP allow-list');
    }
    this.sql('UPDATE api_keys SET ip_allow = ?, label = ? WHERE key = ?').run(ipAllow.join(','), label, key);
    return this.apiKey(key);
  }

  revokeApiKey(userId: number, key: string, now: number): boolean {
    return this.sql('UPDATE api_keys SET revoked_at = ? WHERE key = ? AND user_id = ? AND revoked_at IS NULL').run(now, key, userId).changes === 1;
  }

  /**
   * Records an attempt to log in as a user, successful or not, keeping the user's newest
   * LOGINS_KEPT: what the user (and support) see as the account's login history.
   */
  recordLogin(entry: Omit<LoginRecord, 'id'>): void {
    this.db.transaction(() => {
      this.sql('INSERT INTO logins (user_id, ts, address, user_agent, outcome) VALUES (?, ?, ?, ?, ?)')
        .run(entry.userId, entry.ts, entry.address, entry.userAgent.slice(0, 200), entry.outcome);
      this.sql('DELETE FROM logins WHERE user_id = ? AND id <= (SELECT id FROM logins WHERE user_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)')
        .run(entry.userId, entry.userId, LOGINS_KEPT);
    })();
  }

  /**
   * Whether the user has logged in before (among the attempts kept), and from this address:
   * a login from an address never seen is worth telling the user about.
   */
  loggedInBefore(userId: number, address: string): { ever: boolean; fromAddress: boolean } {
    const row = this.sql("SELECT COUNT(*) AS ever, COALESCE(SUM(address = ?), 0) AS here FROM logins WHERE user_id = ? AND outcome = 'ok'").get(address, userId) as { ever: number; here: number };
    return { ever: row.ever > 0, fromAddress: row.here > 0 };
  }

  /**
   * The user's anti-phishing code, which every mail to them shows so that they can tell the
   * exchange's mail from a forgery; null removes it.
   */
  setAntiPhishing(userId: number, code: string | null): void {
    if (code !== null && !ANTI_PHISHING.test(code)) throw new IdentityError('INVALID_ANTI_PHISHING_CODE', 'an anti-phishing code has 4 to 20 letters and digits');
    if (this.sql('UPDATE users SET anti_phishing = ? WHERE id = ?').run(code, userId).changes !== 1) throw new IdentityError('UNKNOWN_USER', 'no such user');
  }

  /** The groups of mails the user has turned off (names the mailer defines; stored as given). */
  mailTurnedOff(userId: number): string[] {
    const row = this.sql('SELECT mail_off AS off FROM users WHERE id = ?').get(userId) as { off: string } | undefined;
    return row === undefined || row.off === '' ? [] : row.off.split(',');
  }

  setMailTurnedOff(userId: number, groups: string[]): void {
    if (this.sql('UPDATE users SET mail_off = ? WHERE id = ?').run([...new Set(groups)].sort().join(','), userId).changes !== 1) throw new IdentityError('UNKNOWN_USER', 'no such user');
  }

  /** The anti-phishing code of the user with this email, or null (none set, or no such user). */
  antiPhishingOf(email: string): string | null {
    const row = this.sql('SELECT anti_phishing AS code FROM users WHERE email = ?').get(email.trim().toLowerCase()) as { code: string | null } | undefined;
    return row?.code ?? null;
  }

  /**
   * Records a change to what guards the user's account (a password, a key, an address), keeping
   * the user's newest SECURITY_EVENTS_KEPT: their account activity, for them and for support.
   */
  recordSecurityEvent(entry: Omit<SecurityEvent, 'id'>): void {
    this.db.transaction(() => {
      this.sql('INSERT INTO security_events (user_id, ts, kind, by, address, user_agent, detail) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(entry.userId, entry.ts, entry.kind, entry.by, entry.address, entry.userAgent.slice(0, 200), entry.detail.slice(0, 500));
      this.sql('DELETE FROM security_events WHERE user_id = ? AND id <= (SELECT id FROM security_events WHERE user_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)')
        .run(entry.userId, entry.userId, SECURITY_EVENTS_KEPT);
    })();
  }

  /** A user's account activity, newest first. */
  securityEventsOf(userId: number, limit: number): SecurityEvent[] {
    return this.sql('SELECT id, user_id AS userId, ts, kind, by, address, user_agent AS userAgent, detail FROM security_events WHERE user_id = ? ORDER BY id DESC LIMIT ?')
      .all(userId, limit) as SecurityEvent[];
  }

  /** A user's login attempts, newest first. */
  loginsOf(userId: number, limit: number): LoginRecord[] {
    return this.sql('SELECT id, user_id AS userId, ts, address, user_agent AS userAgent, outcome FROM logins WHERE user_id = ? ORDER BY id DESC LIMIT ?')
      .all(userId, limit) as LoginRecord[];
  }

  /** Blocks an address or CIDR block (replacing an earlier block of the same). */
  blockAddress(block: AddressBlock): void {
    this.sql('INSERT INTO blocked_addresses (cidr, reason, actor, created_at, until) VALUES (?, ?, ?, ?, ?) ON CONFLICT (cidr) DO UPDATE SET reason = excluded.reason, actor = excluded.actor, created_at = excluded.created_at, until = excluded.until')
      .run(block.cidr, block.reason, block.actor, block.createdAt, block.until);
  }

  unblockAddress(cidr: string): boolean {
    return this.sql('DELETE FROM blocked_addresses WHERE cidr = ?').run(cidr).changes === 1;
  }

  /** The blocks in force at `now`, newest first (expired ones are dropped). */
  blockedAddresses(now: number): AddressBlock[] {
    this.sql('DELETE FROM blocked_addresses WHERE until IS NOT NULL AND until <= ?').run(now);
    return this.sql('SELECT cidr, reason, actor, created_at AS createdAt, until FROM blocked_addresses ORDER BY created_at DESC, cidr').all() as AddressBlock[];
  }

  /** Keeps a ban (replacing the subject's last), so that a restart neither lifts it nor forgets it for the next one's length. */
  saveRateBan(ban: RateBanRecord): void {
    this.sql('INSERT INTO rate_bans (subject, until, bans) VALUES (?, ?, ?) ON CONFLICT (subject) DO UPDATE SET until = excluded.until, bans = excluded.bans')
      .run(ban.subject, ban.until, ban.bans);
  }

  forgetRateBan(subject: string): void {
    this.sql('DELETE FROM rate_bans WHERE subject = ?').run(subject);
  }

  /** The bans that end after `since` (in force, or ended recently enough to double the next); older ones are dropped. */
  rateBans(since: number): RateBanRecord[] {
    this.sql('DELETE FROM rate_bans WHERE until <= ?').run(since);
    return this.sql('SELECT subject, until, bans FROM rate_bans ORDER BY until').all() as RateBanRecord[];
  }

  /** The operator's notice to every trader (a maintenance window, an incident), until it is cleared or its end passes. */
  venueNotice(now: number): VenueNotice | null {
    const row = this.sql('SELECT text, actor, since, until FROM venue_notice WHERE id = 1 AND (until IS NULL OR until > ?)').get(now) as VenueNotice | undefined;
    return row ?? null;
  }

  setVenueNotice(notice: VenueNotice): void {
    if (notice.text.length === 0 || notice.text.length > 500) throw new IdentityError('INVALID_NOTICE', 'a notice has 1 to 500 characters');
    this.sql('INSERT INTO venue_notice (id, text, actor, since, until) VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET text = excluded.text, actor = excluded.actor, since = excluded.since, until = excluded.until')
      .run(notice.text, notice.actor, notice.since, notice.until);
  }

  clearVenueNotice(): boolean {
    return this.sql('DELETE FROM venue_notice WHERE id = 1').run().changes === 1;
  }

  /** Records what an operator did through the admin API (never a password: `subject` is chosen fields). */
  recordAdminAction(entry: Omit<AdminActionRecord, 'id'>): void {
    this.sql('INSERT INTO admin_audit (ts, operator, address, method, path, status, subject) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(entry.ts, entry.operator, entry.address, entry.method, entry.path, entry.status, JSON.stringify(entry.subject));
  }

  /** Operators' actions, newest first, `limit` of them before id `before`. */
  adminActions(page: { before?: number; limit: number }): AdminActionRecord[] {
    const rows = (page.before === undefined
      ? this.sql('SELECT * FROM admin_audit ORDER BY id DESC LIMIT ?').all(page.limit)
      : this.sql('SELECT * FROM admin_audit WHERE id < ? ORDER BY id DESC LIMIT ?').all(page.before, page.limit)) as (Omit<AdminActionRecord, 'subject'> & { subject: string })[];
    return rows.map((row) => ({ ...row, subject: JSON.parse(row.subject) as Record<string, unknown> }));
  }

  /** Writes a consistent copy of the store to the new file `path` (for backups). */
  copyTo(path: string): void {
    this.db.prepare('VACUUM INTO ?').run(path);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
