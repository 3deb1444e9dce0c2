/**
 * Mail to users (confirmation codes, password resets, notices), built and sent with nodemailer.
 * With an SMTP server configured, mail goes there; without one (the embedded default) each
 * message is written whole, as an .eml file readable by any mail client, into DATA/outbox, so
 * that `npm start` needs no mail server and an operator can still see what was sent.
 *
 * Sending never holds up or fails the request that caused it: `send` writes the mail into the
 * queue (mail-queue.ts) and returns; the queue's workers deliver it, and try again with growing
 * pauses while the server is unreachable or answers with a temporary error (4xx), across restarts.
 * A permanent refusal (5xx), or a mail still undelivered after its last attempt, is given up on,
 * logged, counted, and kept for the operator to retry or drop.
 */
import { existsSync, mkdirSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { Transporter } from 'nodemailer';
import { freezeLines } from './account-mails.js';
import { MAIL_KEPT_MS } from './mail-queue.js';
import type { MailQueue, QueuedMail } from './mail-queue.js';

export interface SmtpConfig {
  host: string;
  port: number;
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  secure: boolean;
  /** Refuse to send unless the server upgrades the connection with STARTTLS. */
  requireTls: boolean;
  /** The login, if the server wants one; its password comes from BOURSE_SMTP_PASSWORD, never the config file. */
  user?: string;
}

export interface MailConfig {
  /** The sender, as users see it. */
  from: string;
  /** The venue's name in subjects and greetings. */
  venueName: string;
  /**
   * Where the venue's own pages live (e.g. https://exchange.example): mails then carry links
   * `${linkBase}/confirm-email?token=…` and `${linkBase}/reset-password?token=…`. Without it they
   * carry the code and the API call that takes it.
   */
  linkBase?: string;
  smtp?: SmtpConfig;
}

export const DEFAULT_MAIL: MailConfig = { from: 'Bourse <no-reply@localhost>', venueName: 'Bourse' };

const PURPOSES = [
  'confirm_email', 'already_registered', 'reset_password', 'password_changed', 'two_factor_reset', 'two_factor_enabled', 'new_login',
  'withdrawal_requested', 'withdrawal_sent', 'withdrawal_stopped', 'deposit_credited', 'change_email', 'email_changed', 'account_frozen', 'api_key_created', 'api_key_expiring', 'withdrawal_address_added', 'mail_test',
] as const;

/** What a mail is for: names its file in the outbox and its line in the metrics. */
export type MailPurpose = typeof PURPOSES[number];

/** `userId`: the user it is about, when `to` may no longer be their address (a change of address). */
export interface Mail { to: string; subject: string; text: string; purpose: MailPurpose; userId?: number }

/** Mails about something the user may not have done themselves: they carry a code that freezes the account. */
const WARNINGS: ReadonlySet<MailPurpose> = new Set<MailPurpose>(['new_login', 'withdrawal_requested', 'password_changed', 'email_changed', 'two_factor_reset', 'two_factor_enabled', 'api_key_created', 'withdrawal_address_added']);

/**
 * Mails a user may turn off, by group: news of their own money arriving or leaving as asked.
 * Warnings (a withdrawal asked for included) cannot be turned off.
 */
const MAIL_GROUPS = { deposits: ['deposit_credited'], withdrawals: ['withdrawal_sent', 'withdrawal_stopped'] } as const satisfies Record<string, readonly MailPurpose[]>;
export type MailGroup = keyof typeof MAIL_GROUPS;
export const MAIL_GROUP_NAMES = Object.keys(MAIL_GROUPS) as MailGroup[];

/** The group a purpose belongs to, if the user may turn it off. */
function groupOf(purpose: MailPurpose): MailGroup | undefined {
  return MAIL_GROUP_NAMES.find((group) => (MAIL_GROUPS[group] as readonly MailPurpose[]).includes(purpose));
}

/** What a mail gains from the user it goes to (the venue's identity store answers; no user: null). */
export interface Recipients {
  /** Whether the user has turned this group of mails off. */
  turnedOff(mail: Mail, group: MailGroup): boolean;
  /** The anti-phishing code the user chose to be shown in every mail to them. */
  antiPhishing(mail: Mail): string | null;
  /** A new code that freezes the user's account without logging in. */
  freezeCode(mail: Mail): string | null;
}

const NO_RECIPIENTS: Recipients = { turnedOff: () => false, antiPhishing: () => null, freezeCode: () => null };

export interface MailLog {
  info: (fields: object, message: string) => void;
  error: (fields: object, message: string) => void;
}

/** Since start: delivered, given up on, and attempts that failed and will be made again. */
export interface MailCounts { sent: number; failed: number; retried: number }

/** How the queue's workers try: the pause after the n-th failed attempt is firstDelayMs·2^(n−1), at most maxDelayMs. */
export interface RetryPolicy { firstDelayMs: number; maxDelayMs: number; attempts: number; workers: number }

/** Twelve attempts over about six hours; four mails under way at once, so that one slow mail does not hold up the rest. */
export const DEFAULT_RETRY: RetryPolicy = { firstDelayMs: 30_000, maxDelayMs: 3_600_000, attempts: 12, workers: 4 };

export class Mailer {
  private readonly transport: Transporter;
  private readonly busy = new Set<number>();
  private readonly workers = new Set<Promise<void>>();
  private wake: NodeJS.Timeout | undefined;
  private readonly pruning: NodeJS.Timeout | undefined;
  private closed = false;
  private pausedUntil = 0;
  private written = 0;
  private readonly retry: RetryPolicy;
  readonly counts = Object.fromEntries(PURPOSES.map((p) => [p, { sent: 0, failed: 0, retried: 0 }])) as Record<MailPurpose, MailCounts>;

  /**
   * `outbox`: where messages go when no SMTP server is configured. `recipients` adds what the
   * user chose to see in every mail and, to warnings, a code to freeze the account, so that no
   * caller can leave either out. Mails a previous run left in `queue` go out now.
   */
  constructor(
    readonly config: MailConfig, readonly outbox: string, readonly queue: MailQueue, private readonly log: MailLog = silent,
    private readonly recipients: Recipients = NO_RECIPIENTS,
    { smtpPassword = process.env.BOURSE_SMTP_PASSWORD, retry = DEFAULT_RETRY }: { smtpPassword?: string; retry?: RetryPolicy } = {},
  ) {
    const { smtp } = config;
    this.retry = retry;
    this.transport = smtp === undefined
      ? nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' })
      : nodemailer.createTransport({
        host: smtp.host, port: smtp.port, secure: smtp.secure, requireTLS: smtp.requireTls,
        auth: smtp.user === undefined ? undefined : { user: smtp.user, pass: smtpPassword ?? '' },
        // A mail server that hangs must not pile up connections.
        connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000,
        // One connection per worker, kept open for the next mail rather than a TCP and TLS
        // handshake (and a login) per mail; renewed after 100 mails.
        pool: true, maxConnections: retry.workers, maxMessages: 100,
      });
    if (smtp === undefined) {
      this.pruneOutbox(Date.now());
      this.pruning = setInterval(() => this.pruneOutbox(Date.now()), DAY_MS);
      this.pruning.unref();
    }
    this.pump();
  }

  /**
   * Deletes outbox files older than MAIL_KEPT_MS (as long as a mail given up on is kept): they
   * hold codes that have long expired, and without it a venue that writes mail to files fills its
   * disk. Returns how many went.
   */
  pruneOutbox(now: number): number {
    if (!existsSync(this.outbox)) return 0;
    let pruned = 0;
    for (const name of readdirSync(this.outbox)) {
      if (!name.endsWith('.eml')) continue;
      const file = join(this.outbox, name);
      try {
        if (now - statSync(file).mtimeMs < MAIL_KEPT_MS) continue;
        unlinkSync(file);
        pruned += 1;
      } catch (error) {
        this.log.error({ err: error, file }, 'an old outbox file could not be deleted');
      }
    }
    if (pruned > 0) this.log.info({ pruned, days: MAIL_KEPT_MS / DAY_MS }, 'old outbox files deleted');
    return pruned;
  }

  /** Where mail goes: 'smtp://host:port' or the outbox folder. */
  get destination(): string {
    return this.config.smtp === undefined ? this.outbox : `smtp://${this.config.smtp.host}:${this.config.smtp.port}`;
  }

  /** Queues the mail (unless the user turned such mails off) and returns; the queue's workers deliver it. */
  send(mail: Mail): void {
    const group = groupOf(mail.purpose);
    if (group !== undefined && this.recipients.turnedOff(mail, group)) return;
    const antiPhishing = this.recipients.antiPhishing(mail);
    const freeze = WARNINGS.has(mail.purpose) ? this.recipients.freezeCode(mail) : null;
    const text = [
      ...(antiPhishing === null ? [] : [`Your anti-phishing code: ${antiPhishing}`, '']), mail.text,
      ...(freeze === null ? [] : ['', ...freezeLines(this.config, freeze)]),
    ].join('\n');
    try {
      this.queue.add({ purpose: mail.purpose, to: mail.to, subject: mail.subject, text }, Date.now());
    } catch (error) {
      // The queue's disk is full or gone: the request that caused the mail still stands.
      this.counts[mail.purpose].failed += 1;
      this.log.error({ err: error, purpose: mail.purpose }, 'mail not queued');
      return;
    }
    this.pump();
  }

  /**
   * The operator's check of the mail settings: one mail to `to`, sent at once past the queue, and
   * what the server answered (or why it could not be reached), so that a wrong password or port
   * shows now instead of as mails given up on later.
   */
  async sendTest(to: string): Promise<{ sent: true; destination: string; answer: string } | { sent: false; destination: string; error: string }> {
    const text = `The operator of ${this.config.venueName} sent this to check the mail settings. Nothing else happened.`;
    try {
      const answer = await this.deliver({ purpose: 'mail_test', to, subject: `Test mail from ${this.config.venueName}`, text });
      return { sent: true, destination: this.destination, answer };
    } catch (error) {
      return { sent: false, destination: this.destination, error: errorText(error) };
    }
  }

  /** The operator puts a queued mail back in line now, its attempts counted afresh; false if there is no such mail. */
  requeue(id: number): boolean {
    const found = this.queue.retry(id, Date.now());
    if (found) this.pump();
    return found;
  }

  /** Resolves once no mail is under way and none is due: those waiting for a retry do not count. */
  async settled(): Promise<void> {
    while (this.workers.size > 0) await Promise.all([...this.workers]);
  }

  /**
   * Waits for the mails under way, but no longer than `graceMs`: a mail server that hangs must not
   * hold up a shutdown. Those still under way stay queued and go out after the next start.
   */
  async close(graceMs = CLOSE_GRACE_MS): Promise<void> {
    this.closed = true;
    clearTimeout(this.wake);
    clearInterval(this.pruning);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.settled(), new Promise((resolve) => { timer = setTimeout(resolve, graceMs); })]);
    clearTimeout(timer);
    this.transport.close();
    this.queue.close();
  }

  /** Starts workers up to the policy's number while mails are due; once none is, wakes for the next retry. */
  private pump(): void {
    if (this.closed) return;
    clearTimeout(this.wake);
    this.wake = undefined;
    while (this.workers.size < this.retry.workers) {
      const first = this.take();
      if (first === undefined) break;
      const worker: Promise<void> = this.work(first).finally(() => {
        this.workers.delete(worker);
        if (this.workers.size === 0) this.sleep();
      });
      this.workers.add(worker);
    }
    if (this.workers.size === 0) this.sleep();
  }

  /** The next mail due, if any. */
  private take(): QueuedMail | undefined {
    if (this.closed || !this.queue.isOpen || Date.now() < this.pausedUntil) return undefined;
    let mail: QueuedMail | undefined;
    try {
      mail = this.queue.nextDue(Date.now(), this.busy);
    } catch (error) {
      this.queueTrouble(error);
      return undefined;
    }
    if (mail !== undefined) this.busy.add(mail.id);
    return mail;
  }

  private async work(first: QueuedMail): Promise<void> {
    for (let mail: QueuedMail | undefined = first; mail !== undefined; mail = this.take()) {
      try {
        await this.attempt(mail);
      } catch (error) {
        this.queueTrouble(error);
        return;
      } finally {
        this.busy.delete(mail.id);
      }
    }
  }

  /**
   * The queue cannot be read or written (a full disk, a damaged file): logged, and the workers
   * pause, so that a mail whose failure could not be recorded is not tried again in a tight loop.
   */
  private queueTrouble(error: unknown): void {
    this.log.error({ err: error }, 'mail queue not readable or writable: sending paused');
    this.pausedUntil = Date.now() + QUEUE_TROUBLE_PAUSE_MS;
  }

  private sleep(): void {
    if (this.closed || !this.queue.isOpen || this.wake !== undefined) return;
    let next: number | null;
    try {
      next = this.queue.nextWake();
    } catch (error) {
      this.queueTrouble(error);
      next = this.pausedUntil;
    }
    if (next === null) return;
    next = Math.max(next, this.pausedUntil);
    this.wake = setTimeout(() => { this.wake = undefined; this.pump(); }, Math.max(0, next - Date.now()));
    this.wake.unref();
  }

  private async attempt(mail: QueuedMail): Promise<void> {
    const purpose = mail.purpose as MailPurpose;
    const counts = this.counts[purpose] ?? { sent: 0, failed: 0, retried: 0 };
    try {
      await this.deliver(mail);
    } catch (error) {
      // Closed meanwhile: the mail stays queued as it was, for the next start.
      if (!this.queue.isOpen) return;
      const now = Date.now();
      const attempts = mail.attempts + 1;
      const permanent = isPermanent(error);
      const next = permanent || attempts >= this.retry.attempts ? null : now + Math.min(this.retry.firstDelayMs * 2 ** (attempts - 1), this.retry.maxDelayMs);
      this.queue.attemptFailed(mail.id, errorText(error), next, now);
      if (next === null) {
        counts.failed += 1;
        this.log.error({ err: error, purpose, mail: mail.id, attempts }, permanent ? 'mail refused by the mail server: given up' : 'mail not sent after its last attempt: given up');
      } else {
        counts.retried += 1;
        this.log.info({ purpose, mail: mail.id, attempts, retry_at: new Date(next).toISOString(), reason: errorText(error) }, 'mail not sent yet: will try again');
      }
      return;
    }
    counts.sent += 1;
    if (this.queue.isOpen) this.queue.delivered(mail.id);
  }

  /** Sends; resolves with the SMTP server's answer, or the outbox file's name. */
  private async deliver(mail: Pick<QueuedMail, 'purpose' | 'to' | 'subject' | 'text'>): Promise<string> {
    const info = await this.transport.sendMail({ from: this.config.from, to: mail.to, subject: mail.subject, text: mail.text }) as { message?: Buffer; messageId: string; response?: string };
    if (this.config.smtp !== undefined) return info.response ?? '';
    mkdirSync(this.outbox, { recursive: true, mode: 0o700 });
    this.written += 1;
    // Time first so that a listing sorts them in the order sent; the counter keeps one millisecond's apart.
    const name = `${new Date().toISOString().replaceAll(':', '')}-${String(this.written).padStart(6, '0')}-${mail.purpose}.eml`;
    // Codes in these files open accounts and reset passwords: owner only, like the rest of the folder.
    writeFileSync(join(this.outbox, name), info.message!, { mode: 0o600, flag: 'wx' });
    this.log.info({ purpose: mail.purpose, file: name }, 'mail written to the outbox');
    return name;
  }
}

/** An SMTP 5xx answer: the server will refuse the same mail again (a 4xx, or no answer at all, may pass later). */
function isPermanent(error: unknown): boolean {
  const code = (error as { responseCode?: number }).responseCode;
  return typeof code === 'number' && code >= 500 && code < 600;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const CLOSE_GRACE_MS = 2_000;
const DAY_MS = 86_400_000;
const QUEUE_TROUBLE_PAUSE_MS = 10_000;

const silent: MailLog = { info: () => undefined, error: () => undefined };
