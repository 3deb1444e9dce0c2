/**
 * Deposits, withdrawals and transfers. The service talks to the engine only through commands
 * (deposit, lock_funds, unlock_funds, settle_funds, transfer), each carrying a key the engine
 * applies at most once; its own rows in DATA/funding.db record the outside world's side.
 *
 * Withdrawal: request (row) → lock_funds wd:<id> → awaiting_2fa | review | approved → sending
 * (row) → chain send, idempotent by wd:<id> → sent (row, txid) → settle_funds → completed; or
 * failed / cancelled / rejected with unlock_funds. Every step is re-driven on start from the row
 * and the engine's hold, so a crash between any two steps neither sends twice nor loses the lock.
 */
import type Database from 'better-sqlite3';
import type { Command, Engine, EngineEvent } from '../core/index.js';
import { formatMinor, parseMinorNumber } from '../money/index.js';
import type { IdentityStore, UserRecord } from '../identity/store.js';
import { addressProblem, bitcoinAddress, ethereumAddress, parseExtendedKey, tagProblem } from './chains/addresses.js';
import type { Network, TagKind } from './chains/addresses.js';
import type { ChainAdapter, IncomingTransfer } from './chains/adapter.js';
import type { FundingAssetConfig, FundingConfig } from './config.js';
import { checkBankDetails, depositReference, userOfReference } from './fiat.js';
import type { Rail } from './fiat.js';
import { pageClause } from './store.js';
import { statementCache } from '../store/statement-cache.js';
import type { Sql } from '../store/statement-cache.js';
import type { AllowedAddressRow, BankAccountRow, DepositRow, Page, TransferRow, WithdrawalRow, WithdrawalState } from './store.js';

export interface FundingHost {
  submit(cmd: Command): Promise<{ seq: number; events: EngineEvent[] }>;
  readonly engine: Engine;
  readonly identity: IdentityStore;
  clock(): number;
}

export class FundingError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'FundingError';
  }
}

/** One asset's rules, in minor units. */
export interface AssetRules {
  asset: string;
  precision: number;
  network: Network | null;
  rail: Rail | null;
  tag: TagKind | null;
  sharedAddress: string | null;
  xpub: ReturnType<typeof parseExtendedKey> | null;
  confirmations: number;
  minWithdrawal: number;
  feeFixed: number;
  /** Parts per million. */
  feePpm: number;
  dailyLimits: number[];
  approvalAbove: number;
  hotWalletCap: number;
}

/** A deposit's or a withdrawal's new state; a withdrawal's with the state it left (null when its change was unconditional). */
export type FundingEvent = { type: 'deposit'; userId: number; deposit: DepositRow } | { type: 'withdrawal'; userId: number; withdrawal: WithdrawalRow; from: WithdrawalState | null };

const DAY_MS = 86_400_000;
const RETRY_MS = 2_000;

export class FundingService {
  private readonly rules = new Map<string, AssetRules>();
  private readonly listeners = new Set<(event: FundingEvent) => void>();
  private driving = false;
  /** Withdrawals whose chain send is being awaited right now. */
  private readonly sending = new Set<number>();
  private readonly sql: Sql;
  private redrive = false;

  constructor(
    private readonly db: Database.Database,
    private readonly host: FundingHost,
    private readonly chain: ChainAdapter,
    private readonly config: FundingConfig,
    /** Test hook: a step name at which the process kills itself (crash-point tests). */
    private readonly crashAt: string | null = null,
  ) {
    this.sql = statementCache(db);
    for (const asset of config.assets) this.rules.set(asset.asset, this.compile(asset));
    chain.watch((transfer) => this.observe(transfer));
  }

  onEvent(listener: (event: FundingEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every asset's funding rules, in minor units. */
  assets(): readonly AssetRules[] {
    return [...this.rules.values()];
  }

  rulesOf(asset: string): AssetRules {
    const rules = this.rules.get(asset);
    if (rules === undefined) throw new FundingError(404, 'UNKNOWN_ASSET', `${asset} cannot be deposited or withdrawn here`);
    return rules;
  }

  // ---------------------------------------------------------------------------------------
  // Deposits
  // ---------------------------------------------------------------------------------------

  /** The user's deposit address for an asset (made on first request, then always the same). */
  depositAddress(userId: number, asset: string): { asset: string; network: Network; address: string; tag: string | null } {
    const rules = this.rulesOf(asset);
    const suspended = this.suspension(asset, 'deposits');
    if (suspended !== null) throw new FundingError(503, 'DEPOSITS_SUSPENDED', `${asset} deposits are suspended: ${suspended.reason}`);
    if (rules.network === null) throw new FundingError(400, 'FIAT_ASSET', `${asset} is deposited by bank transfer: use the deposit reference`);
    const network = rules.network;
    const existing = this.sql('SELECT address, tag FROM deposit_addresses WHERE user_id = ? AND asset = ?').get(userId, asset) as { address: string; tag: string | null } | undefined;
    if (existing !== undefined) return { asset, network, address: existing.address, tag: existing.tag };
    const made = this.db.transaction(() => {
      if (rules.sharedAddress !== null) return { address: rules.sharedAddress, tag: String(userId), index: null };
      // Assets on one chain share the derivation sequence of that chain's key, so addresses never repeat.
      const counter = `${network}:${rules.xpub!.publicExtendedKey}`;
      const row = this.sql('SELECT next_index AS n FROM address_counters WHERE network = ?').get(counter) as { n: number } | undefined;
      const reuse = this.sql('SELECT address, derivation_index AS i FROM deposit_addresses WHERE user_id = ? AND network = ? AND derivation_index IS NOT NULL').get(userId, network) as { address: string; i: number } | undefined;
      if (reuse !== undefined) return { address: reuse.address, tag: null, index: reuse.i };
      const index = row?.n ?? 0;
      this.sql('INSERT INTO address_counters (network, next_index) VALUES (?, ?) ON CONFLICT (network) DO UPDATE SET next_index = excluded.next_index').run(counter, index + 1);
      const address = network === 'bitcoin' ? bitcoinAddress(rules.xpub!, index) : ethereumAddress(rules.xpub!, index);
      return { address, tag: null, index };
    })();
    this.sql('INSERT INTO deposit_addresses (user_id, asset, network, address, tag, derivation_index, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(userId, asset, network, made.address, made.tag, made.index, this.host.clock());
    return { asset, network, address: made.address, tag: made.tag };
  }

  /**
   * A chain notification: repeated and reordered ones are expected. The row of (network, txid,
   * output) is created once; the engine credit carries the same name as its key, so it applies
   * once even if this process dies between the credit and the row update.
   */
  observe(transfer: IncomingTransfer): void {
    const rules = this.rules.get(transfer.asset);
    if (rules === undefined || rules.network !== transfer.network) return;
    const now = this.host.clock();
    let row = this.sql('SELECT * FROM deposits WHERE network = ? AND txid = ? AND output = ?').get(transfer.network, transfer.txid, transfer.output) as DepositRow | undefined;
    if (row === undefined) {
      const owner = this.ownerOf(transfer.network, transfer.asset, transfer.address, transfer.tag);
      if (owner === undefined) return; // not ours, or a tag nobody has: left for the operator
      this.sql(`INSERT INTO deposits (network, txid, output, asset, user_id, address, tag, amount, confirmations, required, state, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 'detected', ?, ?) ON CONFLICT DO NOTHING`)
        .run(transfer.network, transfer.txid, transfer.output, transfer.asset, owner, transfer.address, transfer.tag, transfer.amount, rules.confirmations, now, now);
      row = this.sql('SELECT * FROM deposits WHERE network = ? AND txid = ? AND output = ?').get(transfer.network, transfer.txid, transfer.output) as DepositRow;
    }
    if (row.state === 'credited') {
      // Final for the ledger. A credit the chain later took back is an incident for the operator:
      // it is recorded once, never reversed automatically (the funds may have moved on).
      if (transfer.dropped && this.sql('SELECT 1 FROM audit WHERE action = \'credited_deposit_dropped\' AND subject = ?').get(`dep:${row.id}`) === undefined) {
        this.audit('chain', 'credited_deposit_dropped', `dep:${row.id}`, { network: row.network, txid: row.txid, output: row.output, amount: row.amount, userId: row.user_id });
        process.emitWarning(`deposit ${row.id} (${row.network} ${row.txid}:${row.output}) was credited and then dropped by a reorg`);
      }
      return;
    }
    const state = transfer.dropped ? 'dropped' : transfer.confirmations === 0 ? 'detected' : 'confirming';
    this.sql('UPDATE deposits SET confirmations = ?, state = ?, updated_at = ? WHERE id = ?').run(transfer.confirmations, state, now, row.id);
    const updated = { ...row, confirmations: transfer.confirmations, state } as DepositRow;
    this.emit({ type: 'deposit', userId: row.user_id, deposit: updated });
    if (!transfer.dropped && transfer.confirmations >= row.required && this.suspension(row.asset, 'deposits') === null) {
      // Not credited now (engine overloaded or closing): the next report of this output tries again.
      this.credit(updated).catch((error: Error) => process.emitWarning(`deposit ${row!.id}: ${error.message}`));
    }
  }

  private async credit(row: DepositRow): Promise<void> {
    const user = this.host.identity.user(row.user_id);
    if (user === undefined) return;
    const ack = await this.host.submit({ type: 'deposit', account: user.account, asset: row.asset, amount: row.amount, key: `dep:${row.network}:${row.txid}:${row.output}` });
    const refused = rejectionOf(ack.events);
    if (refused !== null && refused !== 'DUPLICATE_KEY') return;
    // Told once: two reports of the output may both have got here.
    if (this.sql('UPDATE deposits SET state = \'credited\', updated_at = ? WHERE id = ? AND state != \'credited\'').run(this.host.clock(), row.id).changes === 1) {
      this.emit({ type: 'deposit', userId: row.user_id, deposit: { ...row, state: 'credited' } });
    }
  }

  private ownerOf(network: Network, asset: string, address: string, tag: string | null): number | undefined {
    const rules = this.rules.get(asset)!;
    if (rules.sharedAddress !== null) {
      if (address !== rules.sharedAddress || tag === null || !/^\d{1,12}$/.test(tag)) return undefined;
      const row = this.sql('SELECT user_id FROM deposit_addresses WHERE network = ? AND address = ? AND tag = ? AND asset = ?').get(network, address, tag, asset) as { user_id: number } | undefined;
      return row?.user_id;
    }
    const row = this.sql('SELECT user_id FROM deposit_addresses WHERE network = ? AND address = ? LIMIT 1').get(network, address) as { user_id: number } | undefined;
    return row?.user_id;
  }

  deposits(userId: number, filter: { asset?: string; state?: string }, page: Page): DepositRow[] {
    const { sql, params } = pageClause(page);
    return this.sql(`SELECT * FROM deposits WHERE user_id = ? AND (? IS NULL OR asset = ?) AND (? IS NULL OR state = ?) ${sql}`)
      .all(userId, filter.asset ?? null, filter.asset ?? null, filter.state ?? null, filter.state ?? null, ...params) as DepositRow[];
  }

  /** Deposits seen but not credited yet, per asset (shown as pending, never spendable). */
  pending(userId: number): Map<string, number> {
    const rows = this.sql('SELECT asset, SUM(amount) AS total FROM deposits WHERE user_id = ? AND state IN (\'detected\', \'confirming\') GROUP BY asset').all(userId) as { asset: string; total: number }[];
    return new Map(rows.map((r) => [r.asset, r.total]));
  }

  depositReference(userId: number): string {
    return depositReference(userId);
  }

  /** An operator records an incoming bank transfer; the bank's own reference makes it apply once. */
  async recordFiatDeposit(input: { reference: string; asset: string; amount: number; bankReference: string; actor: string }): Promise<{ userId: number; created: boolean }> {
    const rules = this.rulesOf(input.asset);
    if (rules.rail === null) throw new FundingError(400, 'NOT_FIAT', `${input.asset} is not a bank asset`);
    const userId = userOfReference(input.reference);
    const user = userId === null ? undefined : this.host.identity.user(userId);
    if (user === undefined) throw new FundingError(400, 'INVALID_REFERENCE', 'the deposit reference does not name a user (check digits)');
    const now = this.host.clock();
    const inserted = this.sql('INSERT INTO fiat_deposits (bank_reference, user_id, asset, amount, reference, recorded_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
      .run(input.bankReference, user.id, input.asset, input.amount, input.reference, input.actor, now).changes === 1;
    const earlier = this.sql('SELECT user_id, asset, amount FROM fiat_deposits WHERE bank_reference = ?').get(input.bankReference) as { user_id: number; asset: string; amount: number };
    if (earlier.user_id !== user.id || earlier.asset !== input.asset || earlier.amount !== input.amount) {
      throw new FundingError(409, 'BANK_REFERENCE_USED', 'this bank reference was recorded with other details');
    }
    const ack = await this.host.submit({ type: 'deposit', account: user.account, asset: input.asset, amount: input.amount, key: `fiat:${input.bankReference}` });
    const refused = rejectionOf(ack.events);
    if (refused !== null && refused !== 'DUPLICATE_KEY') throw new FundingError(400, refused, 'the engine refused the credit');
    this.audit(input.actor, 'fiat_deposit', input.bankReference, { userId: user.id, asset: input.asset, amount: input.amount });
    return { userId: user.id, created: inserted };
  }

  // ---------------------------------------------------------------------------------------
  // Withdrawal destinations
  // ---------------------------------------------------------------------------------------

  allowAddress(user: UserRecord, input: { asset: string; address: string; tag?: string; label: string; code?: string }): AllowedAddressRow {
    const rules = this.rulesOf(input.asset);
    if (rules.network === null) throw new FundingError(400, 'FIAT_ASSET', 'bank withdrawals go to a bank account');
    this.checkDestination(rules, input.address, input.tag);
    this.requireTotpIfEnabled(user, input.code);
    const now = this.host.clock();
    const row: AllowedAddressRow = { user_id: user.id, asset: input.asset, address: input.address, tag: input.tag ?? '', label: input.label, created_at: now, usable_at: now + this.config.addressHoldMs };
    this.sql('INSERT INTO allowed_addresses (user_id, asset, address, tag, label, created_at, usable_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
      .run(row.user_id, row.asset, row.address, row.tag, row.label, row.created_at, row.usable_at);
    return this.sql('SELECT * FROM allowed_addresses WHERE user_id = ? AND asset = ? AND address = ? AND tag = ?').get(user.id, input.asset, input.address, row.tag) as AllowedAddressRow;
  }

  allowedAddresses(userId: number): AllowedAddressRow[] {
    return this.sql('SELECT * FROM allowed_addresses WHERE user_id = ? ORDER BY created_at').all(userId) as AllowedAddressRow[];
  }

  removeAllowedAddress(userId: number, asset: string, address: string, tag: string): boolean {
    return this.sql('DELETE FROM allowed_addresses WHERE user_id = ? AND asset = ? AND address = ? AND tag = ?').run(userId, asset, address, tag).changes === 1;
  }

  /** Password, 2FA or key changes: withdrawals wait out the hold, as a stolen session would want them not to. */
  credentialsChanged(userId: number): void {
    this.sql('INSERT INTO credential_changes (user_id, changed_at) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET changed_at = excluded.changed_at').run(userId, this.host.clock());
  }

  addBankAccount(user: UserRecord, input: { rail: Rail; holder: string; iban?: string; bic?: string; clabe?: string }): BankAccountRow {
    const details = checkBankDetails(input);
    if (typeof details === 'string') throw new FundingError(400, 'INVALID_BANK_ACCOUNT', details);
    const id = Number(this.sql('INSERT INTO bank_accounts (user_id, rail, holder, iban, bic, clabe, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(user.id, details.rail, details.holder, details.iban ?? null, details.bic ?? null, details.clabe ?? null, this.host.clock()).lastInsertRowid);
    return this.sql('SELECT * FROM bank_accounts WHERE id = ?').get(id) as BankAccountRow;
  }

  bankAccounts(userId: number): BankAccountRow[] {
    return this.sql('SELECT * FROM bank_accounts WHERE user_id = ? ORDER BY id').all(userId) as BankAccountRow[];
  }

  // ---------------------------------------------------------------------------------------
  // Withdrawals
  // ---------------------------------------------------------------------------------------

  /**
   * Creates a withdrawal and locks its amount plus fee. The same request key returns the first
   * withdrawal. Checks run and the row is written in one synchronous step, so that concurrent
   * requests see each other in the daily limit.
   */
  async requestWithdrawal(user: UserRecord, account: number, input: { asset: string; amount: number; address?: string; tag?: string; bankAccountId?: number; requestKey: string; code?: string }): Promise<WithdrawalRow> {
    const earlier = this.sql('SELECT * FROM withdrawals WHERE user_id = ? AND request_key = ?').get(user.id, input.requestKey) as WithdrawalRow | undefined;
    if (earlier !== undefined) {
      if (earlier.state === 'rejected' && earlier.reason === 'INSUFFICIENT_BALANCE') throw insufficient();
      return earlier;
    }
    const rules = this.rulesOf(input.asset);
    const now = this.host.clock();
    this.requireKycForMoneyOut(user, 'withdrawals');
    const suspended = this.suspension(input.asset, 'withdrawals');
    if (suspended !== null) throw new FundingError(503, 'WITHDRAWALS_SUSPENDED', `${input.asset} withdrawals are suspended: ${suspended.reason}`);
    if (input.amount < rules.minWithdrawal) throw new FundingError(400, 'BELOW_MINIMUM', `the minimum withdrawal is ${formatMinor(rules.minWithdrawal, rules.precision)} ${rules.asset}`);
    let kind: 'crypto' | 'fiat';
    if (rules.network !== null) {
      if (input.address === undefined || input.bankAccountId !== undefined) throw new FundingError(400, 'INVALID_DESTINATION', `${input.asset} is withdrawn to an address`);
      this.checkDestination(rules, input.address, input.tag);
      const allowed = this.sql('SELECT usable_at FROM allowed_addresses WHERE user_id = ? AND asset = ? AND address = ? AND tag = ?').get(user.id, input.asset, input.address, input.tag ?? '') as { usable_at: number } | undefined;
      if (allowed === undefined) throw new FundingError(403, 'ADDRESS_NOT_ALLOWED', 'add the address to your withdrawal allow-list first');
      if (allowed.usable_at > now) throw new FundingError(403, 'ADDRESS_ON_HOLD', `the address can be used from ${new Date(allowed.usable_at).toISOString()}`);
      kind = 'crypto';
    } else {
      const bank = input.bankAccountId === undefined ? undefined : this.sql('SELECT * FROM bank_accounts WHERE id = ? AND user_id = ?').get(input.bankAccountId, user.id) as BankAccountRow | undefined;
      if (bank === undefined) throw new FundingError(400, 'INVALID_DESTINATION', `${input.asset} is withdrawn to one of your bank accounts (bank_account_id)`);
      if (bank.rail !== rules.rail) throw new FundingError(400, 'INVALID_DESTINATION', `${input.asset} is paid by ${rules.rail?.toUpperCase()}, that account is ${bank.rail.toUpperCase()}`);
      kind = 'fiat';
    }
    const changed = this.sql('SELECT changed_at FROM credential_changes WHERE user_id = ?').get(user.id) as { changed_at: number } | undefined;
    if (changed !== undefined && changed.changed_at + this.config.addressHoldMs > now) {
      throw new FundingError(403, 'CREDENTIALS_HOLD', `withdrawals are held until ${new Date(changed.changed_at + this.config.addressHoldMs).toISOString()} after a credential change`);
    }
    let needs2fa = false;
    if (user.twoFactor) {
      if (input.code === undefined) needs2fa = true;
      else this.requireTotpIfEnabled(user, input.code);
    }
    const fee = rules.feeFixed + Number((BigInt(input.amount) * BigInt(rules.feePpm) + 999_999n) / 1_000_000n);
    const limit = dailyLimitOf(rules, user);
    const used = this.withdrawnWithinADay(user.id, input.asset, now);
    if (limit !== null && used + input.amount > limit) {
      const amount = (units: number) => `${formatMinor(units, rules.precision)} ${rules.asset}`;
      throw new FundingError(400, 'DAILY_LIMIT', `this withdrawal would exceed the 24 h limit of ${amount(limit)} for level ${user.level}: ${amount(Math.max(0, limit - used))} left`);
    }
    const needsReview = input.amount > rules.approvalAbove || input.amount > rules.hotWalletCap;
    const id = Number(this.sql(`INSERT INTO withdrawals (user_id, account, asset, amount, fee, kind, address, tag, bank_account_id, state, request_key, needs_2fa, needs_review, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'requested', ?, ?, ?, ?, ?)`).run(user.id, account, input.asset, input.amount, fee, kind, input.address ?? null, input.tag ?? null,
      input.bankAccountId ?? null, input.requestKey, needs2fa ? 1 : 0, needsReview ? 1 : 0, now, now).lastInsertRowid);
    this.crashPoint('after-request');
    try {
      await this.lock(this.withdrawal(id)!);
    } catch (error) {
      // The lock never reached the journal (queue full, server closing): the request did not happen.
      if (!this.host.engine.holds.has(`wd:${id}`)) this.setState(id, 'rejected', { reason: 'UNAVAILABLE' }, 'requested');
      throw error;
    }
    const row = this.withdrawal(id)!;
    if (row.state === 'rejected') throw row.reason === 'INSUFFICIENT_BALANCE' ? insufficient() : new FundingError(400, row.reason ?? 'REJECTED', 'the engine refused to lock the funds');
    this.kick();
    return row;
  }

  /** What the user has withdrawn of an asset in the 24 h before `now` (requests not failed, cancelled or rejected). */
  private withdrawnWithinADay(userId: number, asset: string, now: number): number {
    return (this.sql(`SELECT COALESCE(SUM(amount), 0) AS used FROM withdrawals WHERE user_id = ? AND asset = ? AND created_at > ?
      AND state NOT IN ('failed', 'cancelled', 'rejected')`).get(userId, asset, now - DAY_MS) as { used: number }).used;
  }

  /** For each asset, the user's 24 h withdrawal limit by their level (null: none) and how much of it the last 24 h used. */
  withdrawalAllowances(user: UserRecord): { rules: AssetRules; limit: number | null; used: number }[] {
    const now = this.host.clock();
    return this.assets().map((rules) => ({ rules, limit: dailyLimitOf(rules, user), used: this.withdrawnWithinADay(user.id, rules.asset, now) }));
  }

  /** The engine hold for a requested withdrawal; then the state its checks call for. */
  private async lock(row: WithdrawalRow): Promise<void> {
    const hold = `wd:${row.id}`;
    const existing = this.host.engine.holds.get(hold);
    if (existing === undefined) {
      const ack = await this.host.submit({ type: 'lock_funds', account: row.account, asset: row.asset, amount: row.amount + row.fee, hold });
      const refused = rejectionOf(ack.events);
      if (refused !== null && refused !== 'DUPLICATE_KEY') {
        this.setState(row.id, 'rejected', { reason: refused }, 'requested');
        return;
      }
    }
    this.crashPoint('after-lock');
    const next: WithdrawalState = row.needs_2fa === 1 ? 'awaiting_2fa' : row.needs_review === 1 ? 'review' : 'approved';
    this.setState(row.id, next, {}, 'requested');
  }

  async confirmWithdrawal(user: UserRecord, id: number, code: string): Promise<WithdrawalRow> {
    const row = this.ownWithdrawal(user.id, id);
    if (row.state !== 'awaiting_2fa') throw new FundingError(409, 'INVALID_STATE', `the withdrawal is ${row.state}`);
    this.requireTotpIfEnabled(user, code, true);
    this.setState(id, row.needs_review === 1 ? 'review' : 'approved', {}, 'awaiting_2fa');
    this.kick();
    return this.withdrawal(id)!;
  }

  async cancelWithdrawal(userId: number, id: number, actor = `user:${userId}`): Promise<WithdrawalRow> {
    const row = this.ownWithdrawal(userId, id);
    if (!['awaiting_2fa', 'review', 'approved'].includes(row.state)) throw new FundingError(409, 'INVALID_STATE', `a ${row.state} withdrawal cannot be cancelled`);
    // Claim the row first: once cancelled, the sender never picks it up.
    if (!this.setState(id, 'cancelled', {}, row.state)) throw new FundingError(409, 'INVALID_STATE', 'the withdrawal changed state meanwhile');
    await this.release(row);
    this.audit(actor, 'withdrawal_cancelled', `wd:${id}`, {});
    return this.withdrawal(id)!;
  }

  /**
   * The user was disabled: withdrawals not yet handed to the chain are cancelled and their funds
   * unlocked (a disabled user's money must not leave, whoever asked for it). The sender checks
   * again before each send, for a request whose lock was in progress meanwhile. Returns their ids.
   */
  async userDisabled(userId: number, actor: string): Promise<number[]> {
    const rows = this.sql(`SELECT * FROM withdrawals WHERE user_id = ? AND state IN ('awaiting_2fa', 'review', 'approved') ORDER BY id`).all(userId) as WithdrawalRow[];
    const cancelled: number[] = [];
    for (const row of rows) if (await this.cancelForDisabledUser(row, actor)) cancelled.push(row.id);
    return cancelled;
  }

  private async cancelForDisabledUser(row: WithdrawalRow, actor: string): Promise<boolean> {
    if (!this.setState(row.id, 'cancelled', { reason: 'USER_DISABLED' }, row.state)) return false;
    await this.release(row);
    this.audit(actor, 'withdrawal_cancelled', `wd:${row.id}`, { reason: 'USER_DISABLED' });
    return true;
  }

  async approve(id: number, actor: string): Promise<WithdrawalRow> {
    const row = this.withdrawal(id);
    if (row === undefined) throw new FundingError(404, 'UNKNOWN_WITHDRAWAL', `no withdrawal ${id}`);
    if (row.state !== 'review') throw new FundingError(409, 'INVALID_STATE', `the withdrawal is ${row.state}`);
    this.setState(id, 'approved', { approvedBy: actor }, 'review');
    this.audit(actor, 'withdrawal_approved', `wd:${id}`, { amount: row.amount, asset: row.asset });
    this.kick();
    return this.withdrawal(id)!;
  }

  async reject(id: number, actor: string, reason: string): Promise<WithdrawalRow> {
    const row = this.withdrawal(id);
    if (row === undefined) throw new FundingError(404, 'UNKNOWN_WITHDRAWAL', `no withdrawal ${id}`);
    if (row.state !== 'review' && row.state !== 'awaiting_2fa') throw new FundingError(409, 'INVALID_STATE', `the withdrawal is ${row.state}`);
    this.setState(id, 'rejected', { reason }, row.state);
    await this.release(row);
    this.audit(actor, 'withdrawal_rejected', `wd:${id}`, { reason });
    return this.withdrawal(id)!;
  }

  /**
   * An operator gives up on a withdrawal stuck before the chain took it (a node refusing the
   * payment, say): only when no send is in progress and the adapter has no transaction for it,
   * so that funds are never both unlocked and paid.
   */
  async failStuck(id: number, actor: string, reason: string): Promise<WithdrawalRow> {
    const row = this.withdrawal(id);
    if (row === undefined) throw new FundingError(404, 'UNKNOWN_WITHDRAWAL', `no withdrawal ${id}`);
    if (row.state !== 'sending' && row.state !== 'approved') throw new FundingError(409, 'INVALID_STATE', `the withdrawal is ${row.state}`);
    if (this.sending.has(id)) throw new FundingError(409, 'SEND_IN_PROGRESS', 'a send is in progress; try again');
    if (row.kind === 'crypto' && (await this.chain.sent(`wd:${id}`)) !== undefined) throw new FundingError(409, 'ALREADY_SENT', 'the chain has a transaction for this withdrawal');
    if (!this.setState(id, 'failed', { reason }, row.state)) throw new FundingError(409, 'INVALID_STATE', 'the withdrawal changed state meanwhile');
    await this.release(row);
    this.audit(actor, 'withdrawal_failed', `wd:${id}`, { reason });
    return this.withdrawal(id)!;
  }

  withdrawal(id: number): WithdrawalRow | undefined {
    return this.sql('SELECT * FROM withdrawals WHERE id = ?').get(id) as WithdrawalRow | undefined;
  }

  withdrawals(userId: number | null, filter: { asset?: string; state?: string }, page: Page): WithdrawalRow[] {
    const { sql, params } = pageClause(page);
    return this.sql(`SELECT * FROM withdrawals WHERE (? IS NULL OR user_id = ?) AND (? IS NULL OR asset = ?) AND (? IS NULL OR state = ?) ${sql}`)
      .all(userId, userId, filter.asset ?? null, filter.asset ?? null, filter.state ?? null, filter.state ?? null, ...params) as WithdrawalRow[];
  }

  auditTrail(subject: string): { ts: number; actor: string; action: string; detail: string }[] {
    return this.sql('SELECT ts, actor, action, detail FROM audit WHERE subject = ? ORDER BY id').all(subject) as { ts: number; actor: string; action: string; detail: string }[];
  }

  /**
   * On start: finishes what a crash interrupted. A withdrawal still `requested` gets its hold
   * (or finds it made), then the sender re-drives the rest.
   */
  async recover(): Promise<void> {
    const requested = this.sql('SELECT * FROM withdrawals WHERE state = \'requested\' ORDER BY id').all() as WithdrawalRow[];
    for (const row of requested) await this.lock(row);
    this.chain.catchUp();
    this.kick();
  }

  /** Why an asset's deposits or withdrawals are suspended, since when and by whom; null when they are not. */
  suspension(asset: string, kind: FundingDirection): { reason: string; since: number; actor: string } | null {
    return (this.sql('SELECT reason, since, actor FROM suspensions WHERE asset = ? AND kind = ?').get(asset, kind) as { reason: string; since: number; actor: string } | undefined) ?? null;
  }

  /**
   * Suspends an asset's deposits or withdrawals (a wallet or network in maintenance). Withdrawals:
   * new requests are refused with the reason; approved ones not yet handed to the chain wait;
   * those already sent finish. Deposits: no deposit address is handed out, and what arrives meanwhile
   * is followed on the chain but credited only once resumed.
   */
  suspend(asset: string, kind: FundingDirection, reason: string, actor: string): void {
    this.rulesOf(asset);
    this.sql('INSERT INTO suspensions (asset, kind, reason, since, actor) VALUES (?, ?, ?, ?, ?) ON CONFLICT (asset, kind) DO UPDATE SET reason = excluded.reason')
      .run(asset, kind, reason, this.host.clock(), actor);
    this.audit(actor, `${kind}_suspended`, `asset:${asset}`, { reason });
  }

  /** Lifts a suspension: the withdrawals that waited are sent, the deposits that waited credited. False if there was none. */
  async resume(asset: string, kind: FundingDirection, actor: string): Promise<boolean> {
    this.rulesOf(asset);
    if (this.sql('DELETE FROM suspensions WHERE asset = ? AND kind = ?').run(asset, kind).changes === 0) return false;
    this.audit(actor, `${kind}_resumed`, `asset:${asset}`, {});
    if (kind === 'withdrawals') {
      this.kick();
    } else {
      const waiting = this.sql("SELECT * FROM deposits WHERE asset = ? AND state = 'confirming' AND confirmations >= required ORDER BY id").all(asset) as DepositRow[];
      for (const row of waiting) await this.credit(row);
    }
    return true;
  }

  /** Re-drives every approved withdrawal that is not final (after each change). */
  kick(): void {
    if (this.driving) {
      this.redrive = true;
      return;
    }
    this.driving = true;
    void this.drive().catch((error: Error) => process.emitWarning(`withdrawals: ${error.message}`)).finally(() => {
      this.driving = false;
      if (this.redrive) {
        this.redrive = false;
        this.kick();
      }
    });
  }

  private async drive(): Promise<void> {
    const open = this.sql(`SELECT * FROM withdrawals WHERE state IN ('approved', 'sending', 'sent') ORDER BY id`).all() as WithdrawalRow[];
    for (const row of open) {
      try {
        await this.pay(row);
      } catch (error) {
        // A chain node or engine that is briefly unavailable: the row keeps its state; try again soon.
        process.emitWarning(`withdrawal ${row.id}: ${(error as Error).message}`);
        setTimeout(() => this.kick(), RETRY_MS).unref();
      }
    }
  }

  private async pay(row: WithdrawalRow): Promise<void> {
    const hold = this.host.engine.holds.get(`wd:${row.id}`);
    if (row.state === 'approved') {
      if (hold === undefined || hold.state !== 'locked') {
        this.setState(row.id, 'failed', { reason: 'NO_HOLD' }, 'approved');
        return;
      }
      if ((this.host.identity.user(row.user_id)?.disabledAt ?? null) !== null) {
        await this.cancelForDisabledUser(row, 'system');
        return;
      }
      // Suspended: it waits, approved and locked, until the operator resumes the asset.
      if (this.suspension(row.asset, 'withdrawals') !== null) return;
      if (!this.setState(row.id, 'sending', {}, 'approved')) return;
      this.crashPoint('after-sending');
      row = this.withdrawal(row.id)!;
    }
    if (row.state === 'sending') {
      let txid: string;
      if (row.kind === 'fiat') {
        txid = `${this.rulesOf(row.asset).rail}:wd:${row.id}`;
      } else {
        // The adapter keeps one transaction per id, so asking again after a crash never pays twice.
        this.sending.add(row.id);
        try {
          const sent = (await this.chain.sent(`wd:${row.id}`)) ?? await this.chain.send({
            id: `wd:${row.id}`, network: this.rulesOf(row.asset).network!, asset: row.asset, address: row.address!, tag: row.tag, amount: row.amount,
          });
          txid = sent.txid;
        } finally {
          this.sending.delete(row.id);
        }
      }
      this.crashPoint('after-send');
      this.setState(row.id, 'sent', { txid }, 'sending');
      row = this.withdrawal(row.id)!;
    }
    if (row.state === 'sent') {
      const ack = await this.host.submit({ type: 'settle_funds', hold: `wd:${row.id}`, fee: row.fee });
      const refused = rejectionOf(ack.events);
      if (refused !== null && refused !== 'DUPLICATE_KEY') throw new Error(`settle refused: ${refused}`);
      this.crashPoint('after-settle');
      this.setState(row.id, 'completed', {}, 'sent');
    }
  }

  private async release(row: WithdrawalRow): Promise<void> {
    const hold = this.host.engine.holds.get(`wd:${row.id}`);
    if (hold === undefined || hold.state !== 'locked') return;
    const ack = await this.host.submit({ type: 'unlock_funds', hold: `wd:${row.id}` });
    const refused = rejectionOf(ack.events);
    if (refused !== null && refused !== 'DUPLICATE_KEY') throw new Error(`unlock refused: ${refused}`);
  }

  /** Changes state only from `from` (when given): a compare-and-set, so that two paths never both act. */
  private setState(id: number, state: WithdrawalState, extra: { reason?: string; txid?: string; approvedBy?: string }, from?: WithdrawalState): boolean {
    const changed = this.sql(`UPDATE withdrawals SET state = ?, reason = COALESCE(?, reason), txid = COALESCE(?, txid), approved_by = COALESCE(?, approved_by), updated_at = ?
      WHERE id = ? AND (? IS NULL OR state = ?)`).run(state, extra.reason ?? null, extra.txid ?? null, extra.approvedBy ?? null, this.host.clock(), id, from ?? null, from ?? null).changes === 1;
    if (changed) {
      const row = this.withdrawal(id)!;
      this.emit({ type: 'withdrawal', userId: row.user_id, withdrawal: row, from: from ?? null });
    }
    return changed;
  }

  private ownWithdrawal(userId: number, id: number): WithdrawalRow {
    const row = this.withdrawal(id);
    if (row === undefined || row.user_id !== userId) throw new FundingError(404, 'UNKNOWN_WITHDRAWAL', `no withdrawal ${id}`);
    return row;
  }

  // ---------------------------------------------------------------------------------------
  // Transfers
  // ---------------------------------------------------------------------------------------

  /**
   * Between two of the user's own accounts, or to another user's main account by email ("pay"):
   * instant, free, atomic (one engine command), once per request key.
   */
  async transfer(from: UserRecord, fromAccount: number, input: { toEmail?: string; toAccount?: number; asset: string; amount: number; requestKey: string }): Promise<TransferRow & { created: boolean }> {
    let to: UserRecord | undefined;
    let toAccount: number;
    if (input.toAccount !== undefined) {
      if (input.toEmail !== undefined) throw new FundingError(400, 'INVALID_REQUEST', 'give to_email or to_account, not both');
      if (!this.host.identity.accountsOf(from.id).some((a) => a.id === input.toAccount)) throw new FundingError(404, 'UNKNOWN_ACCOUNT', 'to_account must be one of your accounts');
      to = from;
      toAccount = input.toAccount;
    } else {
      // Money to another user leaves this one as a withdrawal does (to be withdrawn by the other).
      this.requireKycForMoneyOut(from, 'transfers to another user');
      to = input.toEmail === undefined ? undefined : this.host.identity.userByEmail(input.toEmail);
      if (to === undefined) throw new FundingError(404, 'UNKNOWN_RECIPIENT', 'no user with that email');
      toAccount = to.account;
    }
    if (toAccount === fromAccount) throw new FundingError(400, 'SAME_ACCOUNT', 'cannot transfer to the same account');
    if (!this.host.engine.assets.has(input.asset)) throw new FundingError(404, 'UNKNOWN_ASSET', `unknown asset ${input.asset}`);
    const earlier = this.sql('SELECT * FROM transfers WHERE from_user = ? AND request_key = ?').get(from.id, input.requestKey) as TransferRow | undefined;
    if (earlier !== undefined) return { ...earlier, created: false };
    const ack = await this.host.submit({ type: 'transfer', from: fromAccount, to: toAccount, asset: input.asset, amount: input.amount, key: `xfer:${from.id}:${input.requestKey}` });
    const refused = rejectionOf(ack.events);
    if (refused !== null && refused !== 'DUPLICATE_KEY') throw new FundingError(400, refused, refused === 'INSUFFICIENT_BALANCE' ? 'not enough available balance' : 'the transfer was refused');
    // The engine key makes a retry after a crash between the command and this row apply once.
    this.sql('INSERT INTO transfers (from_user, from_account, to_user, to_account, asset, amount, request_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
      .run(from.id, fromAccount, to.id, toAccount, input.asset, input.amount, input.requestKey, this.host.clock());
    const row = this.sql('SELECT * FROM transfers WHERE from_user = ? AND request_key = ?').get(from.id, input.requestKey) as TransferRow;
    return { ...row, created: refused === null };
  }

  private requireKycForMoneyOut(user: UserRecord, what: string): void {
    if (this.config.withdrawalsNeedKyc === true && user.kyc !== 'OK') {
      throw new FundingError(403, 'KYC_REQUIRED', `${what} need a verified identity (KYC OK); this account's KYC is ${user.kyc}`);
    }
  }

  transfers(userId: number, page: Page): TransferRow[] {
    const { sql, params } = pageClause(page);
    return this.sql(`SELECT * FROM transfers WHERE (from_user = ? OR to_user = ?) ${sql}`).all(userId, userId, ...params) as TransferRow[];
  }

  // ---------------------------------------------------------------------------------------

  private checkDestination(rules: AssetRules, address: string, tag: string | undefined): void {
    const problem = addressProblem(rules.network!, address);
    if (problem !== null) throw new FundingError(400, 'INVALID_ADDRESS', problem);
    if (rules.tag !== null && tag !== undefined) {
      const tagError = tagProblem(rules.tag, tag);
      if (tagError !== null) throw new FundingError(400, 'INVALID_TAG', tagError);
    } else if (rules.tag === null && tag !== undefined) {
      throw new FundingError(400, 'INVALID_TAG', `${rules.asset} takes no tag or memo`);
    }
  }

  private requireTotpIfEnabled(user: UserRecord, code: string | undefined, always = false): void {
    if (!user.twoFactor && !always) return;
    if (code === undefined) throw new FundingError(401, 'TOTP_REQUIRED', 'a two-factor code is required');
    if (!/^\d{6}$/.test(code) || !this.host.identity.verifyTotp(user.id, code, this.host.clock())) {
      throw new FundingError(401, 'INVALID_TOTP', 'the two-factor code is wrong or was used already');
    }
  }

  private audit(actor: string, action: string, subject: string, detail: unknown): void {
    this.sql('INSERT INTO audit (ts, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)').run(this.host.clock(), actor, action, subject, JSON.stringify(detail));
  }

  private emit(event: FundingEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private crashPoint(step: string): void {
    if (this.crashAt === step) process.kill(process.pid, 'SIGKILL');
  }

  private compile(config: FundingAssetConfig): AssetRules {
    const asset = this.host.engine.assets.get(config.asset);
    if (asset === undefined) throw new Error(`funding: asset ${config.asset} is not configured`);
    const p = asset.precision;
    const minor = (value: string | undefined, field: string, fallback: number): number => (value === undefined ? fallback : parseMinorNumber(value, p, { field: `${config.asset}.${field}` }));
    if ((config.network === undefined) === (config.rail === undefined)) throw new Error(`funding: ${config.asset} needs exactly one of network or rail`);
    if (config.network !== undefined && (config.xpub === undefined) === (config.sharedAddress === undefined)) throw new Error(`funding: ${config.asset} needs an xpub or a sharedAddress`);
    if (config.sharedAddress !== undefined && config.tag === undefined) throw new Error(`funding: ${config.asset} has a shared address, so it needs a tag kind`);
    return {
      asset: config.asset, precision: p, network: config.network ?? null, rail: config.rail ?? null, tag: config.tag ?? null,
      sharedAddress: config.sharedAddress ?? null, xpub: config.xpub === undefined ? null : parseExtendedKey(config.xpub),
      confirmations: config.confirmations ?? 1, minWithdrawal: minor(config.minWithdrawal, 'minWithdrawal', 1),
      feeFixed: minor(config.withdrawalFee, 'withdrawalFee', 0),
      feePpm: config.withdrawalFeePercent === undefined ? 0 : parseMinorNumber(config.withdrawalFeePercent, 6, { field: `${config.asset}.withdrawalFeePercent` }),
      dailyLimits: (config.dailyLimits ?? []).map((l, i) => minor(l, `dailyLimits[${i}]`, 0)),
      approvalAbove: minor(config.approvalAbove, 'approvalAbove', Number.MAX_SAFE_INTEGER),
      hotWalletCap: minor(config.hotWalletCap, 'hotWalletCap', Number.MAX_SAFE_INTEGER),
    };
  }
}

function insufficient(): FundingError {
  return new FundingError(400, 'INSUFFICIENT_BALANCE', 'not enough available balance for the amount plus the fee');
}

function rejectionOf(events: EngineEvent[]): string | null {
  const rejected = events.find((e) => e.type === 'command_rejected');
  return rejected === undefined ? null : (rejected as { reason: string }).reason;
}

/** A user's 24 h withdrawal limit of an asset: their level's, the highest level's beyond the list; null when the asset has none. */
function dailyLimitOf(rules: AssetRules, user: UserRecord): number | null {
  return rules.dailyLimits.length === 0 ? null : rules.dailyLimits[Math.min(user.level, rules.dailyLimits.length - 1)]!;
}

/** Which way funds move for a suspension. */
export type FundingDirection = 'deposits' | 'withdrawals';
