/**
 * Admin routes for users and their accounts (under /admin/v1, behind the admin token of
 * admin-routes.ts): finding and listing users, support resets of a password or two-factor,
 * disabling a user, trading restrictions, the operator's cancels of an account's orders,
 * debits that correct a credit made in error, and an account's orders, fills and ledger as
 * support needs to read them.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { RESTRICTIONS } from '../core/index.js';
import type { Command, EngineEvent, Restriction } from '../core/index.js';
import type { Exchange } from '../exchange.js';
import { KYC_STATUSES } from '../identity/store.js';
import type { AddressBlock, KycStatus, UserRecord } from '../identity/store.js';
import { formatMinor } from '../money/index.js';
import { ApiError, identityCall } from './errors.js';
import { ACCOUNT_ID, ASSET_CODE, balanceOut, DECIMAL, decimalIn, EMAIL, loginsOut, scalesOf } from './wire.js';
import { PAGE_FIELDS } from './paging.js';
import { fillsListing, ledgerListing, ordersListing } from './account-listings.js';
import { EXPORT_KIND_PARAM, exportQuerySchema, sendExport } from './exports.js';
import type { ExportKind, ExportQuery } from './exports.js';
import type { PageQuery } from './paging.js';
import { operatorOf } from './admin-audit.js';
import { ACTIVITY_LIMIT, credentialChanged, recordSecurityEvent, securityEventsOut } from './security-events.js';
import type { RateBans } from '../identity/rate-bans.js';
import type { Mailer } from '../mail/mailer.js';
import { emailChangedMail, passwordChangedMail, twoFactorResetMail } from '../mail/account-mails.js';


function blockOut(block: AddressBlock): Record<string, unknown> {
  return { cidr: block.cidr, reason: block.reason, by: block.actor, created_at: block.createdAt, until: block.until };
}

/** How many orders a cancel command ended. */
export function cancelledIn(events: EngineEvent[]): number {
  let count = 0;
  for (const event of events) if (event.type === 'order_cancelled') count += 1;
  return count;
}

/** What the account routes share with the rest of the admin API. */
export interface AdminCalls {
  /** Submits a command; an engine refusal becomes the API error it maps to. */
  submit(cmd: Command): Promise<EngineEvent[]>;
  userByEmail(email: string): UserRecord;
  /** Tells users of what support did to their credentials. */
  mailer: Mailer;
  /** Addresses and keys banned for sending on after 429s. */
  rateBans: RateBans;
}

export function registerAdminAccountRoutes(app: FastifyInstance, exchange: Exchange, { submit, userByEmail, mailer, rateBans }: AdminCalls): void {
  /** The user's account the operator names: the main one unless `account` picks another of theirs. */
  const accountOf = (email: string, account: number | undefined): number => {
    const user = userByEmail(email);
    if (account === undefined) return user.account;
    if (!exchange.identity.accountsOf(user.id).some((a) => a.id === account)) throw new ApiError(404, 'UNKNOWN_ACCOUNT', `${email} has no account ${account}`);
    return account;
  };

  // Support resets: each ends the user's sessions and holds withdrawals as any credential change does.
  app.post<{ Body: { email: string; password: string } }>('/users/password', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['email', 'password'], properties: { email: EMAIL, password: { type: 'string', maxLength: 256 } } } },
  }, async (request) => {
    const user = userByEmail(request.body.email);
    await identityCall(() => exchange.identity.setPassword(user.id, request.body.password));
    const ended = credentialChanged(exchange, mailer, request, user.id, {
      event: 'password_changed', by: 'support', detail: operatorOf(request), mails: [passwordChangedMail(mailer.config, user.email, 'by support')],
    });
    return { email: user.email, password_changed: true, sessions_ended: ended };
  });

  app.get<{ Querystring: { email: string; limit?: string } }>('/users/activity', {
    schema: { querystring: { type: 'object', additionalProperties: false, required: ['email'], properties: { email: EMAIL, limit: ACTIVITY_LIMIT } } },
  }, async (request) => ({ email: request.query.email, activity: securityEventsOut(exchange, userByEmail(request.query.email).id, request.query.limit) }));

  app.get<{ Querystring: { email?: string; limit?: string } }>('/signups', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { email: EMAIL, limit: { type: 'string', pattern: '^[0-9]{1,4}$' } } } },
  }, async (request) => {
    const limit = Math.min(Math.max(Number(request.query.limit ?? 100), 1), 1_000);
    return {
      signups: exchange.identity.waitingSignups({ email: request.query.email, limit }, exchange.clock())
        .map((s) => ({ email: s.email, created_at: s.createdAt, expires_at: s.expiresAt })),
    };
  });

  // Support, for a user whose mail never arrives: the account opens with the password they chose.
  app.post<{ Body: { email: string } }>('/signups/confirm', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['email'], properties: { email: EMAIL } } },
  }, async (request, reply) => {
    const user = await identityCall(() => exchange.identity.completeSignupOf(request.body.email, exchange.clock()));
    await exchange.reconcileUsers();
    void reply.status(201);
    return { id: user.id, email: user.email, account: user.account };
  });

  // Support, for a user who lost their mailbox: both addresses are told.
  app.post<{ Body: { email: string; new_email: string } }>('/users/email', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['email', 'new_email'], properties: { email: EMAIL, new_email: EMAIL } } },
  }, async (request) => {
    const user = userByEmail(request.body.email);
    const { before, after } = await identityCall(() => exchange.identity.changeEmail(user.id, request.body.new_email));
    const change = { from: before.email, to: after.email };
    const ended = credentialChanged(exchange, mailer, request, user.id, {
      event: 'email_changed', by: 'support', detail: `${before.email} → ${after.email} (${operatorOf(request)})`,
      mails: [emailChangedMail(mailer.config, before.email, change, 'by support', user.id), emailChangedMail(mailer.config, after.email, change, 'by support', user.id)],
    });
    return { email: after.email, previous_email: before.email, sessions_ended: ended };
  });

  app.post<{ Body: { email: string } }>('/users/reset-2fa', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['email'], properties: { email: EMAIL } } },
  }, async (request) => {
    const user = userByEmail(request.body.email);
    const wasOn = exchange.identity.resetTotp(user.id);
    // Done even when it was off (support acted on the account: sessions end, withdrawals wait); told only when it was on.
    const ended = credentialChanged(exchange, mailer, request, user.id, {
      event: 'two_factor_reset', by: 'support', detail: wasOn ? operatorOf(request) : `${operatorOf(request)}; it was off`, mails: wasOn ? [twoFactorResetMail(mailer.config, user.email)] : [],
    });
    return { email: user.email, two_factor: false, was_on: wasOn, sessions_ended: ended };
  });

  for (const action of ['disable', 'enable'] as const) {
    app.post<{ Body: { email: string } }>(`/users/${action}`, {
      schema: { body: { type: 'object', additionalProperties: false, required: ['email'], properties: { email: EMAIL } } },
    }, async (request) => {
      const user = userByEmail(request.body.email);
      const { changed, withdrawalsCancelled } = await exchange.setUserDisabled(user.id, action === 'disable', operatorOf(request));
      if (changed) recordSecurityEvent(exchange, request, user.id, action === 'disable' ? 'disabled' : 'enabled', 'support', operatorOf(request));
      return { email: user.email, disabled: action === 'disable', changed, withdrawals_cancelled: withdrawalsCancelled.map(String) };
    });
  }

  app.post<{ Body: { email: string; account?: number; restriction: Restriction; cancel_orders?: boolean } }>('/accounts/restriction', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['email', 'restriction'],
        properties: {
          email: EMAIL, account: ACCOUNT_ID, restriction: { type: 'string', enum: [...RESTRICTIONS] },
          cancel_orders: { type: 'boolean', description: "also cancel the account's open orders (after the restriction, so that none can be placed between)" },
        },
      },
    },
  }, async (request) => {
    const account = accountOf(request.body.email, request.body.account);
    await submit({ type: 'set_restriction', account, restriction: request.body.restriction });
    const cancelled = request.body.cancel_orders === true ? cancelledIn(await submit({ type: 'cancel_all', account, cause: 'operator' })) : 0;
    return { email: request.body.email, account, restriction: request.body.restriction, cancelled };
  });

  app.post<{ Body: { email: string; account?: number; market?: string } }>('/accounts/cancel-orders', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['email'], properties: { email: EMAIL, account: ACCOUNT_ID, market: { type: 'string', maxLength: 40 } } } },
  }, async (request) => {
    const account = accountOf(request.body.email, request.body.account);
    const market = request.body.market === undefined ? undefined : scalesOf(exchange.engine, request.body.market).id;
    const events = await submit({ type: 'cancel_all', account, cause: 'operator', ...(market === undefined ? {} : { market }) });
    return { email: request.body.email, account, market: market ?? null, cancelled: cancelledIn(events) };
  });

  // The undoing of a mistaken credit (an operator's deposit of 10,000 for 1,000, a bank transfer
  // credited to the wrong user): the funds leave the books as a withdrawal would, with a reason
  // that the audit trail keeps. Only available funds: the user's orders are theirs to cancel.
  app.post<{ Body: { email: string; account?: number; asset: string; amount: string; reason: string; key?: string } }>('/debits', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['email', 'asset', 'amount', 'reason'],
        properties: {
          email: EMAIL, account: ACCOUNT_ID, asset: ASSET_CODE, amount: DECIMAL,
          reason: { type: 'string', minLength: 3, maxLength: 200, description: 'why: kept in the audit trail' },
          key: { type: 'string', minLength: 1, maxLength: 100, description: 'the debit applies once per key (a retry is refused DUPLICATE_KEY)' },
        },
      },
    },
  }, async (request, reply) => {
    const { email, asset: code, amount: text, reason } = request.body;
    const account = accountOf(email, request.body.account);
    const asset = exchange.engine.assets.get(code);
    if (asset === undefined) throw new ApiError(404, 'UNKNOWN_ASSET', `unknown asset ${code}`);
    const amount = decimalIn(text, asset.precision, 'amount');
    const key = `admin-debit:${request.body.key ?? randomUUID()}`;
    const available = () => formatMinor(exchange.engine.balance(account, asset.code).available, asset.precision);
    try {
      await submit({ type: 'debit', account, asset: asset.code, amount, key });
    } catch (error) {
      if (error instanceof ApiError && error.code === 'INSUFFICIENT_BALANCE') {
        throw new ApiError(error.status, error.code, `account ${account} has ${available()} ${asset.code} available (funds reserved for orders or locked for a withdrawal are not debited)`);
      }
      throw error;
    }
    void reply.status(201);
    return { email, account, asset: asset.code, amount: text, reason, key, available: available() };
  });

  // Addresses refused before anything else is done for them (the admin API excepted).
  app.post<{ Body: { cidr: string; reason: string; minutes?: number } }>('/blocks', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['cidr', 'reason'],
        properties: {
          cidr: { type: 'string', minLength: 2, maxLength: 64, description: 'an address or CIDR block, IPv4 or IPv6' },
          reason: { type: 'string', minLength: 3, maxLength: 200 }, minutes: { type: 'integer', minimum: 1, maximum: 5_256_000 },
        },
      },
    },
  }, async (request, reply) => {
    let block;
    try {
      block = exchange.addressBlocks.block(request.body.cidr, request.body.reason, operatorOf(request), request.body.minutes);
    } catch (error) {
      throw new ApiError(400, 'INVALID_IP', (error as Error).message);
    }
    void reply.status(201);
    return blockOut(block);
  });

  app.get('/blocks', async () => ({ blocks: exchange.addressBlocks.all().map(blockOut) }));

  app.delete<{ Querystring: { cidr: string } }>('/blocks', {
    schema: { querystring: { type: 'object', additionalProperties: false, required: ['cidr'], properties: { cidr: { type: 'string', minLength: 2, maxLength: 64 } } } },
  }, async (request) => {
    if (!exchange.addressBlocks.unblock(request.query.cidr)) throw new ApiError(404, 'NOT_BLOCKED', `${request.query.cidr} is not blocked`);
    return { cidr: request.query.cidr, blocked: false };
  });

  // Bans the gateway made by itself (rate-bans.ts): listed, and lifted by the operator.
  app.get('/rate-bans', async () => {
    const now = exchange.clock();
    return { bans: rateBans.all(now).map((ban) => ({ subject: ban.subject, until: ban.until, seconds_left: Math.ceil((ban.until - now) / 1000), bans: ban.bans })) };
  });

  app.delete<{ Querystring: { subject: string } }>('/rate-bans', {
    schema: { querystring: { type: 'object', additionalProperties: false, required: ['subject'], properties: { subject: { type: 'string', minLength: 4, maxLength: 200, description: 'as listed: ip:ADDRESS, ip:PREFIX::/64 or key:KEY' } } } },
  }, async (request) => {
    if (!rateBans.lift(request.query.subject, exchange.clock())) throw new ApiError(404, 'NOT_BANNED', `${request.query.subject} is not banned`);
    return { subject: request.query.subject, banned: false };
  });

  app.get<{ Querystring: { email: string; limit?: string } }>('/users/logins', {
    schema: { querystring: { type: 'object', additionalProperties: false, required: ['email'], properties: { email: EMAIL, limit: { type: 'string', pattern: '^[0-9]{1,3}$' } } } },
  }, async (request) => {
    const user = userByEmail(request.query.email);
    return { email: user.email, logins: loginsOut(exchange, user.id, request.query.limit) };
  });

  // What the account's owner sees with a read key, for support: orders, fills and ledger, paged
  // as the native API pages them. `account` is one of the user's (default: the main one).
  type AccountQuery = { email: string; account?: string } & PageQuery;
  const accountQuery = (extra: Record<string, unknown>) => ({
    type: 'object', additionalProperties: false, required: ['email'],
    properties: { email: EMAIL, account: { type: 'string', pattern: '^[0-9]{1,16}$' }, ...PAGE_FIELDS, ...extra },
  });
  const accountIn = (q: AccountQuery): number => accountOf(q.email, q.account === undefined ? undefined : Number(q.account));

  app.get<{ Querystring: AccountQuery & { market?: string; status?: 'open' | 'all' } }>('/accounts/orders', {
    schema: { querystring: accountQuery({ market: { type: 'string', maxLength: 40 }, status: { type: 'string', enum: ['open', 'all'] } }) },
  }, async (request) => {
    const account = accountIn(request.query);
    return { account, ...await ordersListing(exchange, account, request.query, 1_000) };
  });

  app.get<{ Querystring: AccountQuery & { market?: string } }>('/accounts/trades', {
    schema: { querystring: accountQuery({ market: { type: 'string', maxLength: 40 } }) },
  }, async (request) => {
    const account = accountIn(request.query);
    return { account, ...await fillsListing(exchange, account, request.query, 1_000) };
  });

  app.get<{ Querystring: AccountQuery & { asset?: string } }>('/accounts/ledger', {
    schema: { querystring: accountQuery({ asset: ASSET_CODE }) },
  }, async (request) => {
    const account = accountIn(request.query);
    return { account, ...await ledgerListing(exchange, account, request.query, 1_000) };
  });

  // The same as CSV files, for a statement support sends or an authority asks for.
  app.get<{ Params: { kind: ExportKind }; Querystring: ExportQuery & { email: string } }>('/accounts/exports/:kind', {
    schema: { params: EXPORT_KIND_PARAM, querystring: exportQuerySchema({ email: EMAIL }, ['email']) },
  }, async (request, reply) => {
    const { email, ...query } = request.query;
    return sendExport(reply, exchange, request.params.kind, accountOf(email, query.account === undefined ? undefined : Number(query.account)), query);
  });

  app.get<{ Querystring: { email?: string; kyc?: KycStatus; disabled?: 'true' | 'false'; before?: string; limit?: string } }>('/users', {
    schema: {
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          email: EMAIL, kyc: { type: 'string', enum: [...KYC_STATUSES] }, disabled: { type: 'string', enum: ['true', 'false'] },
          before: { type: 'string', pattern: '^[0-9]{1,16}$' }, limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
        },
      },
    },
  }, async (request) => {
    const q = request.query;
    if (q.email === undefined) {
      // A listing (a KYC review queue: ?kyc=PENDING), newest first.
      const limit = Math.min(Math.max(Number(q.limit ?? 100), 1), 1_000);
      const users = exchange.identity.listUsers({ kyc: q.kyc, disabled: q.disabled === undefined ? undefined : q.disabled === 'true', before: q.before === undefined ? undefined : Number(q.before), limit });
      return {
        users: users.map((u) => ({ id: u.id, email: u.email, kyc: u.kyc, level: u.level, two_factor: u.twoFactor, created_at: u.createdAt, disabled_at: u.disabledAt })),
        next_before: users.length === limit ? String(users.at(-1)!.id) : null,
      };
    }
    const user = userByEmail(q.email);
    const engine = exchange.engine;
    return {
      id: user.id, email: user.email, kyc: user.kyc, level: user.level, two_factor: user.twoFactor, created_at: user.createdAt,
      disabled_at: user.disabledAt,
      api_keys: exchange.identity.apiKeysOf(user.id).filter((k) => k.revokedAt === null).length,
      accounts: exchange.identity.accountsOf(user.id).map((a) => ({
        account: a.id, label: a.label, main: a.main, restriction: engine.accounts.get(a.id)?.restriction ?? 'none',
        open_orders: (engine.accounts.get(a.id)?.openInMarket ?? []).reduce((sum, n) => sum + n, 0),
        balances: engine.balances(a.id).map((b) => balanceOut(engine, b)),
      })),
    };
  });
}
