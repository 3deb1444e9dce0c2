/**
 * API keys as the user (with a session) and the operator make and list them: one request shape,
 * one way of making either kind of key, one answer.
 */
import type { Exchange } from '../exchange.js';
import { PERMISSIONS } from '../identity/store.js';
import type { ApiKeyRecord, Permission } from '../identity/store.js';
import { ApiError, identityCall } from './errors.js';
import { ACCOUNT_ID } from './wire.js';

/** The fields of a new key's request, for the routes' schemas. */
export const NEW_KEY_FIELDS = {
  permissions: { type: 'array', minItems: 1, maxItems: 3, uniqueItems: true, items: { type: 'string', enum: [...PERMISSIONS] } },
  ip: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 64 } },
  public_key: { type: 'string', maxLength: 2_000, description: 'an Ed25519 public key (SPKI PEM): the key signs with its private half, and no secret is made' },
  account: ACCOUNT_ID,
  label: { type: 'string', maxLength: 64, pattern: '^[\\x20-\\x7e]*$', description: "the user's name for the key" },
  expires_at: { type: 'integer', minimum: 0, maximum: 8_640_000_000_000_000, description: 'when the key stops working, ms since the epoch (absent: until revoked)' },
} as const;

export interface NewKeyBody { permissions: Permission[]; ip?: string[]; public_key?: string; account?: number; label?: string; expires_at?: number }

/** An API key as its owner and the operator see it: never its secret. */
export function apiKeyOut(k: Omit<ApiKeyRecord, 'secret'>): Record<string, unknown> {
  return {
    key: k.key, label: k.label, account: k.account, permissions: k.permissions, ip: k.ipAllow, scheme: k.scheme,
    created_at: k.createdAt, revoked_at: k.revokedAt, expires_at: k.expiresAt, last_used_at: k.lastUsedAt, last_used_ip: k.lastUsedIp,
  };
}

/**
 * Makes a key for a user: Ed25519 from the public key given (nothing secret is made or shown), or
 * HMAC with a new secret, shown in this answer and never again.
 */
export async function createApiKeyFor(exchange: Exchange, userId: number, body: NewKeyBody): Promise<{ record: ApiKeyRecord; answer: Record<string, unknown> }> {
  const spec = { permissions: body.permissions, ipAllow: body.ip ?? [], account: body.account, label: body.label, expiresAt: body.expires_at };
  if (body.public_key !== undefined) {
    const record = await identityCall(() => exchange.identity.registerEd25519Key(userId, body.public_key!, spec, exchange.clock()));
    return { record, answer: apiKeyOut(record) };
  }
  const { record, secret } = await identityCall(() => exchange.identity.createApiKey(userId, spec, exchange.clock()));
  return { record, answer: { ...apiKeyOut(record), secret } };
}

/** What can change in a key once made: where it may be used from, and its label (those given). */
export const KEY_CHANGE_FIELDS = { ip: NEW_KEY_FIELDS.ip, label: NEW_KEY_FIELDS.label } as const;
export interface KeyChangeBody { ip?: string[]; label?: string }

/**
 * Changes a user's active key; 404 UNKNOWN_KEY if they have no such key. A withdraw key that
 * may now be used from elsewhere is a credential change: withdrawals wait out the hold.
 */
export async function changeApiKeyFor(exchange: Exchange, userId: number, key: string, body: KeyChangeBody): Promise<ApiKeyRecord> {
  const record = await identityCall(() => exchange.updateApiKey(userId, key, { ipAllow: body.ip, label: body.label }));
  if (record === undefined) throw new ApiError(404, 'UNKNOWN_KEY', 'no such active key');
  if (body.ip !== undefined && record.permissions.includes('withdraw')) exchange.funding.credentialsChanged(userId);
  return record;
}

/** A key as the account activity names it: id, permissions, and where it may be used from. */
export function keyDetail(k: Pick<ApiKeyRecord, 'key' | 'permissions' | 'ipAllow' | 'label'>): string {
  return `${k.key} (${k.permissions.join(',')}${k.ipAllow.length === 0 ? '' : `; from ${k.ipAllow.join(',')}`}${k.label === '' ? '' : `; "${k.label}"`})`;
}
