/**
 * A backup of a running exchange: the journal, the identity store and the funding store as they
 * stood at one instant, which is what a restore needs. Start-up already repairs any state a crash
 * can leave between those stores (identity rows before their engine commands, funding steps
 * re-driven from their rows and holds), and a backup taken at one instant is such a state.
 *
 * The identity and funding stores are written only by this thread, so copying both in one
 * synchronous step, and reading the last acknowledged seq in the same step, fixes the instant.
 * The journal, the large one, is then copied on a thread of its own and cut back to that seq.
 * The read model is left out: it is rebuilt from the journal on the first start. So is the master
 * key, which must be kept apart from the data and its backups.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { copyJournalInWorker } from './journal/journal-copy.js';
import { makeFolder } from './journal/make-folder.js';

export interface BackupSources {
  dataDir: string;
  /** The last acknowledged seq (everything up to it is durable). */
  lastSeq(): number;
  copyIdentity(path: string): void;
  fundingDb: Database.Database;
}

export interface BackupReport {
  path: string;
  last_seq: number;
  files: { name: string; bytes: number }[];
  seconds: number;
}

/** A backup refused before it began: a name it cannot use, a folder it cannot make, or one already running. */
export class BackupTargetError extends Error {
  constructor(readonly code: 'INVALID_BACKUP_NAME' | 'BACKUP_EXISTS' | 'BACKUP_DIR_UNUSABLE' | 'BACKUP_RUNNING', message: string) {
    super(message);
  }
}

/** The file that says a backup is complete, written last. */
export const BACKUP_MANIFEST = 'backup.json';

/** A backup's folder name: letters, digits, '.', '_' and '-', not starting with a dot. */
export const BACKUP_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/;

/** The default name of a backup taken at `ms`: 20261207T073500Z, say. */
export function backupName(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
}

/** Backs up into backupDir/name; `takenAt` (ms) goes into the manifest. */
export async function backUp(sources: BackupSources, backupDir: string, name: string, takenAt: number): Promise<BackupReport> {
  if (!BACKUP_NAME.test(name)) throw new BackupTargetError('INVALID_BACKUP_NAME', 'a backup name is 1 to 100 letters, digits, ".", "_" or "-", not starting with "."');
  const path = join(backupDir, name);
  if (existsSync(path)) throw new BackupTargetError('BACKUP_EXISTS', `there is already a backup ${name} in ${backupDir}`);
  const started = performance.now();
  try {
    makeFolder(backupDir);
    mkdirSync(path, { mode: 0o700 });
  } catch (error) {
    throw new BackupTargetError('BACKUP_DIR_UNUSABLE', `cannot make ${path}: ${(error as Error).message}`);
  }
  try {
    sources.copyIdentity(join(path, 'identity.db'));
    sources.fundingDb.prepare('VACUUM INTO ?').run(join(path, 'funding.db'));
    const lastSeq = sources.lastSeq();
    await copyJournalInWorker({ source: join(sources.dataDir, 'journal.db'), dest: join(path, 'journal.db'), lastSeq });
    const files = BACKED_UP.map((name) => ({ name, bytes: statSync(join(path, name)).size }));
    const report: BackupReport = { path, last_seq: lastSeq, files, seconds: Math.round(performance.now() - started) / 1000 };
    const manifest = { ...report, taken_at: new Date(takenAt).toISOString(), restore: 'bourse restore --from <this folder> --data <a new folder>, add the master key (master.key there or BOURSE_MASTER_KEY), then bourse start; the read model is rebuilt from the journal' };
    writeFileSync(join(path, BACKUP_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
    return report;
  } catch (error) {
    rmSync(path, { recursive: true, force: true });
    throw error;
  }
}

/** When the newest complete backup was taken and the seq it holds. */
export interface BackupMark { takenAt: number; lastSeq: number }

/** The newest complete backup in `backupDir` (one whose manifest was written), or null. */
export function newestBackup(backupDir: string): BackupMark | null {
  if (!existsSync(backupDir)) return null;
  let newest: BackupMark | null = null;
  for (const name of readdirSync(backupDir)) {
    const manifest = join(backupDir, name, BACKUP_MANIFEST);
    if (!existsSync(manifest)) continue;
    try {
      const { taken_at: takenAt, last_seq: lastSeq } = JSON.parse(readFileSync(manifest, 'utf8')) as { taken_at: string; last_seq: number };
      const mark = { takenAt: Date.parse(takenAt), lastSeq };
      if (Number.isFinite(mark.takenAt) && (newest === null || mark.takenAt > newest.takenAt)) newest = mark;
    } catch {
      // A manifest that cannot be read is not a backup to count on.
    }
  }
  return newest;
}

/** The stores a backup holds, in the order they are copied back. */
const BACKED_UP = ['journal.db', 'identity.db', 'funding.db'];

/**
 * Copies a backup into `dataDir`, which must be new or empty but for a master key put there
 * first: restoring into a used folder would leave its read model (store.db, newer than the
 * backup) beside the older journal. Returns the seq the backup holds, by its manifest.
 */
export function restoreBackup(from: string, dataDir: string): { lastSeq: number; files: string[] } {
  const manifest = join(from, BACKUP_MANIFEST);
  if (!existsSync(manifest)) throw new Error(`${from} is not a complete backup (no ${BACKUP_MANIFEST})`);
  const missing = BACKED_UP.filter((file) => !existsSync(join(from, file)));
  if (missing.length > 0) throw new Error(`${from} lacks ${missing.join(', ')}`);
  const present = existsSync(dataDir) ? readdirSync(dataDir).filter((file) => file !== 'master.key') : [];
  if (present.length > 0) throw new Error(`${dataDir} is not empty (${present.slice(0, 5).join(', ')}): restore into a new folder`);
  makeFolder(dataDir);
  for (const file of BACKED_UP) copyFileSync(join(from, file), join(dataDir, file));
  const { last_seq: lastSeq } = JSON.parse(readFileSync(manifest, 'utf8')) as { last_seq: number };
  return { lastSeq, files: BACKED_UP };
}
