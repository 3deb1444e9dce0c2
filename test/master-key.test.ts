/**
 * API and TOTP secrets are sealed with the master key (DATA/master.key or BOURSE_MASTER_KEY). A
 * start with another key used to make a new one silently, and every signed request then got 500.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from './support/api-client.js';
import { admin, runCli, startServer } from './support/server-process.js';

test('a master key that does not open the sealed secrets stops the start with what to do; the original, from the file or the environment, starts and signs', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-master-'));
  const keyFile = join(dataDir, 'master.key');
  const children: ChildProcess[] = [];
  const stop = async (child: ChildProcess): Promise<void> => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  };
  try {
    const first = await startServer(dataDir, []);
    children.push(first.child);
    await admin(first.url, dataDir, '/users', { email: 'sealed@example.com', password: 'correct horse battery' });
    const credentials = await admin(first.url, dataDir, '/apikeys', { email: 'sealed@example.com', permissions: ['read'] });
    await stop(first.child);
    const original = readFileSync(keyFile, 'utf8').trim();

    rmSync(keyFile);
    const missing = await runCli(['start', '--port', '0', '--data', dataDir]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /sealed with another master key .*master\.key was missing: put the original back/);
    assert.equal(existsSync(keyFile), false, 'no new key is left behind to be mistaken for the original');

    writeFileSync(keyFile, `${'0'.repeat(64)}\n`, { mode: 0o600 });
    const wrong = await runCli(['start', '--port', '0', '--data', dataDir]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /restore the key they were sealed with/);
    const wrongFromEnv = await runCli(['start', '--port', '0', '--data', dataDir], { BOURSE_MASTER_KEY: 'f'.repeat(64) });
    assert.match(wrongFromEnv.stderr, /another master key than BOURSE_MASTER_KEY/);

    rmSync(keyFile);
    const restored = await startServer(dataDir, [], { BOURSE_MASTER_KEY: original });
    children.push(restored.child);
    const balances = await call(restored.url, 'GET', '/api/v1/balances', { credentials });
    assert.equal(balances.status, 200, JSON.stringify(balances.body));
    await stop(restored.child);
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});
