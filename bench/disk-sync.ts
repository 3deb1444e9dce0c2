/**
 * What a durable commit costs on this machine's disk, outside the server (`npm run bench:disk`):
 *
 *  - the journal's pattern: a WAL-mode SQLite database with synchronous=FULL, one transaction of
 *    24 rows of 250 bytes (an HTTP batch) every millisecond;
 *  - the same with a second process writing a growing read model beside it;
 *  - a raw 8 KiB write plus fsync, appending to a growing file and overwriting a preallocated one
 *    (the difference is the file system's own journal, which a growing file needs each time).
 *
 * Prints p50 / p90 / p99 in µs of each; BENCH_COMMITS sets how many (default 2,000).
 */
import { fork } from 'node:child_process';
import { fsyncSync, mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { percentile } from './http-load.js';

const COMMITS = Number(process.env.BENCH_COMMITS ?? 2_000);
const ROWS = 24;

function spin(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

function summary(name: string, micros: number[]): string {
  const sorted = Float64Array.from(micros).sort();
  return `${name.padEnd(58)} p50 ${percentile(sorted, 0.5).toFixed(0)}, p90 ${percentile(sorted, 0.9).toFixed(0)}, p99 ${percentile(sorted, 0.99).toFixed(0)} µs`;
}

function timed(run: () => void): number {
  const started = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - started) / 1_000;
}

function journalCommits(dir: string): number[] {
  const db = new Database(join(dir, 'journal.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE IF NOT EXISTS j (seq INTEGER PRIMARY KEY, ts INTEGER, cmd TEXT)');
  const insert = db.prepare('INSERT INTO j (ts, cmd) VALUES (?, ?)');
  const body = 'x'.repeat(250);
  const commit = db.transaction(() => {
    for (let i = 0; i < ROWS; i++) insert.run(Date.now(), body);
  });
  const micros: number[] = [];
  for (let k = 0; k < COMMITS; k++) {
    micros.push(timed(commit));
    spin(1);
  }
  db.close();
  return micros;
}

function rawSyncs(dir: string, preallocated: boolean): number[] {
  const path = join(dir, preallocated ? 'overwrite.bin' : 'append.bin');
  const fd = openSync(path, 'w+');
  const block = Buffer.alloc(8_192, 7);
  if (preallocated) {
    writeSync(fd, Buffer.alloc(COMMITS * block.length));
    fsyncSync(fd);
  }
  const micros: number[] = [];
  for (let k = 0; k < COMMITS; k++) {
    micros.push(timed(() => {
      writeSync(fd, block, 0, block.length, k * block.length);
      fsyncSync(fd);
    }));
    spin(1);
  }
  closeSync(fd);
  return micros;
}

/** The second process: a read model's inserts (two indexed tables, synchronous=NORMAL) until killed. */
function readModelWriter(dir: string): void {
  const db = new Database(join(dir, 'read-model.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE o (id INTEGER PRIMARY KEY, account TEXT, body TEXT); CREATE INDEX oa ON o (account, id);'
    + 'CREATE TABLE l (id INTEGER PRIMARY KEY, account TEXT, body TEXT); CREATE INDEX la ON l (account, id);');
  const order = db.prepare('INSERT INTO o (account, body) VALUES (?, ?)');
  const entry = db.prepare('INSERT INTO l (account, body) VALUES (?, ?)');
  const body = 'y'.repeat(200);
  let n = 0;
  const batch = db.transaction(() => {
    for (let i = 0; i < ROWS; i++, n++) {
      order.run(`a${n % 7}`, body);
      entry.run(`a${n % 7}`, body);
    }
  });
  const loop = (): void => {
    batch();
    setTimeout(loop, 1);
  };
  process.send?.('ready');
  loop();
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bourse-disk-'));
  try {
    console.log(`Durable commits on ${dir}'s disk, ${COMMITS} of each, one a millisecond`);
    console.log(summary(`journal: ${ROWS} rows per WAL commit, synchronous=FULL`, journalCommits(dir)));
    rmSync(join(dir, 'journal.db'), { force: true });
    rmSync(join(dir, 'journal.db-wal'), { force: true });
    rmSync(join(dir, 'journal.db-shm'), { force: true });
    const writer = fork(fileURLToPath(import.meta.url), ['read-model', dir], { stdio: 'inherit' });
    await new Promise((resolve) => writer.once('message', resolve));
    try {
      console.log(summary('journal, with a read model written beside it', journalCommits(dir)));
    } finally {
      writer.kill();
    }
    console.log(summary('raw 8 KiB write + fsync, appending to a growing file', rawSyncs(dir, false)));
    console.log(summary('raw 8 KiB write + fsync, overwriting a preallocated file', rawSyncs(dir, true)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'read-model') readModelWriter(process.argv[3]!);
else void main();
