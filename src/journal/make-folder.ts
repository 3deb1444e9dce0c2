/**
 * `mkdir -p`, one level at a time. Node 20's `mkdirSync(path, { recursive: true })` loops for
 * ever where mkdir answers ENOENT under a parent that exists (a path under /proc, say), and it
 * runs on the engine thread: `bourse start --data /proc/x` spun instead of failing. Here each
 * missing folder is made on its own, so any refusal is an error at once.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export function makeFolder(path: string, mode = 0o700): void {
  const missing: string[] = [];
  for (let folder = resolve(path); !existsSync(folder); folder = dirname(folder)) {
    missing.push(folder);
    if (dirname(folder) === folder) break;
  }
  for (const folder of missing.reverse()) mkdirSync(folder, { mode });
}
