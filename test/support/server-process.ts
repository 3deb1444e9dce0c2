/** `bourse start` in a child process, for tests that kill and restart the server. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { call } from './api-client.js';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export function startServer(dataDir: string, args: string[] = ['--demo'], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'start', ...args, '--port', '0', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('"started"'));
      if (line !== undefined) resolve({ child, url: (JSON.parse(line) as { url: string }).url });
    });
    child.on('exit', (code) => reject(new Error(`server exited early (${code}): ${out}`)));
  });
}

export async function admin(url: string, dataDir: string, path: string, body?: unknown, method = 'POST'): Promise<any> {
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const response = await call(url, method, `/admin/v1${path}`, { body, headers: { authorization: `Bearer ${token}` } });
  assert.ok(response.status < 300, JSON.stringify(response.body));
  return response.body;
}

/** Runs the CLI to its end (a server it starts is stopped at once); its exit code, stdout and stderr. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('"started"')) child.kill('SIGTERM'); // a server that should not have started
    });
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
