import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function startUntilStopped(dataDir: string): Promise<{ started: Record<string, unknown>; stopped: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'start', '--demo', '--port', '0', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffer.slice(0, newline)) as Record<string, unknown>;
        buffer = buffer.slice(newline + 1);
        if (line.event === undefined) continue; // a log line
        lines.push(line);
        if (lines.length === 1) child.kill('SIGTERM');
      }
    });
    child.on('exit', (code) => {
      if (code !== 0 || lines.length !== 2) reject(new Error(`exit ${code}, output ${JSON.stringify(lines)}`));
      else resolve({ started: lines[0]!, stopped: lines[1]! });
    });
  });
}

test('bourse start seeds the demo venue once, shuts down cleanly on SIGTERM, and verify agrees', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bourse-cli-'));
  try {
    const first = await startUntilStopped(dataDir);
    assert.deepEqual(first.started.markets, ['BTC-USDT', 'ETH-USDT', 'ETH-BTC', 'BTC-EUR']);
    assert.equal(first.stopped.stateHash, first.started.stateHash);
    const second = await startUntilStopped(dataDir);
    assert.equal(second.started.lastSeq, first.stopped.lastSeq, 'the demo venue is seeded only on a fresh journal');
    assert.equal(second.started.stateHash, first.stopped.stateHash);
    const report = JSON.parse(execFileSync(process.execPath, [CLI, 'verify', '--data', dataDir]).toString()) as Record<string, unknown>;
    assert.equal(report.stateHash, first.stopped.stateHash);
    assert.equal(report.snapshotAgrees, true);
    assert.deepEqual(report.violations, []);
    const rebuilt = JSON.parse(execFileSync(process.execPath, [CLI, 'rebuild', '--data', dataDir]).toString()) as Record<string, unknown>;
    assert.equal(rebuilt.lastSeq, first.stopped.lastSeq);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
