/** The native API's error format: {"error": {"code": "...", "message": "..."}} with a fitting status. */
import type { Engine, EngineEvent, PlaceOrder, RejectReason } from '../core/index.js';
import { IdentityError } from '../identity/store.js';
import type { AuthResult } from '../identity/auth.js';
import { PasswordWorkBusy } from '../identity/password-work.js';
import { SequencerClosedError, SequencerOverloadedError } from '../journal/index.js';
import { rejectionMessage } from './rejections.js';

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly retryAfterSeconds?: number) {
    super(message);
  }
}

/** A signed request's refusal as the API error it is: lockouts 429, refusals of a valid key 403, the rest 401. */
export function authRefusal(result: Extract<AuthResult, { ok: false }>): ApiError {
  const status = result.code === 'LOCKED_OUT' ? 429 : result.code === 'IP_NOT_ALLOWED' || result.code === 'USER_DISABLED' ? 403 : 401;
  return new ApiError(status, result.code, result.message, result.retryAfterSeconds);
}

/**
 * A refusal that comes from the exchange's own state, not from the request (the client may retry
 * later), as the API error it is; null for anything else. Shared by HTTP and the socket.
 */
export function serviceRefusal(error: unknown): ApiError | null {
  if (error instanceof SequencerOverloadedError) return new ApiError(503, 'OVERLOADED', 'the exchange is busy; retry shortly', 1);
  if (error instanceof SequencerClosedError) return new ApiError(503, 'UNAVAILABLE', 'the exchange is not accepting commands');
  if (error instanceof PasswordWorkBusy) return new ApiError(503, 'BUSY', error.message, 1);
  // better-sqlite3's error for a disk with no space left, from an identity or funding write.
  if ((error as { code?: unknown } | null)?.code === 'SQLITE_FULL') return new ApiError(503, 'UNAVAILABLE', 'the server has no disk space left');
  return null;
}

export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

const NOT_FOUND: ReadonlySet<string> = new Set(['UNKNOWN_MARKET', 'UNKNOWN_ORDER', 'UNKNOWN_ASSET', 'UNKNOWN_ACCOUNT', 'UNKNOWN_USER', 'UNKNOWN_HOLD']);
const CONFLICT: ReadonlySet<string> = new Set(['DUPLICATE_CLIENT_ORDER_ID', 'DUPLICATE_KEY', 'ALREADY_EXISTS']);

/** HTTP status of an engine rejection: the request was understood, the rules said no. */
export function rejectionStatus(reason: RejectReason): number {
  if (NOT_FOUND.has(reason)) return 404;
  if (CONFLICT.has(reason)) return 409;
  return 400;
}

/** Throws the first rejection among a command's events as an ApiError; `order` is the order placed, if one was. */
export function throwIfRejected(events: readonly EngineEvent[], engine: Engine, order?: Partial<PlaceOrder>): void {
  for (const event of events) {
    if (event.type === 'order_rejected') {
      throw new ApiError(rejectionStatus(event.reason), event.reason, rejectionMessage(engine, event.reason, event.market, order, event.message));
    }
    if (event.type === 'command_rejected') {
      throw new ApiError(rejectionStatus(event.reason), event.reason, rejectionMessage(engine, event.reason, '', {}, event.message));
    }
  }
}

const IDENTITY_STATUS: Readonly<Record<string, number>> = { EMAIL_TAKEN: 409, TOTP_ALREADY_ENABLED: 409, TOO_MANY_KEYS: 409, UNKNOWN_USER: 404, UNKNOWN_SIGNUP: 404 };

/** Runs an identity-store call, turning its refusals into API errors. */
export async function identityCall<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof IdentityError) throw new ApiError(IDENTITY_STATUS[error.code] ?? 400, error.code, error.message);
    throw error;
  }
}
