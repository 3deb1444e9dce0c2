/**
 * The checks every route that takes a password, a second factor or a mailed code makes: lockouts
 * after repeated failures (by address, and more loosely by email), and the TOTP code of a user
 * with two-factor authentication on.
 */
import type { FastifyRequest } from 'fastify';
import type { Exchange } from '../exchange.js';
import type { UserRecord } from '../identity/store.js';
import { addressSubject } from '../identity/ip.js';
import { RateLimiter } from '../identity/rate-limit.js';
import { ApiError } from './errors.js';
import { bearerToken, clientIp } from './server.js';
import type { SessionHook } from './route-docs.js';

/** An email is locked for everyone after this many times the per-address count of failed logins. */
const EMAIL_LOCKOUT_FACTOR = 10;
/**
 * Requests that hash a password (logins, sign-ups, password and address changes) one address may
 * make a minute, whatever its request-weight budget: each costs a third of a second of a core.
 */
const PASSWORD_ATTEMPTS_PER_MINUTE = 30;

declare module 'fastify' {
  interface FastifyRequest {
    /** The user of the request's session token (routes with the session hook). */
    sessionUser: UserRecord | null;
  }
}

export interface LoginGuards {
  /** A route hook that admits a live session's requests (401 INVALID_SESSION otherwise) and sets request.sessionUser. */
  session: ((request: FastifyRequest) => Promise<void>) & SessionHook;
  /** Refuses (429 LOCKED_OUT) while the address, or the email when one is named, is locked out. */
  lockedOut: (request: FastifyRequest, email: string | null, now: number) => void;
  /** A failed password, code or TOTP counts against the address, and (more loosely) the email when one is named. */
  recordFailure: (request: FastifyRequest, email: string | null, now: number) => void;
  /** A TOTP code is required whenever the user has two-factor authentication on. */
  requireTotp: (user: UserRecord, code: string | undefined) => void;
  /** Takes one of the address's password attempts this minute (429 RATE_LIMITED beyond them). */
  passwordAttempt: (request: FastifyRequest, now: number) => void;
  /**
   * requireTotp behind the lockouts, a wrong code counting toward them: without both, a stolen
   * session could guess six digits at the address's full request rate.
   */
  secondFactor: (request: FastifyRequest, user: UserRecord, code: string | undefined, now: number) => void;
  /**
   * A logged-in user proves it is them before a change a stolen session must not make: the
   * password (401 INVALID_CREDENTIALS), then, unless `totp` is null, the second factor once
   * enrolled; failures count toward the lockouts, and the password toward the address's budget.
   */
  reauthenticate: (request: FastifyRequest, user: UserRecord, password: string, totp: string | undefined | null, now: number) => Promise<void>;
}

/** The guards of one server: its routes share the per-address password budget. */
export function loginGuards(exchange: Exchange): LoginGuards {
  const emailSubject = (email: string): string => `login:${email.trim().toLowerCase()}`;
  const passwordBudget = new RateLimiter({ capacity: PASSWORD_ATTEMPTS_PER_MINUTE, intervalMs: 60_000, subjectsMax: 100_000 });
  const guards: LoginGuards = {
    passwordAttempt: (request, now) => {
      const wait = passwordBudget.take(addressSubject(clientIp(request)), 1, now);
      if (wait > 0) throw new ApiError(429, 'RATE_LIMITED', `at most ${PASSWORD_ATTEMPTS_PER_MINUTE} password attempts a minute from one address`, Math.ceil(wait / 1000));
    },
    // Tagged, for the docs page (route-docs.ts).
    session: Object.assign(async (request: FastifyRequest): Promise<void> => {
      const user = exchange.identity.sessionUser(bearerToken(request), exchange.clock());
      if (user === undefined) throw new ApiError(401, 'INVALID_SESSION', 'log in first');
      request.sessionUser = user;
    }, { sessionToken: true } satisfies SessionHook),
    lockedOut: (request, email, now) => {
      const address = addressSubject(clientIp(request));
      const locked = exchange.auth.lockedFor(email === null ? [address] : [address, emailSubject(email)], now);
      if (locked > 0) throw new ApiError(429, 'LOCKED_OUT', 'too many failed logins; try later', Math.ceil(locked / 1000));
    },
    recordFailure: (request, email, now) => {
      exchange.auth.recordFailure(addressSubject(clientIp(request)), now);
      if (email !== null) exchange.auth.recordFailure(emailSubject(email), now, exchange.auth.failuresBeforeLockout * EMAIL_LOCKOUT_FACTOR);
    },
    requireTotp: (user, code) => {
      if (!user.twoFactor) return;
      if (code === undefined) throw new ApiError(401, 'TOTP_REQUIRED', 'a two-factor code is required');
      if (!exchange.identity.verifyTotp(user.id, code, exchange.clock())) throw new ApiError(401, 'INVALID_TOTP', 'the two-factor code is wrong or was used already');
    },
    secondFactor: (request, user, code, now) => {
      guards.lockedOut(request, user.email, now);
      try {
        guards.requireTotp(user, code);
      } catch (error) {
        if ((error as ApiError).code === 'INVALID_TOTP') guards.recordFailure(request, user.email, now);
        throw error;
      }
    },
    reauthenticate: async (request, user, password, totp, now) => {
      guards.lockedOut(request, user.email, now);
      guards.passwordAttempt(request, now);
      if (await exchange.identity.checkPassword(user.email, password) === undefined) {
        guards.recordFailure(request, user.email, now);
        throw new ApiError(401, 'INVALID_CREDENTIALS', 'the password is wrong');
      }
      if (totp !== null) guards.secondFactor(request, user, totp, now);
    },
  };
  return guards;
}
