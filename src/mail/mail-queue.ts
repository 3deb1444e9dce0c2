/**
 * Mails waiting to go out, in DATA/mail.db: a mail is written here before `send` returns and
 * removed only once the SMTP server (or the outbox) took it, so that a mail server that is down,
 * a restart or a crash of the process delays a warning instead of losing it. Delivery is at least once: a mail the
 * server took just before a crash, not yet removed here, goes out again after the restart.
 *
 * Subjects and texts carry codes that confirm addresses, reset passwords and freeze accounts, so
 * they are sealed (AES-256-GCM, under a key derived from the master key) and bound to their
 * recipient; the recipient and purpose stay readable for the operator's listing.
 */
import { existsSync, renameSync } from 'node:fs';
import Database from 'better-sqlite3';
import { seal, unseal } from '../identity/secrets.js';
import { statementCache } from '../store/statement-cache.js';
import type { Sql } from '../store/statement-cache.js';

export type QueuedState = 'pending' | 'failed';

export interface QueuedMail {
  id: number;
  purpose: string;
  to: string;
  subject: string;
  text: string;
  queuedAt: number;
  attempts: number;
  nextAt: number;
  lastError: string | null;
  state: QueuedState;
}

/** A queued mail as the operator lists it: no subject or text, which carry codes. */
export type QueuedMailSummary = Omit<QueuedMail, 'subject' | 'text'>;

interface Row {
  id: number; purpose: string; recipient: string; sealed: Buffer; queued_at: number; attempts: number; next_at: number; last_error: string | null; state: QueuedState;
}

/** Failed mails the operator never retried or dropped are pruned after this long (and outbox files, see Mailer). */
export const MAIL_KEPT_MS = 30 * 86_400_000;

export class MailQueue {
  private readonly db: Database.Database;
  private readonly sql: Sql;

  constructor(path: string, private readonly key: Buffer, now: number) {
    this.db = new Database(path);
    this.sql = statementCache(this.db);
    this.db.pragma('journal_mode = WAL');
    // Not FULL: the queue is written on the thread that serves orders, and a sync per mail would
    // stall it. In WAL mode NORMAL loses nothing when the process dies; a power cut can lose the
    // last mails queued.
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS queue (
        id INTEGER PRIMARY KEY,
        purpose TEXT NOT NULL,
        recipient TEXT NOT NULL,
        sealed BLOB NOT NULL,
        queued_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at INTEGER NOT NULL,
        last_error TEXT,
        state TEXT NOT NULL DEFAULT 'pending'
      );
      CREATE INDEX IF NOT EXISTS queue_due ON queue (state, next_at);
    `);
    this.db.prepare("DELETE FROM queue WHERE state = 'failed' AND next_at < ?").run(now - MAIL_KEPT_MS);
    // A restart is often the operator mending the mail settings: what waited is tried at once.
    this.db.prepare("UPDATE queue SET next_at = ? WHERE state = 'pending' AND next_at > ?").run(now, now);
  }

  get isOpen(): boolean {
    return this.db.open;
  }

  add(mail: { purpose: string; to: string; subject: string; text: string }, now: number): number {
    const sealed = seal(this.key, JSON.stringify({ subject: mail.subject, text: mail.text }), context(mail.purpose, mail.to));
    return Number(this.sql('INSERT INTO queue (purpose, recipient, sealed, queued_at, next_at) VALUES (?, ?, ?, ?, ?)')
      .run(mail.purpose, mail.to, sealed, now, now).lastInsertRowid);
  }

  /** The oldest pending mail due by `now` that is not among `busy` (those being delivered). */
  nextDue(now: number, busy: ReadonlySet<number>): QueuedMail | undefined {
    for (;;) {
      const rows = this.sql("SELECT * FROM queue WHERE state = 'pending' AND next_at <= ? ORDER BY id LIMIT ?").all(now, busy.size + 1) as Row[];
      const row = rows.find((r) => !busy.has(r.id));
      if (row === undefined) return undefined;
      try {
        return this.unsealed(row);
      } catch {
        // Sealed under another master key (a mail.db from elsewhere) or damaged: never sendable.
        this.attemptFailed(row.id, 'cannot be unsealed with this venue\'s master key', null, now);
      }
    }
  }

  /** When the next pending mail falls due (null: none waits). */
  nextWake(): number | null {
    return (this.sql("SELECT MIN(next_at) AS at FROM queue WHERE state = 'pending'").get() as { at: number | null }).at;
  }

  delivered(id: number): void {
    this.sql('DELETE FROM queue WHERE id = ?').run(id);
  }

  /** A failed attempt: tried again at `nextAt`, or, with null, given up on (kept for the operator). */
  attemptFailed(id: number, error: string, nextAt: number | null, now: number): void {
    this.sql('UPDATE queue SET attempts = attempts + 1, last_error = ?, next_at = ?, state = ? WHERE id = ?')
      .run(error.slice(0, 500), nextAt ?? now, nextAt === null ? 'failed' : 'pending', id);
  }

  /** Puts a mail back in line now, its attempts counted afresh; false if there is no such mail. */
  retry(id: number, now: number): boolean {
    return this.sql("UPDATE queue SET state = 'pending', attempts = 0, next_at = ? WHERE id = ?").run(now, id).changes === 1;
  }

  drop(id: number): boolean {
    return this.sql('DELETE FROM queue WHERE id = ?').run(id).changes === 1;
  }

  /** Oldest first; `to` narrows to one recipient (support's "the mail never came"). */
  list(filter: { state?: QueuedState; to?: string; limit: number }): QueuedMailSummary[] {
    const where = [...(filter.state === undefined ? [] : ['state = ?']), ...(filter.to === undefined ? [] : ['recipient = ?'])];
    const params = [...(filter.state === undefined ? [] : [filter.state]), ...(filter.to === undefined ? [] : [filter.to.trim().toLowerCase()])];
    const rows = this.sql(`SELECT * FROM queue ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`} ORDER BY id LIMIT ?`).all(...params, filter.limit) as Row[];
    return rows.map(summaryOf);
  }

  counts(): Record<QueuedState, number> {
    const counts: Record<QueuedState, number> = { pending: 0, failed: 0 };
    for (const row of this.sql('SELECT state, COUNT(*) AS n FROM queue GROUP BY state').all() as { state: QueuedState; n: number }[]) counts[row.state] = row.n;
    return counts;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private unsealed(row: Row): QueuedMail {
    const { subject, text } = JSON.parse(unseal(this.key, row.sealed, context(row.purpose, row.recipient))) as { subject: string; text: string };
    return { ...summaryOf(row), subject, text };
  }
}

function summaryOf(row: Row): QueuedMailSummary {
  return { id: row.id, purpose: row.purpose, to: row.recipient, queuedAt: row.queued_at, attempts: row.attempts, nextAt: row.next_at, lastError: row.last_error, state: row.state };
}

function context(purpose: string, to: string): string {
  return `mail:${purpose}:${to}`;
}

/**
 * Opens the queue. A file SQLite finds damaged is moved aside (`mail.db.broken-<ms>`, for the
 * operator) and an empty queue started: mail must not keep the venue from starting.
 */
export function openMailQueue(path: string, key: Buffer, now: number, log: { error: (fields: object, message: string) => void }): MailQueue {
  try {
    return new MailQueue(path, key, now);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== 'SQLITE_NOTADB' && code !== 'SQLITE_CORRUPT') throw error;
    const aside = `${path}.broken-${now}`;
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
    log.error({ err: error, moved_to: aside }, 'the mail queue was damaged: moved aside, an empty one started');
    return new MailQueue(path, key, now);
  }
}
