#!/usr/bin/env node
/**
 * `bourse` command line.
 *
 *   bourse start  [--data DIR] [--demo] [--snapshot-every N]   run the exchange core on DIR/journal.db
 *   bourse verify [--data DIR]                                 check the whole journal and print a report
 *
 * The HTTP/WebSocket server and `bourse admin` arrive with the server (issue 3); until then
 * `start` recovers the engine, seeds the demo venue on a fresh journal, and runs the
 * sequencer until SIGTERM/SIGINT, when it commits what is queued, snapshots and closes.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { findViolations } from '../core/index.js';
import { recover, Sequencer, SqliteJournal } from '../journal/index.js';
import { demoCommands } from './demo.js';

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function start(dataDir: string, demo: boolean, snapshotEvery: number): Promise<void> {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'journal.db');
  const sequencer = Sequencer.open({ path, snapshotEvery });
  if (demo && sequencer.engine.marketList.length === 0) {
    for (const ack of await Promise.all(demoCommands().map((cmd) => sequencer.submit(cmd)))) {
      const rejected = ack.events.find((e) => e.type === 'command_rejected');
      if (rejected !== undefined) throw new Error(`demo setup refused: ${JSON.stringify(rejected)}`);
    }
  }
  const engine = sequencer.engine;
  // Expiries happen when a command's time passes them; a tick a second keeps Day/GTD orders honest.
  const ticker = setInterval(() => {
    if (engine.expiry.size > 0) sequencer.submit({ type: 'tick' }).catch(() => undefined);
  }, 1_000);
  const stop = (signal: string): void => {
    clearInterval(ticker);
    sequencer.flush();
    sequencer.snapshotNow();
    const lastSeq = sequencer.lastSeq;
    const stateHash = engine.stateHash();
    sequencer.close();
    print({ event: 'stopped', signal, lastSeq, stateHash });
    process.exit(0);
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  print({
    event: 'started', journal: path, lastSeq: sequencer.lastSeq, recovery: sequencer.recovery,
    markets: engine.marketList.map((m) => m.id), stateHash: engine.stateHash(),
  });
}

function verify(dataDir: string): void {
  const journal = new SqliteJournal(join(dataDir, 'journal.db'));
  try {
    const fromGenesis = recover(journal, { ignoreSnapshots: true });
    const fromSnapshot = recover(journal);
    const violations = findViolations(fromGenesis.engine);
    const report = {
      lastSeq: fromGenesis.report.lastSeq,
      stateHash: fromGenesis.engine.stateHash(),
      snapshotAgrees: fromSnapshot.engine.stateHash() === fromGenesis.engine.stateHash(),
      snapshotSeq: fromSnapshot.report.snapshotSeq,
      skippedSnapshots: fromSnapshot.report.skippedSnapshots,
      replaySeconds: fromGenesis.report.seconds,
      violations,
    };
    print(report);
    if (!report.snapshotAgrees || violations.length > 0) process.exitCode = 1;
  } finally {
    journal.close();
  }
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      data: { type: 'string', default: './data' },
      demo: { type: 'boolean', default: false },
      'snapshot-every': { type: 'string', default: '100000' },
    },
  });
  const dataDir = resolve(values.data);
  switch (positionals[0]) {
    case 'start': {
      const snapshotEvery = Number(values['snapshot-every']);
      if (!Number.isSafeInteger(snapshotEvery) || snapshotEvery <= 0) throw new Error('--snapshot-every must be a positive integer');
      return start(dataDir, values.demo, snapshotEvery);
    }
    case 'verify':
      return verify(dataDir);
    default:
      process.stderr.write('usage: bourse start [--data DIR] [--demo] [--snapshot-every N] | bourse verify [--data DIR]\n');
      process.exitCode = 2;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
