/**
 * Mail to users (confirmation codes, password resets, notices), built and sent with nodemailer.
 * With an SMTP server configured, mail goes there; without one (the embedded default) each
 * message is written whole, as an .eml file readable by any mail client, into DATA/outbox, so
 * that `npm start` needs no mail server and an operator can still see what was sent.
 *
 * Sending never holds up or fails the request that caused it: `send` returns at once, and a
 * failure is logged and counted. A lost mail costs the user a second request, never a wrong state.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { Transporter } from 'nodemailer';
import { freezeLines } from './account-mails.js';

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
  'confirm_email', 'already_registered', 'reset_password', 'password_changed', 'two_factor_reset', 'new_login',
  'withdrawal_requested', 'withdrawal_sent', 'withdrawal_stopped', 'deposit_credited', 'change_email', 'email_changed', 'account_frozen', 'api_key_created', 'withdrawal_address_added',
] as const;

/** What a mail is for: names its file in the outbox and its line in the metrics. */
export type MailPurpose = typeof PURPOSES[number];

/** `userId`: the user it is about, when `to` may no longer be their address (a change of address). */
export interface Mail { to: string; subject: string; text: string; purpose: MailPurpose; userId?: number }

/** Mails about something the user may not have done themselves: they carry a code that freezes the account. */
const WARNINGS: ReadonlySet<MailPurpose> = new Set<MailPurpose>(['new_login', 'withdrawal_requested', 'password_changed', 'email_changed', 'two_factor_reset', 'api_key_created', 'withdrawal_address_added']);

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

export interface MailCounts { sent: number; failed: number }

export class Mailer {
  private readonly transport: Transporter;
  private readonly pending = new Set<Promise<void>>();
  private written = 0;
  readonly counts = Object.fromEntries(PURPOSES.map((p) => [p, { sent: 0, failed: 0 }])) as Record<MailPurpose, MailCounts>;

  /**
   * `outbox`: where messages go when no SMTP server is configured. `recipients` adds what the
   * user chose to see in every mail and, to warnings, a code to freeze the account, so that no
   * caller can leave either out.
   */
  constructor(
    readonly config: MailConfig, readonly outbox: string, private readonly log: MailLog = silent,
    private readonly recipients: Recipients = NO_RECIPIENTS, smtpPassword = process.env.BOURSE_SMTP_PASSWORD,
  ) {
    const { smtp } = config;
    this.transport = smtp === undefined
      ? nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' })
      : nodemailer.createTransport({
        host: smtp.host, port: smtp.port, secure: smtp.secure, requireTLS: smtp.requireTls,
        auth: smtp.user === undefined ? undefined : { user: smtp.user, pass: smtpPassword ?? '' },
        // A mail server that hangs must not pile up connections.
        connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000,
      });
  }

  /** Where mail goes: 'smtp://host:port' or the outbox folder. */
  get destination(): string {
    return this.config.smtp === undefined ? this.outbox : `smtp://${this.config.smtp.host}:${this.config.smtp.port}`;
  }

  /** Sends in the background (unless the user turned such mails off); returns at once. */
  send(mail: Mail): void {
    const group = groupOf(mail.purpose);
    if (group !== undefined && this.recipients.turnedOff(mail, group)) return;
    const done = this.deliver(mail).then(
      () => { this.counts[mail.purpose].sent += 1; },
      (error: unknown) => {
        this.counts[mail.purpose].failed += 1;
        this.log.error({ err: error, purpose: mail.purpose }, 'mail not sent');
      },
    ).finally(() => this.pending.delete(done));
    this.pending.add(done);
  }

  /** Resolves once every mail sent so far has been delivered or has failed. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /**
   * Waits for the mails under way, but no longer than `graceMs`: a mail server that hangs must not
   * hold up a shutdown (those still under way then fail, and are counted and logged so).
   */
  async close(graceMs = CLOSE_GRACE_MS): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.settled(), new Promise((resolve) => { timer = setTimeout(resolve, graceMs); })]);
    clearTimeout(timer);
    this.transport.close();
  }

  private async deliver(mail: Mail): Promise<void> {
    const antiPhishing = this.recipients.antiPhishing(mail);
    const freeze = WARNINGS.has(mail.purpose) ? this.recipients.freezeCode(mail) : null;
    const text = [
      ...(antiPhishing === null ? [] : [`Your anti-phishing code: ${antiPhishing}`, '']), mail.text,
      ...(freeze === null ? [] : ['', ...freezeLines(this.config, freeze)]),
    ].join('\n');
    const info = await this.transport.sendMail({ from: this.config.from, to: mail.to, subject: mail.subject, text }) as { message?: Buffer; messageId: string };
    if (this.config.smtp !== undefined) return;
    mkdirSync(this.outbox, { recursive: true, mode: 0o700 });
    this.written += 1;
    // Time first so that a listing sorts them in the order sent; the counter keeps one millisecond's apart.
    const name = `${new Date().toISOString().replaceAll(':', '')}-${String(this.written).padStart(6, '0')}-${mail.purpose}.eml`;
    // Codes in these files open accounts and reset passwords: owner only, like the rest of the folder.
    writeFileSync(join(this.outbox, name), info.message!, { mode: 0o600, flag: 'wx' });
    this.log.info({ purpose: mail.purpose, file: name }, 'mail written to the outbox');
  }
}

const CLOSE_GRACE_MS = 2_000;

const silent: MailLog = { info: () => undefined, error: () => undefined };
