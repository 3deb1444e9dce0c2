/**
 * One process at a time owns a data folder. Two servers on one folder would both append to the
 * journal (the second one's seqs collide with the first's, which then fails) and both project
 * into the same read model, so the second is refused before it touches anything.
 *
 * The lock is SQLite's own exclusive lock on DATA/lock.db, held for as long as the connection is
 * open. It is an OS lock (fcntl), so the kernel drops it when the process dies, SIGKILL included:
 * no stale lock file to clean up after a crash, and no PID that a later process may have reused.
 * Node has no flock of its own, and better-sqlite3 is already here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export class FolderInUseError extends Error {
  constructor(readonly dataDir: string) {
    super(`the data folder ${dataDir} is in use by another Bourse process${holderHint(dataDir)}: stop it first, or give this one another --data`);
  }
}

/** What the running server wrote about itself (bourse start's DATA/server.json), if anything. */
function holderHint(dataDir: string): string {
  try {
    const file = join(dataDir, 'server.json');
    if (!existsSync(file)) return '';
    const { pid, url } = JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown; url?: unknown };
    return typeof pid === 'number' && typeof url === 'string' ? ` (pid ${pid}, serving ${url})` : '';
  } catch {
    return '';
  }
}

const POLL_MS = 50;

export class FolderLock {
  private constructor(private db: Database.Database | null) {}

  /** The lock, or null while another connection (in this process or another) holds it. */
  static tryTake(dataDir: string): FolderLock | null {
    const db = new Database(join(dataDir, 'lock.db'), { timeout: 0 });
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = MEMORY');
      // In exclusive mode the first write takes the lock and keeps it until the connection closes.
      db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL)');
      db.prepare('DELETE FROM holder').run();
      db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
      return new FolderLock(db);
    } catch (error) {
      db.close();
      if ((error as { code?: string }).code === 'SQLITE_BUSY') return null;
      throw error;
    }
  }

  /**
   * Takes the lock, waiting up to waitMs for a holder that is going away (a process killed a
   * moment ago, or one finishing its graceful stop); then refuses with FolderInUseError.
   */
  static async take(dataDir: string, waitMs: number): Promise<FolderLock> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const lock = FolderLock.tryTake(dataDir);
      if (lock !== null) return lock;
      if (Date.now() >= deadline) throw new FolderInUseError(dataDir);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  release(): void {
    this.db?.close();
    this.db = null;
  }
}

/**
 * Throws unless DATA/journal.db exists: commands that read a venue (verify, rebuild) would
 * otherwise create an empty journal in a mistyped folder and report it sound.
 */
export function requireJournal(dataDir: string): void {
  if (!existsSync(join(dataDir, 'journal.db'))) throw new Error(`no journal in ${dataDir}: give the --data folder bourse start runs on`);
}
