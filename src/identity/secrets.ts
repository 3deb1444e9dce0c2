/**
 * Secrets at rest: API secrets are sealed with AES-256-GCM under a master key that lives in
 * its own file (or the BOURSE_MASTER_KEY environment variable), never in the database.
 * Passwords are hashed with scrypt (memory-hard; Node's own implementation).
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { passwordWork } from './password-work.js';

const scrypt = promisify(scryptCallback) as (password: string, salt: Buffer, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

export const MASTER_KEY_BYTES = 32;

export interface MasterKey {
  key: Buffer;
  /** Where it came from: BOURSE_MASTER_KEY, or the file's path. */
  origin: string;
  /** Whether the file was missing and has just been made with a new key. */
  created: boolean;
}

/** Reads the master key (hex) from the environment or the key file, creating the file on first use. */
export function loadMasterKey(path: string): MasterKey {
  const fromEnv = process.env.BOURSE_MASTER_KEY;
  if (fromEnv !== undefined && fromEnv !== '') return { key: parseKey(fromEnv, 'BOURSE_MASTER_KEY'), origin: 'BOURSE_MASTER_KEY', created: false };
  const created = !existsSync(path);
  if (created) writeFileSync(path, `${randomBytes(MASTER_KEY_BYTES).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  return { key: parseKey(readFileSync(path, 'utf8').trim(), path), origin: path, created };
}

function parseKey(hex: string, origin: string): Buffer {
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new Error(`${origin} must hold a 32-byte key as 64 hex digits`);
  return Buffer.from(hex, 'hex');
}

/** iv (12) ‖ tag (16) ‖ ciphertext. `context` binds the sealed secret to its owner (e.g. the key id). */
export function seal(masterKey: Buffer, plaintext: string, context: string): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', masterKey, iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

export function unseal(masterKey: Buffer, sealed: Buffer, context: string): string {
  const decipher = createDecipheriv('aes-256-gcm', masterKey, sealed.subarray(0, 12));
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString('utf8');
}

// OWASP's scrypt floor: N = 2^17, r = 8, p = 1 (128 MiB·… of work per hash).
const SCRYPT = { N: 2 ** 17, r: 8, p: 1, maxmem: 256 * 1024 * 1024 };
const HASH_BYTES = 32;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await passwordWork.run(() => scrypt(password.normalize('NFKC'), salt, HASH_BYTES, SCRYPT));
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = await passwordWork.run(() => scrypt(password.normalize('NFKC'), Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem,
  }));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
