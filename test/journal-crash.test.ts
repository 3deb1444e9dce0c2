import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findViolations } from '../src/core/index.js';
import { recover, SqliteJournal } from '../src/journal/index.js';

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.js', import.meta.url));
const KILLS = Number(process.env.CRASH_KILLS ?? 24);
const DEPOSIT_ACCOUNT = 9;
const depositAmount = (index: number): number => 1 + (index % 1_000);

/** Runs the child until it has been acknowledging for `loadMs`, then SIGKILLs it; returns the acks it printed. */
function runAndKill(path: string, run: number, loadMs: number): Promise<{ acks: [number, string][]; readySeq: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, path, String(run)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acks: [number, string][] = [];
    let readySeq = -1;
    let partial = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const [word, seq, key] = line.split(' ');
        if (word === 'READY') {
          readySeq = Number(seq);
          setTimeout(() => child.kill('SIGKILL'), loadMs);
        } else if (word === 'ACK') {
          acks.push([Number(seq), key!]);
        }
      }
    });
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child ended by itself (code ${code}): ${stderr}`));
      else resolve({ acks, readySeq });
    });
  });
}

test(`no acknowledged command is lost or applied twice across ${KILLS} SIGKILLs under load, journaling inline and on the writer thread`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bourse-crash-'));
  const path = join(dir, 'journal.db');
  const acknowledged = new Map<number, string>();
  let totalAcks = 0;
  let snapshotRecoveries = 0;
  try {
    for (let run = 0; run < KILLS; run++) {
      const loadMs = 20 + Math.floor(Math.random() * 300);
      const { acks } = await runAndKill(path, run, loadMs);
      for (const [seq, key] of acks) acknowledged.set(seq, key);
      totalAcks += acks.length;

      const journal = new SqliteJournal(path);
      try {
        const applied = new Map<string, number>();
        const fromSnapshot = recover(journal);
        const fromGenesis = recover(journal, {
          ignoreSnapshots: true,
          onEvents: (_envelope, events) => {
            for (const e of events) if (e.type === 'deposited') applied.set(e.key, (applied.get(e.key) ?? 0) + 1);
          },
        });
        if (fromSnapshot.report.snapshotSeq > 0) snapshotRecoveries += 1;
        assert.equal(fromSnapshot.engine.stateHash(), fromGenesis.engine.stateHash(), `run ${run}: snapshot + tail = genesis replay`);
        assert.deepEqual(findViolations(fromSnapshot.engine), [], `run ${run}: invariants after recovery`);
        for (const [seq, key] of acknowledged) {
          const row = journal.row(seq);
          assert.ok(row, `run ${run}: acknowledged seq ${seq} is in the journal`);
          assert.equal((JSON.parse(row.command) as { key: string }).key, key, `run ${run}: seq ${seq} holds the acknowledged command`);
          assert.equal(applied.get(key), 1, `run ${run}: acknowledged deposit ${key} applied exactly once`);
        }
        let expected = 0;
        for (const [key, count] of applied) {
          assert.equal(count, 1, `deposit ${key} applied ${count} times`);
          const match = /^k\d+-(\d+)$/.exec(key);
          if (match) expected += depositAmount(Number(match[1]));
        }
        const balance = fromSnapshot.engine.balance(DEPOSIT_ACCOUNT, 'USD');
        assert.equal(balance.available + balance.reserved + balance.locked, expected, `run ${run}: deposit account holds each applied deposit once`);
      } finally {
        journal.close();
      }
    }
    console.log(`crash test: ${KILLS} kills, ${totalAcks} acknowledged deposits checked, ${snapshotRecoveries} restarts from a snapshot`);
    assert.ok(totalAcks > KILLS * 10, `the load was real: ${totalAcks} acknowledged deposits`);
    assert.ok(snapshotRecoveries > 0, 'some restarts recovered from a snapshot');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
