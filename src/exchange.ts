/**
 * One running venue: the sequencer (journal + engine), the identity store, the request
 * authenticator and the read-model projector, all under one data folder.
 *
 *   DATA/journal.db   commands (source of truth) and snapshots
 *   DATA/store.db     read model (rebuildable)
 *   DATA/identity.db  users and API keys (secrets sealed)
 *   DATA/funding.db   deposits, withdrawals, addresses, bank accounts (and the simulated chain)
 *   DATA/mail.db      mail to users not yet sent (opened by the server; not backed up: it is in flight)
 *   DATA/outbox/      mail written as .eml files when no SMTP server is configured
 *   DATA/master.key   key that seals API secrets (or BOURSE_MASTER_KEY)
 *   DATA/admin.token  bearer token of the admin API
 *   DATA/lock.db      held by the one process that has the folder open (FolderLock)
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RULES_VERSION } from './core/index.js';
import type { Command } from './core/index.js';
import { Authenticator, DEFAULT_AUTH_OPTIONS } from './identity/auth.js';
import type { AuthOptions } from './identity/auth.js';
import { loadMasterKey } from './identity/secrets.js';
import { IdentityStore } from './identity/store.js';
import type { SessionPolicy } from './identity/store.js';
import { AddressBlocks } from './identity/address-blocks.js';
import type { AccountRecord, ApiKeyRecord, UserRecord } from './identity/store.js';
import { FolderInUseError, FolderLock, makeFolder, recover, requireJournal, Sequencer, SNAPSHOT_EVERY, SNAPSHOTS_KEPT, SqliteJournal } from './journal/index.js';
import type { Acknowledgement, BeforeApply, Committed, Observed } from './journal/index.js';
import { OpenOrderTimes } from './store/open-order-times.js';
import { Projector } from './store/projector.js';
import { ProjectionThread } from './store/projection-thread.js';
import { SimulatedChain } from './funding/chains/simulated.js';
import { DEFAULT_FUNDING, DEMO_FUNDING } from './funding/config.js';
import type { FundingConfig } from './funding/config.js';
import { FundingService } from './funding/service.js';
import { LiabilityReports } from './funding/liabilities.js';
import { openFundingDb } from './funding/store.js';
import type Database from 'better-sqlite3';
import { DEMO_VENUE, venueCommands } from './config.js';
import type { Config } from './config.js';
import { backUp, BackupTargetError, newestBackup } from './backup.js';
import type { BackupMark, BackupReport } from './backup.js';

export interface ExchangeOptions {
  dataDir: string;
  demo?: boolean;
  /** Where backups go, each in a folder of its own (default DATA/backups; best on another disk). */
  backupDir?: string;
  /**
   * Commands between snapshots (default SNAPSHOT_EVERY). With the writer thread, the read-model
   * thread snapshots its replica of the engine, so that the engine thread never stops for one.
   */
  snapshotEvery?: number;
  /**
   * Check every invariant on the engine thread after this many commands (tests: 1, after every
   * batch). By default the read-model thread audits its replica of the engine instead, every
   * max(1,000, open orders) commands, so that the engine thread never stalls for a check linear
   * in the book; without that thread (writerThread false) the engine thread checks at that pace.
   */
  checkInvariantsEvery?: number;
  /** Journal on a writer thread (default true). */
  writerThread?: boolean;
  clock?: () => number;
  auth?: Partial<AuthOptions>;
  /** How long web sessions last, at most and unused (default a day and 30 minutes). */
  sessions?: SessionPolicy;
  /** Assets, markets and fee levels to create when missing. */
  venue?: Pick<Config, 'assets' | 'markets'> & Partial<Pick<Config, 'feeLevels'>>;
  /** Deposits and withdrawals (default: the demo's with --demo, none otherwise). */
  funding?: FundingConfig;
  /** Test hook: the funding step at which the process kills itself. */
  fundingCrashAt?: string;
  /** Test hook: the projection thread waits this long before each batch (a read model that lags). */
  projectionDelayMs?: number;
  /** How long a liabilities report waits for the read-model thread's balances before reading them here (default 10 s). */
  holdingsWaitMs?: number;
  /** Test hook: the projection thread breaks its replica's books after this seq (the audit must catch it). */
  projectionBreakAtSeq?: number;
  /** Test hook: the first projection thread fails on the batch holding this seq. */
  projectionFailAtSeq?: number;
  /** The first pause before a failed projection thread is restarted (default 1 s; doubles per failure in a row). */
  projectionRestartMs?: number;
  /**
   * How long to wait for another process to let go of the data folder before refusing to open it
   * (default 3 s: enough for a process killed a moment ago to be gone).
   */
  lockWaitMs?: number;
}

const REPLAY_CHUNK = 2_000;
/** How often the API key uses the authenticator gathers are written to the identity store. */
const KEY_USE_FLUSH_MS = 5_000;
/** How often keepDeadlines looks for an expiry or a dead man's switch that is due. */
const DEADLINE_CHECK_MS = 100;
const INVARIANTS_EVERY = 1_000;
const LOCK_WAIT_MS = 3_000;
/** A replica this far behind (a slow read-model disk, a stopped journal writer) is not waited for. */
const HOLDINGS_WAIT_MS = 10_000;

export class Exchange {
  private constructor(
    readonly dataDir: string,
    readonly sequencer: Sequencer,
    readonly identity: IdentityStore,
    readonly auth: Authenticator,
    readonly projector: Projector,
    /** When each open order was created and last changed (open-order answers need no read-model query). */
    readonly orderTimes: OpenOrderTimes,
    readonly adminToken: string,
    readonly clock: () => number,
    private readonly fundingDb: Database.Database,
    readonly chain: SimulatedChain,
    private readonly projection: ProjectionThread | null,
    private readonly lock: FolderLock,
    readonly backupDir: string,
  ) {
    this.addressBlocks = new AddressBlocks(identity, clock);
  }

  /** Addresses the operator has blocked: refused before anything else is done for them. */
  readonly addressBlocks: AddressBlocks;

  /** Resolves once the read model includes every command acknowledged so far (read your writes). */
  readModelCaughtUp(): Promise<void> {
    return this.projection === null ? Promise.resolve() : this.projection.reached(this.sequencer.lastSeq);
  }

  /** Runs `fn` once the read model includes `seq`. */
  afterProjected(seq: number, fn: () => void): void {
    if (this.projection === null) fn();
    else this.projection.after(seq, fn);
  }

  /** Why the read model stopped following the journal, or null. */
  get readModelFailure(): string | null {
    return this.projection?.failed ?? null;
  }

  private fundingValue: FundingService | null = null;
  private liabilitiesValue: LiabilityReports | null = null;
  private backupRunning = false;
  /** The newest complete backup (read from backupDir at start), and backups that failed since start. */
  lastBackup: BackupMark | null = null;
  backupFailures = 0;

  get funding(): FundingService {
    if (this.fundingValue === null) throw new Error('funding is not open');
    return this.fundingValue;
  }

  /** Proof-of-liabilities reports: what the exchange owes its users, as Merkle sum trees. */
  get liabilities(): LiabilityReports {
    if (this.liabilitiesValue === null) throw new Error('funding is not open');
    return this.liabilitiesValue;
  }

  static async open(options: ExchangeOptions): Promise<Exchange> {
    const { dataDir } = options;
    // The folder holds the master key, the admin token, password hashes and the journal: operator only.
    makeFolder(dataDir);
    // Before anything is read or written. Kept if opening fails below: threads it started may still
    // hold the journal, and the process that failed to open a venue exits anyway.
    const lock = await FolderLock.take(dataDir, options.lockWaitMs ?? LOCK_WAIT_MS);
    const identity = openIdentity(dataDir, options.sessions);
    const clock = options.clock ?? Date.now;
    // Whatever the previous run received, it received before now: from here on, a request signed
    // earlier may be one it already carried out (the replay cache did not survive the restart).
    const startedAt = clock();
    const projector = new Projector(join(dataDir, 'store.db'));
    let chunk: Committed[] = [];
    const writerThread = options.writerThread ?? true;
    const sequencer = Sequencer.open({
      path: join(dataDir, 'journal.db'),
      // Taken by the read-model thread's replica when there is one (a shutdown's is still taken here).
      snapshotEvery: writerThread ? 0 : options.snapshotEvery,
      checkInvariantsEvery: options.checkInvariantsEvery ?? (writerThread ? 0 : INVARIANTS_EVERY),
      writerThread,
      clock,
      onReplay: (envelope, events) => {
        if (envelope.seq <= projector.lastSeq) return;
        chunk.push({ envelope, events });
        if (chunk.length >= REPLAY_CHUNK) { projector.apply(chunk); chunk = []; }
      },
    });
    if (sequencer.recovery.snapshotSeq > projector.lastSeq) {
      // The projection is older than the snapshot recovery started from: rebuild it from genesis.
      projector.reset();
      chunk = [];
      recover(sequencer.journal, {
        ignoreSnapshots: true,
        onEvents: (envelope, events) => {
          chunk.push({ envelope, events });
          if (chunk.length >= REPLAY_CHUNK) { projector.apply(chunk); chunk = []; }
        },
      });
    }
    projector.apply(chunk);
    // From here the read model follows on its own thread (this connection only reads), or inline.
    // With the writer thread, it forwards durable batches to the projection thread.
    const projectionThread = !writerThread ? null
      : new ProjectionThread(join(dataDir, 'journal.db'), join(dataDir, 'store.db'), sequencer.lastSeq, (port) => sequencer.redirectForward(port), {
        restartMs: options.projectionRestartMs ?? 1_000, delayMs: options.projectionDelayMs ?? 0, failAtSeq: options.projectionFailAtSeq ?? 0,
        auditEvery: INVARIANTS_EVERY, snapshotEvery: options.snapshotEvery ?? SNAPSHOT_EVERY, snapshotsKept: SNAPSHOTS_KEPT, breakAtSeq: options.projectionBreakAtSeq ?? 0,
        onViolation: (message) => {
          process.emitWarning(`${message}; the exchange stops accepting commands`);
          sequencer.halt(new Error(message));
        },
      });
    if (projectionThread === null) sequencer.onBatch((batch) => projector.apply(batch));
    const orderTimes = OpenOrderTimes.seeded(sequencer.engine.orders.keys(), (id) => {
      const row = projector.order(id);
      return row === undefined ? undefined : { createdAt: row.created_at, updatedAt: row.updated_at };
    });
    sequencer.onCommitted((envelope, events) => orderTimes.apply(envelope.ts, events));

    const auth = new Authenticator(identity, { ...DEFAULT_AUTH_OPTIONS, ...options.auth, signedNotBefore: startedAt });
    const fundingDb = openFundingDb(join(dataDir, 'funding.db'));
    const exchange = new Exchange(dataDir, sequencer, identity, auth, projector, orderTimes, loadAdminToken(join(dataDir, 'admin.token')), clock, fundingDb, new SimulatedChain(fundingDb), projectionThread, lock, options.backupDir ?? join(dataDir, 'backups'));
    exchange.lastBackup = newestBackup(exchange.backupDir);
    // From here on the journal plays this build's rules; what came before replays under its own.
    if (sequencer.engine.rulesVersion < RULES_VERSION) await exchange.submit({ type: 'adopt_rules', version: RULES_VERSION });
    if (options.demo) await exchange.submitAll(venueCommands(DEMO_VENUE, sequencer.engine));
    if (options.venue !== undefined) await exchange.submitAll(venueCommands(options.venue, sequencer.engine));
    await exchange.reconcileUsers();
    const funding = options.funding ?? (options.demo ? DEMO_FUNDING : undefined);
    // Its recovery (what a crash interrupted) waits for the server: see buildServer.
    exchange.fundingValue = new FundingService(fundingDb, exchange, exchange.chain, funding ?? DEFAULT_FUNDING, options.fundingCrashAt ?? null);
    // A report's balances are read on the read-model thread's replica, so that trading does not
    // stop for them; here if there is no such thread, or it fails meanwhile.
    const holdings = projectionThread === null ? undefined
      : (assets: readonly string[]) => projectionThread.holdings(sequencer.lastSeq, assets, options.holdingsWaitMs ?? HOLDINGS_WAIT_MS)
        .catch(() => exchange.engine.userHoldings(assets));
    exchange.liabilitiesValue = new LiabilityReports(fundingDb, () => exchange.engine, identity.derivedKey('liability report salts'), clock, holdings);
    return exchange;
  }

  get engine() {
    return this.sequencer.engine;
  }

  /** Submits a command; resolves once it is durable and applied. With `before`, see BeforeApply. */
  submit(cmd: Command): Promise<Acknowledgement>;
  submit<T>(cmd: Command, before: BeforeApply<T>): Promise<Observed<T>>;
  submit<T>(cmd: Command, before?: BeforeApply<T>): Promise<Acknowledgement | Observed<T>> {
    return before === undefined ? this.sequencer.submit(cmd) : this.sequencer.submit(cmd, before);
  }

  private async submitAll(commands: Command[]): Promise<void> {
    const acks = await Promise.all(commands.map((cmd) => this.submit(cmd)));
    const refused = acks.flatMap((a) => a.events).find((e) => e.type === 'command_rejected');
    if (refused !== undefined) throw new Error(`setup refused: ${JSON.stringify(refused)}`);
  }

  /**
   * Backs the exchange up into the new folder `name` of backupDir while it keeps trading
   * (src/backup.ts); one backup at a time. Only the operator's configuration says where backups
   * may go: the admin API names a folder, never a path.
   */
  async backup(name: string): Promise<BackupReport> {
    if (this.backupRunning) throw new BackupTargetError('BACKUP_RUNNING', 'a backup is already running');
    this.backupRunning = true;
    try {
      const takenAt = this.clock();
      const report = await backUp({
        dataDir: this.dataDir, lastSeq: () => this.sequencer.lastSeq, copyIdentity: (to) => this.identity.copyTo(to), fundingDb: this.fundingDb,
      }, this.backupDir, name, takenAt);
      this.lastBackup = { takenAt, lastSeq: report.last_seq };
      return report;
    } catch (error) {
      if (!(error instanceof BackupTargetError)) this.backupFailures += 1;
      throw error;
    } finally {
      this.backupRunning = false;
    }
  }

  /** Creates a user (identity) and its engine user and account. */
  async createUser(email: string, password: string): Promise<UserRecord> {
    const user = await this.identity.createUser(email, password, this.clock());
    await this.reconcileUsers();
    return user;
  }

  /**
   * Every identity user has its engine user and account. Identity rows are written before the
   * engine commands, so a crash in between is repaired here on the next start.
   */
  async reconcileUsers(): Promise<void> {
    const missing: Command[] = [];
    for (const user of this.identity.users()) {
      if (!this.engine.users.has(user.id)) missing.push({ type: 'create_user', user: user.id, level: user.level });
      if (!this.engine.accounts.has(user.account)) missing.push({ type: 'create_account', account: user.account, user: user.id });
    }
    for (const account of this.identity.subAccounts()) {
      if (!this.engine.accounts.has(account.id)) missing.push({ type: 'create_account', account: account.id, user: account.userId });
    }
    for (const cmd of missing) await this.submit(cmd);
  }

  /** A further account of the user, created in the identity store and then in the engine. */
  async createSubAccount(userId: number, label: string): Promise<AccountRecord> {
    const account = this.identity.createSubAccount(userId, label, this.clock());
    await this.reconcileUsers();
    return account;
  }

  private readonly revocationListeners = new Set<(key: string, why: string) => void>();

  /** Called with each key that stops working, revoked or its user disabled, and why (open sockets authenticated with it are closed). */
  onKeyRevoked(listener: (key: string, why: string) => void): void {
    this.revocationListeners.add(listener);
  }

  /** Revokes a key; it stops working on the next request (the authenticator's cache is dropped). */
  revokeApiKey(userId: number, key: string): boolean {
    const revoked = this.identity.revokeApiKey(userId, key, this.clock());
    this.auth.forget(key);
    if (revoked) for (const listener of this.revocationListeners) listener(key, 'API key revoked');
    return revoked;
  }

  /**
   * Changes an active key's allow-list and label (ApiKeyRecord for what); sockets signed in with
   * it close, so that none stays open from an address the key no longer allows.
   */
  updateApiKey(userId: number, key: string, change: { ipAllow?: string[]; label?: string }): ApiKeyRecord | undefined {
    const updated = this.identity.updateApiKey(userId, key, change, this.clock());
    this.auth.forget(key);
    if (updated !== undefined && change.ipAllow !== undefined) for (const listener of this.revocationListeners) listener(key, 'API key changed');
    return updated;
  }

  /**
   * Disables a user (no login, no session, no key works; sockets signed in with their keys close;
   * withdrawals not yet sent are cancelled) or enables them again. Their orders and balances stay
   * as they are. `changed` is false if the user was already so.
   */
  async setUserDisabled(userId: number, disabled: boolean, actor: string): Promise<{ changed: boolean; withdrawalsCancelled: number[] }> {
    const changed = this.identity.setDisabled(userId, disabled ? this.clock() : null);
    for (const key of this.identity.apiKeysOf(userId)) {
      this.auth.forget(key.key);
      if (disabled && key.revokedAt === null) for (const listener of this.revocationListeners) listener(key.key, 'user disabled');
    }
    const withdrawalsCancelled = disabled ? await this.funding.userDisabled(userId, actor) : [];
    return { changed, withdrawalsCancelled };
  }

  /** A user's keys, with their last use as of now (uses are gathered in memory and written every few seconds). */
  apiKeysOf(userId: number): ReturnType<IdentityStore['apiKeysOf']> {
    this.auth.flushKeyUses();
    return this.identity.apiKeysOf(userId);
  }

  private deadlineTimer: NodeJS.Timeout | null = null;
  private keyUseTimer: NodeJS.Timeout | null = null;

  /**
   * Keeps the rules that wait on time punctual when no other command comes: every `everyMs`, if
   * an order's expiry or an account's dead man's switch is due, a tick command carries the
   * engine's time forward (the engine has no clock of its own). It also writes the API key uses
   * the authenticator gathers, every KEY_USE_FLUSH_MS. Stopped by close().
   */
  keepDeadlines(everyMs = DEADLINE_CHECK_MS): void {
    if (this.deadlineTimer !== null) return;
    let ticking = false;
    this.deadlineTimer = setInterval(() => {
      const due = this.engine.nextDueAt();
      if (ticking || due === null || due > this.clock()) return;
      ticking = true;
      this.submit({ type: 'tick' }).catch(() => undefined).finally(() => { ticking = false; });
    }, everyMs);
    this.deadlineTimer.unref();
    this.keyUseTimer = setInterval(() => this.flushKeyUses(), KEY_USE_FLUSH_MS);
    this.keyUseTimer.unref();
  }

  private flushKeyUses(): void {
    try {
      this.auth.flushKeyUses();
    } catch (error) {
      // A key's last use is for the user's information: a full disk must not fail anything else.
      process.emitWarning(`API key uses not recorded: ${(error as Error).message}`);
    }
  }

  close(): void {
    if (this.deadlineTimer !== null) clearInterval(this.deadlineTimer);
    if (this.keyUseTimer !== null) clearInterval(this.keyUseTimer);
    this.flushKeyUses();
    this.sequencer.close();
    this.projection?.close(this.sequencer.lastSeq);
    this.projector.close();
    this.identity.close();
    this.fundingDb.close();
    this.lock.release();
  }
}

/** Rebuilds the read model (DATA/store.db) from the journal; refused while a server has the folder open. */
export function rebuildReadModel(dataDir: string): { lastSeq: number; seconds: number } {
  requireJournal(dataDir);
  const lock = FolderLock.tryTake(dataDir);
  if (lock === null) throw new FolderInUseError(dataDir);
  try {
    return rebuildLocked(dataDir);
  } finally {
    lock.release();
  }
}

function rebuildLocked(dataDir: string): { lastSeq: number; seconds: number } {
  const started = process.hrtime.bigint();
  const projector = new Projector(join(dataDir, 'store.db'));
  const journal = new SqliteJournal(join(dataDir, 'journal.db'));
  try {
    projector.reset();
    let chunk: Committed[] = [];
    const result = recover(journal, {
      ignoreSnapshots: true,
      onEvents: (envelope, events) => {
        chunk.push({ envelope, events });
        if (chunk.length >= REPLAY_CHUNK) { projector.apply(chunk); chunk = []; }
      },
    });
    projector.apply(chunk);
    return { lastSeq: result.report.lastSeq, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    journal.close();
    projector.close();
  }
}

/** The identity store, refused (before anything else starts) if the master key does not open its secrets. */
function openIdentity(dataDir: string, sessions?: SessionPolicy): IdentityStore {
  const masterKeyFile = join(dataDir, 'master.key');
  const masterKey = loadMasterKey(masterKeyFile);
  const identity = new IdentityStore(join(dataDir, 'identity.db'), masterKey.key, sessions);
  if (identity.masterKeyOpensSecrets()) return identity;
  identity.close();
  // Not left behind: a second start would otherwise meet the wrong key in the file.
  if (masterKey.created) rmSync(masterKeyFile);
  const remedy = masterKey.created
    ? `${masterKeyFile} was missing: put the original back (or set BOURSE_MASTER_KEY to it)`
    : `restore the key they were sealed with in ${masterKey.origin}`;
  throw new Error(`the API and two-factor secrets in ${join(dataDir, 'identity.db')} were sealed with another master key than ${masterKey.origin}; every signed request would fail, so the exchange does not start: ${remedy}`);
}

function loadAdminToken(path: string): string {
  if (!existsSync(path)) writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  return readFileSync(path, 'utf8').trim();
}
