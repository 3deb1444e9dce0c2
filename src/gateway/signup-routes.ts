/**
 * Opening an account, recovering a password and moving to another address without the operator,
 * by mail:
 *
 *   POST /signup                  email + password → a code is mailed; no account until it comes back
 *   POST /signup/confirm          the code → the account is opened (the user then logs in)
 *   POST /password-reset          email → a code is mailed to the account's owner
 *   POST /password-reset/confirm  the code + a new password (+ the TOTP code when two-factor is on)
 *   POST /email                   (session) new address + password (+ TOTP) → a code is mailed to it
 *   POST /email/confirm           the code → the account moves to the new address; the old one is told
 *   POST /freeze                  (session) password → the account is frozen (a disabled user) until support
 *   POST /freeze/code             the code every warning mail carries → the same, without logging in
 *
 * Those that mail answer the same whether or not an address has an account, so that nobody
 * learns who is a customer: the owner of a taken address is told by mail instead, if at all. Codes
 * are 256 random bits, kept only as their SHA-256, and work once; a wrong one counts toward the
 * address's lockout like a wrong password.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Exchange } from '../exchange.js';
import { trimToBound } from '../identity/bounded.js';
import { accountFrozenMail, alreadyRegisteredMail, confirmEmailMail, confirmNewEmailMail, emailChangedMail, passwordChangedMail, resetPasswordMail } from '../mail/account-mails.js';
import { ApiError, identityCall } from './errors.js';
import type { Gateway } from './server.js';
import { CODE } from './session-routes.js';
import { EMAIL } from './wire.js';
import { credentialChanged, recordSecurityEvent } from './security-events.js';

const TOKEN = { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'the code from the mail' } as const;
const PASSWORD = { type: 'string', maxLength: 256 } as const;
/** A request that carries nothing but a mailed code. */
const TOKEN_BODY = { type: 'object', additionalProperties: false, required: ['token'], properties: { token: TOKEN } } as const;

/** One mail of a kind to one address per this long, whoever asks how often: nobody's inbox is flooded through us. */
const MAIL_INTERVAL_MS = 60_000;
const THROTTLE_SUBJECTS_MAX = 100_000;

const MAIL_SENT = { type: 'object', properties: { status: { type: 'string' }, message: { type: 'string' } } } as const;

export async function registerSignupRoutes(app: FastifyInstance, exchange: Exchange, gateway: Gateway, registration: { open: boolean }): Promise<void> {
  const { mailer } = gateway;
  const { session, lockedOut, recordFailure, passwordAttempt, reauthenticate, secondFactor } = gateway.logins;
  const lastMailed = new Map<string, number>();
  /**
   * Takes the address's mail slot of this kind if it is free (true), before any await, so that two
   * requests at once cannot both mail; releaseMailSlot gives it back when the request then fails.
   */
  const takeMailSlot = (subject: string, now: number): boolean => {
    const last = lastMailed.get(subject);
    if (last !== undefined && now - last < MAIL_INTERVAL_MS) return false;
    lastMailed.delete(subject);
    lastMailed.set(subject, now);
    if (lastMailed.size > THROTTLE_SUBJECTS_MAX) trimToBound(lastMailed, THROTTLE_SUBJECTS_MAX, (at) => now - at >= MAIL_INTERVAL_MS);
    return true;
  };
  const releaseMailSlot = (subject: string): void => {
    lastMailed.delete(subject);
  };
  /** A wrong code is a guess: it counts toward the lockout of the address that sent it. */
  const badCode = (request: FastifyRequest, now: number, error: unknown): never => {
    if (error instanceof ApiError && error.code === 'INVALID_TOKEN') recordFailure(request, null, now);
    throw error;
  };

  app.post<{ Body: { email: string; password: string } }>('/signup', {
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['email', 'password'], properties: { email: EMAIL, password: PASSWORD } },
      response: { 202: MAIL_SENT },
    },
    config: { weight: 20 },
  }, async (request, reply) => {
    if (!registration.open) throw new ApiError(403, 'REGISTRATION_CLOSED', 'this exchange opens accounts through its operator only');
    const now = exchange.clock();
    passwordAttempt(request, now);
    const email = request.body.email.trim().toLowerCase();
    // Within the interval the sign-up is checked and answered alike, but the code already mailed stays the one that works.
    const subject = `signup ${email}`;
    const mail = takeMailSlot(subject, now);
    const started = await identityCall(() => exchange.identity.startSignup(request.body.email, request.body.password, now, mail)).catch((error: unknown) => {
      if (mail) releaseMailSlot(subject);
      throw error;
    });
    if (mail) mailer.send(started.kind === 'existing' ? alreadyRegisteredMail(mailer.config, email) : confirmEmailMail(mailer.config, email, started.token!, started.validMs));
    void reply.status(202);
    return { status: 'check_your_email', message: 'if the address can be signed up, a code is on its way to it; an address gets at most one mail a minute, and the last code mailed stays valid' };
  });

  app.post<{ Body: { token: string } }>('/signup/confirm', {
    schema: { body: TOKEN_BODY },
    config: { weight: 20 },
  }, async (request, reply) => {
    const now = exchange.clock();
    lockedOut(request, null, now);
    const user = await identityCall(() => exchange.identity.completeSignup(request.body.token, now)).catch((error: unknown) => badCode(request, now, error));
    // The engine's user and account follow the identity row, as for an operator's `user create`.
    await exchange.reconcileUsers();
    recordSecurityEvent(exchange, request, user.id, 'signed_up', 'user');
    void reply.status(201);
    return { user_id: user.id, email: user.email, account: user.account, kyc: user.kyc, level: user.level };
  });

  app.post<{ Body: { email: string } }>('/password-reset', {
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['email'], properties: { email: EMAIL } },
      response: { 202: MAIL_SENT },
    },
    config: { weight: 20 },
  }, async (request, reply) => {
    const now = exchange.clock();
    const user = exchange.identity.userByEmail(request.body.email);
    // A disabled user is told by support, not by mail; an unknown address gets the same answer as a known one.
    if (user !== undefined && user.disabledAt === null && takeMailSlot(`reset ${user.email}`, now)) {
      const { token, validMs } = exchange.identity.startPasswordReset(user.id, now);
      mailer.send(resetPasswordMail(mailer.config, user.email, token, validMs));
    }
    void reply.status(202);
    return { status: 'check_your_email', message: 'if the address has an account, a reset code is on its way to it; an address gets at most one mail a minute, and the last code mailed stays valid' };
  });

  app.post<{ Body: { new_email: string; password: string; totp?: string } }>('/email', {
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['new_email', 'password'], properties: { new_email: EMAIL, password: PASSWORD, totp: CODE } },
      response: { 202: MAIL_SENT },
    },
    preValidation: session, config: { weight: 20 },
  }, async (request, reply) => {
    const user = request.sessionUser!;
    const now = exchange.clock();
    // A stolen session must not move the account's mail (and with it password resets) elsewhere.
    await reauthenticate(request, user, request.body.password, request.body.totp, now);
    const subject = `email ${request.body.new_email.trim().toLowerCase()}`;
    if (takeMailSlot(subject, now)) {
      // An address another user has gets no code, and the answer does not say so.
      const started = await identityCall(() => exchange.identity.startEmailChange(user.id, request.body.new_email, now)).catch((error: unknown) => {
        releaseMailSlot(subject);
        throw error;
      });
      if (started.kind === 'code') mailer.send(confirmNewEmailMail(mailer.config, started.email, started.token, started.validMs));
      else releaseMailSlot(subject);
    }
    void reply.status(202);
    return { status: 'check_your_email', message: 'if the address can be used, a code is on its way to it; it gets at most one mail a minute, and the last code mailed stays valid' };
  });

  app.post<{ Body: { token: string } }>('/email/confirm', {
    schema: { body: TOKEN_BODY },
    config: { weight: 20 },
  }, async (request) => {
    const now = exchange.clock();
    lockedOut(request, null, now);
    const { before, after } = await identityCall(() => exchange.identity.completeEmailChange(request.body.token, now)).catch((error: unknown) => badCode(request, now, error));
    const ended = credentialChanged(exchange, mailer, request, after.id, {
      event: 'email_changed', by: 'user', detail: `${before.email} → ${after.email}`,
      mails: [emailChangedMail(mailer.config, before.email, { from: before.email, to: after.email }, 'by you', after.id)],
    });
    return { email: after.email, sessions_ended: ended };
  });

  // Freezing is the user's own brake: it asks for no second factor, which a thief may hold as well.
  const freeze = async (request: FastifyRequest, userId: number, how: 'with a code from a mail' | 'from a session'): Promise<{ frozen: true; withdrawals_cancelled: string[] }> => {
    const { withdrawalsCancelled } = await exchange.setUserDisabled(userId, true, `user (${how})`);
    recordSecurityEvent(exchange, request, userId, 'frozen', 'user', how);
    const user = exchange.identity.user(userId)!;
    mailer.send(accountFrozenMail(mailer.config, user.email, how));
    return { frozen: true, withdrawals_cancelled: withdrawalsCancelled.map(String) };
  };

  app.post<{ Body: { password: string } }>('/freeze', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['password'], properties: { password: PASSWORD } } },
    preValidation: session, config: { weight: 20 },
  }, async (request) => {
    const user = request.sessionUser!;
    await reauthenticate(request, user, request.body.password, null, exchange.clock());
    return freeze(request, user.id, 'from a session');
  });

  app.post<{ Body: { token: string } }>('/freeze/code', {
    schema: { body: TOKEN_BODY },
    config: { weight: 20 },
  }, async (request) => {
    const now = exchange.clock();
    lockedOut(request, null, now);
    const user = exchange.identity.spendFreezeCode(request.body.token, now);
    if (user === undefined) return badCode(request, now, new ApiError(400, 'INVALID_TOKEN', 'this code is not valid: it was used or has expired'));
    return freeze(request, user.id, 'with a code from a mail');
  });

  app.post<{ Body: { token: string; new_password: string; totp?: string } }>('/password-reset/confirm', {
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['token', 'new_password'], properties: { token: TOKEN, new_password: PASSWORD, totp: CODE } },
    },
    config: { weight: 20 },
  }, async (request) => {
    const now = exchange.clock();
    lockedOut(request, null, now);
    const user = exchange.identity.passwordResetUser(request.body.token, now);
    if (user === undefined) return badCode(request, now, new ApiError(400, 'INVALID_TOKEN', 'this code is not valid: it was used, replaced by a newer one, or has expired'));
    lockedOut(request, user.email, now);
    // A mailbox alone does not open an account that has a second factor.
    secondFactor(request, user, request.body.totp, now);
    if (user.disabledAt !== null) throw new ApiError(403, 'USER_DISABLED', 'this user is disabled; contact the exchange');
    passwordAttempt(request, now);
    await identityCall(() => exchange.identity.completePasswordReset(request.body.token, request.body.new_password, now));
    const ended = credentialChanged(exchange, mailer, request, user.id, {
      event: 'password_changed', by: 'user', detail: 'with a reset code', mails: [passwordChangedMail(mailer.config, user.email, 'with a reset code')],
    });
    return { password_changed: true, sessions_ended: ended };
  });
}
