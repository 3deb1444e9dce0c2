/**
 * The funding database (DATA/funding.db): deposit addresses, deposits, withdrawals and their
 * audit trail, the withdrawal address allow-list, bank accounts, fiat deposits and transfers.
 * Balances are not here: money moves only through engine commands; these rows track the
 * outside world's side of each movement and its state.
 */
import Database from 'better-sqlite3';

export type DepositState = 'detected' | 'confirming' | 'credited' | 'dropped';
export type WithdrawalState = 'requested' | 'awaiting_2fa' | 'review' | 'approved' | 'sending' | 'sent' | 'completed' | 'failed' | 'cancelled' | 'rejected';

export interface DepositRow {
  id: number; network: string; txid: string; output: number; asset: string; user_id: number; address: string; tag: string | null;
  amount: number; confirmations: number; required: number; state: DepositState; created_at: number; updated_at: number;
}

export interface WithdrawalRow {
  id: number; user_id: number; account: number; asset: string; amount: number; fee: number; kind: 'crypto' | 'fiat';
  address: string | null; tag: string | null; bank_account_id: number | null; state: WithdrawalState; request_key: string;
  txid: string | null; reason: string | null; needs_2fa: number; needs_review: number; approved_by: string | null;
  created_at: number; updated_at: number;
}

export interface TransferRow { id: number; from_user: number; from_account: number; to_user: number; to_account: number; asset: string; amount: number; request_key: string; created_at: number }
export interface BankAccountRow { id: number; user_id: number; rail: string; holder: string; iban: string | null; bic: string | null; clabe: string | null; created_at: number }
export interface AllowedAddressRow { user_id: number; asset: string; address: string; tag: string; label: string; created_at: number; usable_at: number }

export function openFundingDb(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS address_counters (network TEXT PRIMARY KEY, next_index INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS deposit_addresses (
      user_id INTEGER NOT NULL, asset TEXT NOT NULL, network TEXT NOT NULL, address TEXT NOT NULL, tag TEXT,
      derivation_index INTEGER, created_at INTEGER NOT NULL, PRIMARY KEY (user_id, asset)
    );
    CREATE INDEX IF NOT EXISTS deposit_addresses_by_address ON deposit_addresses (network, address, tag);
    CREATE TABLE IF NOT EXISTS deposits (
      id INTEGER PRIMARY KEY, network TEXT NOT NULL, txid TEXT NOT NULL, output INTEGER NOT NULL, asset TEXT NOT NULL,
      user_id INTEGER NOT NULL, address TEXT NOT NULL, tag TEXT, amount INTEGER NOT NULL, confirmations INTEGER NOT NULL,
      required INTEGER NOT NULL, state TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
      UNIQUE (network, txid, output)
    );
    CREATE INDEX IF NOT EXISTS deposits_by_user ON deposits (user_id, id);
    CREATE TABLE IF NOT EXISTS withdrawals (
      id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, account INTEGER NOT NULL, asset TEXT NOT NULL, amount INTEGER NOT NULL,
      fee INTEGER NOT NULL, kind TEXT NOT NULL, address TEXT, tag TEXT, bank_account_id INTEGER, state TEXT NOT NULL,
      request_key TEXT NOT NULL, txid TEXT, reason TEXT, needs_2fa INTEGER NOT NULL, needs_review INTEGER NOT NULL,
      approved_by TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE (user_id, request_key)
    );
    CREATE INDEX IF NOT EXISTS withdrawals_by_user ON withdrawals (user_id, id);
    CREATE INDEX IF NOT EXISTS withdrawals_by_state ON withdrawals (state);
    CREATE TABLE IF NOT EXISTS allowed_addresses (
      user_id INTEGER NOT NULL, asset TEXT NOT NULL, address TEXT NOT NULL, tag TEXT NOT NULL DEFAULT '', label TEXT NOT NULL,
      created_at INTEGER NOT NULL, usable_at INTEGER NOT NULL, PRIMARY KEY (user_id, asset, address, tag)
    );
    CREATE TABLE IF NOT EXISTS credential_changes (user_id INTEGER PRIMARY KEY, changed_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS bank_accounts (
      id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, rail TEXT NOT NULL, holder TEXT NOT NULL, iban TEXT, bic TEXT, clabe TEXT,
      created_at INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS fiat_deposits (
      bank_reference TEXT PRIMARY KEY, user_id INTEGER NOT NULL, asset TEXT NOT NULL, amount INTEGER NOT NULL,
      reference TEXT NOT NULL, recorded_by TEXT NOT NULL, created_at INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS transfers (
      id INTEGER PRIMARY KEY, from_user INTEGER NOT NULL, from_account INTEGER NOT NULL, to_user INTEGER NOT NULL,
      to_account INTEGER NOT NULL, asset TEXT NOT NULL, amount INTEGER NOT NULL, request_key TEXT NOT NULL,
      created_at INTEGER NOT NULL, UNIQUE (from_user, request_key)
    );
    CREATE TABLE IF NOT EXISTS suspensions (
      asset TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL, since INTEGER NOT NULL, actor TEXT NOT NULL, PRIMARY KEY (asset, kind)
    );
    CREATE TABLE IF NOT EXISTS audit (
      id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT NOT NULL
    );
  `);
  return db;
}

/**
 * Newest first below `beforeId`, or oldest first above `afterId`; `from` and `to` (ms, included)
 * narrow by creation time. The read model's listings page the same way (store/projector.ts).
 */
export interface Page { limit: number; beforeId?: number; afterId?: number; from?: number; to?: number }

export function pageClause(page: Page): { sql: string; params: number[] } {
  const where: string[] = [];
  const params: number[] = [];
  const add = (sql: string, value: number | undefined) => {
    if (value === undefined) return;
    where.push(sql);
    params.push(value);
  };
  add('id < ?', page.beforeId);
  add('id > ?', page.afterId);
  add('created_at >= ?', page.from);
  add('created_at <= ?', page.to);
  const order = page.afterId === undefined ? 'DESC' : 'ASC';
  return { sql: `${where.map((w) => `AND ${w} `).join('')}ORDER BY id ${order} LIMIT ?`, params: [...params, page.limit] };
}
