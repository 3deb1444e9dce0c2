/**
 * One process at a time owns a data folder. Without the lock, a second `bourse start` on a folder
 * in use recovered the journal and appended after it, and the first server's next commit failed
 * on the journal's unique seq ("journal writer: UNIQUE constraint failed").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Exchange } from '../src/exchange.js';
import { FolderInUseError } from '../src/journal/index.js';
import { call } from './support/api-client.js';
import { admin, CLI, runCli, startServer } from './support/server-process.js';

test('a second server on a data folder in use is refused and the first keeps serving; a server started as the holder is SIGKILLed gets the folder', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-lock-'));
  const children: ChildProcess[] = [];
  try {
    const first = await startServer(dataDir);
    children.push(first.child);
    const second = await runCli(['start', '--demo', '--port', '0', '--data', dataDir]);
    assert.equal(second.code, 1, 'the second server exits');
    assert.match(second.stderr, /is in use by another Bourse process \(pid \d+, serving http:\/\/127\.0\.0\.1:\d+\)/);
    assert.ok(second.stderr.includes(`pid ${first.child.pid}`), 'the message names the holder');
    assert.doesNotMatch(second.stdout, /"started"/);

    const rebuild = await runCli(['rebuild', '--data', dataDir]);
    assert.equal(rebuild.code, 1, 'the read model is not rebuilt under a running server');
    assert.match(rebuild.stderr, /in use by another Bourse process/);

    // The demo maker keeps journaling; had the second server appended, this commit would fail.
    await new Promise((r) => setTimeout(r, 500));
    await admin(first.url, dataDir, '/users', { email: 'after@example.com', password: 'correct horse battery' });
    const health = await call(first.url, 'GET', '/health');
    assert.equal(health.body.status, 'ok', JSON.stringify(health.body));

    first.child.kill('SIGKILL'); // not waited for: the next start waits until the kernel lets go
    const third = await startServer(dataDir);
    children.push(third.child);
    assert.equal((await call(third.url, 'GET', '/health')).body.status, 'ok');
    third.child.kill('SIGTERM');
    await new Promise((r) => third.child.once('exit', r));
    const verify = await promisify(execFile)(process.execPath, [CLI, 'verify', '--data', dataDir]);
    const report = JSON.parse(verify.stdout) as { snapshotAgrees: boolean; violations: string[] };
    assert.equal(report.snapshotAgrees, true);
    assert.deepEqual(report.violations, []);
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('within one process a data folder opens once at a time: a second open is refused until the first closes', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-lock-'));
  try {
    const first = await Exchange.open({ dataDir, demo: true });
    const lastSeq = first.sequencer.lastSeq;
    const refused = await Exchange.open({ dataDir, lockWaitMs: 200 }).then((opened) => { opened.close(); return null; }, (error: unknown) => error);
    assert.ok(refused instanceof FolderInUseError, `a second open is refused, got ${String(refused)}`);
    assert.equal(first.sequencer.lastSeq, lastSeq, 'the refused open journaled nothing');
    first.close();
    const again = await Exchange.open({ dataDir, lockWaitMs: 0 });
    assert.equal(again.sequencer.lastSeq, lastSeq);
    again.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
