/**
 * A copy of the journal as it stood at one seq, for backups: a consistent snapshot of the file
 * (`VACUUM INTO`, from a read connection of its own while the writer goes on), then everything
 * after `lastSeq` taken out of the copy, so that it holds exactly what was acknowledged when the
 * backup's other files were copied. The work runs on a thread of its own: a large journal takes
 * seconds to copy, and the engine thread must not wait for it.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface JournalCopyRequest { source: string; dest: string; lastSeq: number }

/** Copies `source` into the new file `dest` as of `lastSeq`. */
export function copyJournalUpTo({ source, dest, lastSeq }: JournalCopyRequest): void {
  const from = new Database(source, { readonly: true, fileMustExist: true });
  try {
    from.prepare('VACUUM INTO ?').run(dest);
  } finally {
    from.close();
  }
  const copy = new Database(dest);
  try {
    const newest = (copy.prepare('SELECT MAX(seq) AS seq FROM journal').get() as { seq: number | null }).seq ?? 0;
    if (newest < lastSeq) throw new Error(`the journal ends at seq ${newest}, before ${lastSeq}`);
    // The triggers that keep the journal append-only stand aside for this one cut in the copy.
    const triggers = copy.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'journal'").all() as { name: string; sql: string }[];
    copy.transaction(() => {
      for (const { name } of triggers) copy.exec(`DROP TRIGGER "${name}"`);
      copy.prepare('DELETE FROM journal WHERE seq > ?').run(lastSeq);
      copy.prepare('DELETE FROM snapshots WHERE seq > ?').run(lastSeq);
      for (const { sql } of triggers) copy.exec(sql);
    })();
  } finally {
    copy.close();
  }
}

/** copyJournalUpTo on a worker thread. */
export function copyJournalInWorker(request: JournalCopyRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: request });
    worker.once('message', (reply: { error: string | null }) => {
      if (reply.error !== null) reject(new Error(reply.error));
      else resolve();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`journal copy thread exited (${code})`)));
  });
}

if (!isMainThread && (workerData as Partial<JournalCopyRequest> | null)?.dest !== undefined) {
  try {
    copyJournalUpTo(workerData as JournalCopyRequest);
    parentPort!.postMessage({ error: null });
  } catch (error) {
    parentPort!.postMessage({ error: error instanceof Error ? error.message : String(error) });
  }
}
