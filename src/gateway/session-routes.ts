/**
 * Sessions for the web page and people: log in with email + password (+ TOTP once enabled),
 * enrol two-factor authentication, and manage one's own API keys. A session is a bearer token.
 */
import type { FastifyInstance } from 'fastify';
import type { Exchange } from '../exchange.js';
import { IdentityStore } from '../identity/store.js';
import type { LoginOutcome } from '../identity/store.js';
import { ApiError, identityCall } from './errors.js';
import type { Gateway } from './server.js';
import { bearerToken, clientIp } from './server.js';
import { apiKeyCreatedMail, newLoginMail, passwordChangedMail, twoFactorEnabledMail, twoFactorResetMail } from '../mail/account-mails.js';
import { MAIL_GROUP_NAMES } from '../mail/mailer.js';
import type { MailGroup } from '../mail/mailer.js';
import { EMAIL, loginsOut } from './wire.js';
import { apiKeyOut, changeApiKeyFor, createApiKeyFor, KEY_CHANGE_FIELDS, keyDetail, NEW_KEY_FIELDS } from './api-keys.js';
import type { KeyChangeBody } from './api-keys.js';
import { ACTIVITY_LIMIT, credentialChanged, recordSecurityEvent, securityEventsOut } from './security-events.js';
import type { NewKeyBody } from './api-keys.js';

export const CODE = { type: 'string', pattern: '^[0-9]{6}$' } as const;

export async function registerSessionRoutes(app: FastifyInstance, exchange: Exchange, gateway: Gateway): Promise<void> {
  app.decorateRequest('sessionUser', null);
  const { session, lockedOut, requireTotp, recordFailure: recordFailedLogin, passwordAttempt, reauthenticate, secondFactor } = gateway.logins;

  app.post<{ Body: { email: string; password: string; totp?: string } }>('/login', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['email', 'password'], properties: { email: EMAIL, password: { type: 'string', maxLength: 256 }, totp: CODE } } },
    config: { weight: 20 },
  }, async (request) => {
    const now = exchange.clock();
    // Failed logins lock out the guessing address after the usual count, and the email only after
    // ten times as many, so that one attacker cannot lock a user out while many addresses guessing
    // one password still get stopped.
    // Every attempt at a user that exists goes into their login history, as the user will want to
    // see "someone tried my password from there"; the one who tries is told nothing more.
    const attempted = exchange.identity.userByEmail(request.body.email);
    const userAgent = typeof request.headers['user-agent'] === 'string' ? request.headers['user-agent'] : '';
    const history = (outcome: LoginOutcome): void => {
      if (attempted === undefined) return;
      exchange.identity.recordLogin({ userId: attempted.id, ts: now, address: clientIp(request), userAgent, outcome });
    };
    try {
      lockedOut(request, request.body.email, now);
    } catch (error) {
      history('locked_out');
      throw error;
    }
    passwordAttempt(request, now);
    const failed = (): void => recordFailedLogin(request, request.body.email, now);
    const user = await exchange.identity.checkPassword(request.body.email, request.body.password);
    if (user === undefined) {
      // Said only to whoever knows the password the sign-up was made with.
      if (attempted === undefined && await exchange.identity.signupWaiting(request.body.email, request.body.password, now)) {
        throw new ApiError(403, 'EMAIL_NOT_CONFIRMED', 'confirm your email first with the code mailed to you (signing up again sends a new one)');
      }
      failed();
      history('wrong_password');
      throw new ApiError(401, 'INVALID_CREDENTIALS', 'email or password is wrong');
    }
    try {
      requireTotp(user, request.body.totp);
    } catch (error) {
      if ((error as ApiError).code === 'INVALID_TOTP') failed();
      history((error as ApiError).code === 'INVALID_TOTP' ? 'wrong_totp' : 'totp_required');
      throw error;
    }
    // Said only to whoever has the password (and code): others learn nothing of the user.
    if (user.disabledAt !== null) {
      history('disabled');
      throw new ApiError(403, 'USER_DISABLED', 'this user is disabled; contact the exchange');
    }
    const { token, expiresAt } = exchange.identity.createSession(user.id, now, { address: clientIp(request), userAgent });
    // The first login of all is the user's own, just after signing up; after that, a new address is news to them.
    const before = exchange.identity.loggedInBefore(user.id, clientIp(request));
    if (before.ever && !before.fromAddress) gateway.mailer.send(newLoginMail(gateway.mailer.config, user.email, { address: clientIp(request), userAgent, at: now }));
    history('ok');
    return { token, expires_at: expiresAt, two_factor: user.twoFactor };
  });

  app.get<{ Querystring: { limit?: string } }>('/logins', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'string', pattern: '^[0-9]{1,3}$' } } } },
    preValidation: session, config: { weight: 2 },
  }, async (request) => ({ logins: loginsOut(exchange, request.sessionUser!.id, request.query.limit) }));

  app.post('/logout', { preValidation: session }, async (request) => {
    exchange.identity.deleteSession(bearerToken(request));
    return { logged_out: true };
  });

  app.post<{ Body: { current_password: string; new_password: string; totp?: string } }>('/password', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['current_password', 'new_password'],
        properties: { current_password: { type: 'string', maxLength: 256 }, new_password: { type: 'string', maxLength: 256 }, totp: CODE },
      },
    },
    preValidation: session, config: { weight: 20 },
  }, async (request) => {
    const user = request.sessionUser!;
    const now = exchange.clock();
    // A stolen session must not become a stolen password: the current one is asked for, and
    // guesses count toward the same lockout as failed logins.
    await reauthenticate(request, user, request.body.current_password, request.body.totp, now);
    await identityCall(() => exchange.identity.setPassword(user.id, request.body.new_password));
    const ended = credentialChanged(exchange, gateway.mailer, request, user.id, {
      event: 'password_changed', by: 'user', keepSession: bearerToken(request), mails: [passwordChangedMail(gateway.mailer.config, user.email, 'by you')],
    });
    return { password_changed: true, other_sessions_ended: ended };
  });

  app.get('/sessions', { preValidation: session }, async (request) => {
    const current = IdentityStore.sessionId(bearerToken(request));
    return {
      sessions: exchange.identity.sessionsOf(request.sessionUser!.id, exchange.clock())
        .map((s) => ({ id: s.id, created_at: s.createdAt, expires_at: s.expiresAt, last_seen_at: s.lastSeenAt, address: s.address, user_agent: s.userAgent, current: s.id === current })),
    };
  });

  app.delete<{ Params: { id: string } }>('/sessions/:id', { preValidation: session }, async (request) => {
    if (!exchange.identity.endSessionById(request.sessionUser!.id, request.params.id)) throw new ApiError(404, 'UNKNOWN_SESSION', 'no such session');
    return { id: request.params.id, ended: true };
  });

  app.delete('/sessions', { preValidation: session }, async (request) => ({
    other_sessions_ended: exchange.identity.endSessions(request.sessionUser!.id, bearerToken(request)),
  }));

  app.get('/me', { preValidation: session }, async (request) => {
    const user = request.sessionUser!;
    return {
      user_id: user.id, email: user.email, account: user.account, kyc: user.kyc, level: user.level, two_factor: user.twoFactor,
      anti_phishing: exchange.identity.antiPhishingOf(user.email) !== null,
    };
  });

  app.put<{ Body: { code: string | null; totp?: string } }>('/anti-phishing', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['code'],
        properties: { code: { type: ['string', 'null'], maxLength: 64, description: '4 to 20 letters and digits; null removes it' }, totp: CODE },
      },
    },
    preValidation: session, config: { weight: 5 },
  }, async (request) => {
    const user = request.sessionUser!;
    // Whoever holds a stolen session must not be able to make their forgeries look genuine.
    secondFactor(request, user, request.body.totp, exchange.clock());
    await identityCall(() => exchange.identity.setAntiPhishing(user.id, request.body.code));
    recordSecurityEvent(exchange, request, user.id, request.body.code === null ? 'anti_phishing_removed' : 'anti_phishing_set', 'user');
    return { anti_phishing: request.body.code !== null };
  });

  const notifications = (userId: number): Record<MailGroup, boolean> => {
    const off = exchange.identity.mailTurnedOff(userId);
    return Object.fromEntries(MAIL_GROUP_NAMES.map((group) => [group, !off.includes(group)])) as Record<MailGroup, boolean>;
  };
  app.get('/notifications', { preValidation: session }, async (request) => notifications(request.sessionUser!.id));

  app.put<{ Body: Partial<Record<MailGroup, boolean>> }>('/notifications', {
    schema: { body: { type: 'object', additionalProperties: false, minProperties: 1, properties: Object.fromEntries(MAIL_GROUP_NAMES.map((group) => [group, { type: 'boolean' }])) } },
    preValidation: session, config: { weight: 2 },
  }, async (request) => {
    const user = request.sessionUser!;
    const wanted = { ...notifications(user.id), ...request.body };
    exchange.identity.setMailTurnedOff(user.id, MAIL_GROUP_NAMES.filter((group) => !wanted[group]));
    return notifications(user.id);
  });

  // Setting up and turning off two-factor take the password: a stolen session alone could
  // otherwise enrol the thief's device and lock the owner out, or take the second factor away.
  app.post<{ Body: { password: string } }>('/2fa/setup', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['password'], properties: { password: { type: 'string', maxLength: 256 } } } },
    preValidation: session, config: { weight: 20 },
  }, async (request) => {
    const user = request.sessionUser!;
    if (user.twoFactor) throw new ApiError(409, 'TOTP_ALREADY_ENABLED', 'two-factor authentication is on already: turn it off first to move to another device');
    await reauthenticate(request, user, request.body.password, null, exchange.clock());
    const { secret, uri } = await identityCall(() => exchange.identity.setupTotp(user.id, 'Bourse'));
    return { secret, otpauth_uri: uri };
  });

  app.post<{ Body: { code: string } }>('/2fa/enable', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['code'], properties: { code: CODE } } },
    preValidation: session, config: { weight: 5 },
  }, async (request) => {
    const user = request.sessionUser!;
    await identityCall(() => exchange.identity.enableTotp(user.id, request.body.code, exchange.clock()));
    exchange.funding.credentialsChanged(user.id);
    recordSecurityEvent(exchange, request, user.id, 'two_factor_enabled', 'user');
    gateway.mailer.send(twoFactorEnabledMail(gateway.mailer.config, user.email));
    return { two_factor: true };
  });

  app.post<{ Body: { password: string; totp: string } }>('/2fa/disable', {
    schema: {
      body: { type: 'object', additionalProperties: false, required: ['password', 'totp'], properties: { password: { type: 'string', maxLength: 256 }, totp: CODE } },
    },
    preValidation: session, config: { weight: 20 },
  }, async (request) => {
    const user = request.sessionUser!;
    if (!user.twoFactor) throw new ApiError(409, 'TOTP_NOT_ENABLED', 'two-factor authentication is off');
    await reauthenticate(request, user, request.body.password, request.body.totp, exchange.clock());
    exchange.identity.resetTotp(user.id);
    const ended = credentialChanged(exchange, gateway.mailer, request, user.id, {
      event: 'two_factor_disabled', by: 'user', keepSession: bearerToken(request), mails: [twoFactorResetMail(gateway.mailer.config, user.email, 'you')],
    });
    return { two_factor: false, other_sessions_ended: ended };
  });

  app.get('/apikeys', { preValidation: session }, async (request) => ({
    keys: exchange.apiKeysOf(request.sessionUser!.id).map(apiKeyOut),
  }));

  app.post<{ Body: NewKeyBody & { totp?: string } }>('/apikeys', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['permissions'], properties: { ...NEW_KEY_FIELDS, totp: CODE } } },
    preValidation: session, config: { weight: 5 },
  }, async (request, reply) => {
    const user = request.sessionUser!;
    secondFactor(request, user, request.body.totp, exchange.clock());
    const { record, answer } = await createApiKeyFor(exchange, user.id, request.body);
    // A new key that can move money out, HMAC or Ed25519, is a credential change: withdrawals wait out the hold.
    if (record.permissions.includes('withdraw')) exchange.funding.credentialsChanged(user.id);
    recordSecurityEvent(exchange, request, user.id, 'api_key_created', 'user', keyDetail(record));
    gateway.mailer.send(apiKeyCreatedMail(gateway.mailer.config, user.email, record, 'by you'));
    void reply.status(201);
    return answer;
  });

  app.patch<{ Params: { key: string }; Body: KeyChangeBody & { totp?: string } }>('/apikeys/:key', {
    schema: { body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { ...KEY_CHANGE_FIELDS, totp: CODE } } },
    preValidation: session, config: { weight: 5 },
  }, async (request) => {
    const user = request.sessionUser!;
    secondFactor(request, user, request.body.totp, exchange.clock());
    const record = await changeApiKeyFor(exchange, user.id, request.params.key, request.body);
    recordSecurityEvent(exchange, request, user.id, 'api_key_changed', 'user', keyDetail(record));
    return apiKeyOut(record);
  });

  app.delete<{ Params: { key: string } }>('/apikeys/:key', { preValidation: session }, async (request) => {
    if (!exchange.revokeApiKey(request.sessionUser!.id, request.params.key)) throw new ApiError(404, 'UNKNOWN_KEY', 'no such active key');
    recordSecurityEvent(exchange, request, request.sessionUser!.id, 'api_key_revoked', 'user', request.params.key);
    return { key: request.params.key, revoked: true };
  });

  app.get<{ Querystring: { limit?: string } }>('/activity', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { limit: ACTIVITY_LIMIT } } },
    preValidation: session, config: { weight: 2 },
  }, async (request) => ({ activity: securityEventsOut(exchange, request.sessionUser!.id, request.query.limit) }));
}
