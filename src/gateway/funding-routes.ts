/**
 * Native funding routes under /api/v1: deposit addresses and history, withdrawals (create,
 * confirm with 2FA, cancel, list, get), the withdrawal address allow-list, bank accounts,
 * transfers to other users. Moving money out needs a key with the `withdraw` permission.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Exchange } from '../exchange.js';
import type { DepositRow, Page as FundingPage, TransferRow, WithdrawalRow } from '../funding/store.js';
import { FundingError } from '../funding/service.js';
import { formatMinor } from '../money/index.js';
import { ApiError } from './errors.js';
import type { Gateway } from './server.js';
import { ACCOUNT_ID, DECIMAL, decimalIn } from './wire.js';
import { depositWire, withdrawalWire } from './funding-wire.js';
import { PAGE_FIELDS, pageLinks, pageOf } from './paging.js';
import type { PageQuery as HistoryPageQuery } from './paging.js';
import { recordSecurityEvent } from './security-events.js';
import { withdrawalAddressAddedMail } from '../mail/account-mails.js';

const ASSET = { type: 'string', pattern: '^[A-Z0-9]{1,12}$' } as const;
const REQUEST_ID = { type: 'string', pattern: '^[\\x21-\\x7e]{1,64}$' } as const;
const TOTP = { type: 'string', pattern: '^[0-9]{6}$' } as const;
const ID_PARAM = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9]{1,16}$' } } } as const;
const PAGE_QUERY = {
  type: 'object', additionalProperties: false,
  properties: { asset: ASSET, state: { type: 'string', maxLength: 20 }, ...PAGE_FIELDS },
} as const;

type PageQuery = { asset?: string; state?: string } & HistoryPageQuery;

export async function registerFundingRoutes(app: FastifyInstance, exchange: Exchange, gateway: Gateway): Promise<void> {
  const read = gateway.authenticate('read');
  const withdraw = gateway.authenticate('withdraw');
  const funding = () => exchange.funding;
  const userOf = (request: FastifyRequest) => exchange.identity.user(request.apiKey!.userId)!;
  const scale = (asset: string): number => exchange.engine.assets.get(asset)?.precision ?? 0;
  /** A funding listing's page as the native history listings page: ids either way, and a time range. */
  const listed = <T extends { id: number }>(query: PageQuery, list: (page: FundingPage) => T[]) => {
    const page = pageOf(query, 50, 500);
    const rows = list(page);
    return { rows, links: pageLinks(rows, page, (row) => row.id) };
  };
  const amountIn = (asset: string, text: string): number => {
    funding().rulesOf(asset);
    return decimalIn(text, scale(asset), 'amount');
  };

  /**
   * Funding's own two-factor checks wait behind the lockouts and count toward them, as the session
   * routes' do: otherwise a stolen withdraw key could guess six digits at its full request rate.
   */
  const withSecondFactor = async <T>(request: FastifyRequest, code: string | undefined, run: () => T | Promise<T>): Promise<T> => {
    const email = userOf(request).email;
    const now = exchange.clock();
    if (code !== undefined) gateway.logins.lockedOut(request, email, now);
    try {
      return await run();
    } catch (error) {
      if (error instanceof FundingError && error.code === 'INVALID_TOTP') gateway.logins.recordFailure(request, email, now);
      throw error;
    }
  };

  const depositOut = (d: DepositRow) => depositWire(exchange, d);
  const withdrawalOut = (w: WithdrawalRow) => withdrawalWire(exchange, w);

  const suspensionsOut = (asset: string) => {
    const deposits = funding().suspension(asset, 'deposits');
    const withdrawals = funding().suspension(asset, 'withdrawals');
    return {
      deposits: deposits === null ? 'enabled' : 'suspended', withdrawals: withdrawals === null ? 'enabled' : 'suspended',
      notice: withdrawals?.reason ?? deposits?.reason ?? null,
    };
  };

  app.get('/funding/assets', { config: { weight: 1 } }, async () => ({
    assets: funding().assets().map((a) => ({
      asset: a.asset, network: a.network, rail: a.rail, tag: a.tag, confirmations: a.confirmations,
      min_withdrawal: formatMinor(a.minWithdrawal, a.precision), withdrawal_fee: formatMinor(a.feeFixed, a.precision), withdrawal_fee_rate: formatMinor(a.feePpm, 6, true),
      ...suspensionsOut(a.asset),
    })),
  }));

  app.get<{ Querystring: { asset: string } }>('/deposit-address', {
    schema: { querystring: { type: 'object', required: ['asset'], additionalProperties: false, properties: { asset: ASSET } } }, preValidation: read, config: { weight: 2 },
  }, async (request) => funding().depositAddress(request.apiKey!.userId, request.query.asset));

  app.get('/deposit-reference', { preValidation: read, config: { weight: 1 } }, async (request) => ({
    reference: funding().depositReference(request.apiKey!.userId),
    note: 'Quote this reference on a SEPA or SPEI transfer to the exchange; it credits your account once the bank transfer arrives.',
  }));

  app.get<{ Querystring: PageQuery }>('/deposits', { schema: { querystring: PAGE_QUERY }, preValidation: read, config: { weight: 2 } }, async (request) => {
    const { rows, links } = listed(request.query, (page) => funding().deposits(request.apiKey!.userId, request.query, page));
    return { deposits: rows.map(depositOut), ...links };
  });

  app.get('/funding/pending', { preValidation: read, config: { weight: 1 } }, async (request) => ({
    pending: [...funding().pending(request.apiKey!.userId)].map(([asset, amount]) => ({ asset, amount: formatMinor(amount, scale(asset)) })),
  }));

  app.post<{ Body: { asset: string; amount: string; address?: string; tag?: string; bank_account_id?: string; request_id: string; totp?: string } }>('/withdrawals', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['asset', 'amount', 'request_id'],
        properties: { asset: ASSET, amount: DECIMAL, address: { type: 'string', minLength: 1, maxLength: 128 }, tag: { type: 'string', minLength: 1, maxLength: 1024 }, bank_account_id: { type: 'string', pattern: '^[0-9]{1,16}$' }, request_id: REQUEST_ID, totp: TOTP },
      },
    },
    preValidation: withdraw, config: { weight: 5 },
  }, async (request, reply) => {
    const body = request.body;
    const row = await withSecondFactor(request, body.totp, () => funding().requestWithdrawal(userOf(request), request.apiKey!.account, {
      asset: body.asset, amount: amountIn(body.asset, body.amount), address: body.address, tag: body.tag,
      bankAccountId: body.bank_account_id === undefined ? undefined : Number(body.bank_account_id), requestKey: body.request_id, code: body.totp,
    }));
    void reply.status(201);
    return withdrawalOut(row);
  });

  app.post<{ Params: { id: string }; Body: { totp: string } }>('/withdrawals/:id/confirm', {
    schema: { params: ID_PARAM, body: { type: 'object', additionalProperties: false, required: ['totp'], properties: { totp: TOTP } } }, preValidation: withdraw, config: { weight: 5 },
  }, async (request) => withdrawalOut(await withSecondFactor(request, request.body.totp,
    () => funding().confirmWithdrawal(userOf(request), Number(request.params.id), request.body.totp))));

  app.delete<{ Params: { id: string } }>('/withdrawals/:id', { schema: { params: ID_PARAM }, preValidation: withdraw, config: { weight: 2 } }, async (request) =>
    withdrawalOut(await funding().cancelWithdrawal(request.apiKey!.userId, Number(request.params.id))));

  app.get<{ Querystring: PageQuery }>('/withdrawals', { schema: { querystring: PAGE_QUERY }, preValidation: read, config: { weight: 2 } }, async (request) => {
    const { rows, links } = listed(request.query, (page) => funding().withdrawals(request.apiKey!.userId, request.query, page));
    return { withdrawals: rows.map(withdrawalOut), ...links };
  });

  app.get('/withdrawals/limits', { preValidation: read, config: { weight: 2 } }, async (request) => {
    const user = userOf(request);
    return {
      level: user.level,
      assets: funding().withdrawalAllowances(user).map(({ rules, limit, used }) => ({
        asset: rules.asset, daily_limit: limit === null ? null : formatMinor(limit, rules.precision), used_24h: formatMinor(used, rules.precision),
        remaining: limit === null ? null : formatMinor(Math.max(0, limit - used), rules.precision),
      })),
    };
  });

  app.get<{ Params: { id: string } }>('/withdrawals/:id', { schema: { params: ID_PARAM }, preValidation: read, config: { weight: 1 } }, async (request) => {
    const row = funding().withdrawal(Number(request.params.id));
    if (row === undefined || row.user_id !== request.apiKey!.userId) throw new ApiError(404, 'UNKNOWN_WITHDRAWAL', `no withdrawal ${request.params.id}`);
    return withdrawalOut(row);
  });

  app.get('/withdrawal-addresses', { preValidation: read, config: { weight: 1 } }, async (request) => ({
    addresses: funding().allowedAddresses(request.apiKey!.userId).map((a) => ({ asset: a.asset, address: a.address, tag: a.tag === '' ? null : a.tag, label: a.label, created_at: a.created_at, usable_at: a.usable_at })),
  }));

  app.post<{ Body: { asset: string; address: string; tag?: string; label?: string; totp?: string } }>('/withdrawal-addresses', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['asset', 'address'],
        properties: { asset: ASSET, address: { type: 'string', minLength: 1, maxLength: 128 }, tag: { type: 'string', minLength: 1, maxLength: 1024 }, label: { type: 'string', maxLength: 100 }, totp: TOTP },
      },
    },
    preValidation: withdraw, config: { weight: 5 },
  }, async (request, reply) => {
    const asked = exchange.clock();
    const row = await withSecondFactor(request, request.body.totp, () => funding().allowAddress(userOf(request),
      { asset: request.body.asset, address: request.body.address, tag: request.body.tag, label: request.body.label ?? '', code: request.body.totp }));
    // An address already on the list is answered as it stands, and is no news.
    if (row.created_at >= asked) {
      recordSecurityEvent(exchange, request, row.user_id, 'withdrawal_address_added', 'user', `${row.asset} ${row.address}${row.tag === '' ? '' : ` (tag ${row.tag})`} with key ${request.apiKey!.key}`);
      gateway.mailer.send(withdrawalAddressAddedMail(gateway.mailer.config, userOf(request).email, { asset: row.asset, address: row.address, tag: row.tag, usableAt: row.usable_at }));
    }
    void reply.status(201);
    return { asset: row.asset, address: row.address, tag: row.tag === '' ? null : row.tag, label: row.label, created_at: row.created_at, usable_at: row.usable_at };
  });

  app.delete<{ Querystring: { asset: string; address: string; tag?: string } }>('/withdrawal-addresses', {
    schema: { querystring: { type: 'object', additionalProperties: false, required: ['asset', 'address'], properties: { asset: ASSET, address: { type: 'string', maxLength: 128 }, tag: { type: 'string', maxLength: 1024 } } } },
    preValidation: withdraw, config: { weight: 2 },
  }, async (request) => {
    if (!funding().removeAllowedAddress(request.apiKey!.userId, request.query.asset, request.query.address, request.query.tag ?? '')) throw new ApiError(404, 'UNKNOWN_ADDRESS', 'no such allow-listed address');
    recordSecurityEvent(exchange, request, request.apiKey!.userId, 'withdrawal_address_removed', 'user', `${request.query.asset} ${request.query.address}${request.query.tag === undefined ? '' : ` (tag ${request.query.tag})`} with key ${request.apiKey!.key}`);
    return { removed: true };
  });

  app.get('/bank-accounts', { preValidation: read, config: { weight: 1 } }, async (request) => ({
    bank_accounts: funding().bankAccounts(request.apiKey!.userId).map((b) => ({ id: String(b.id), rail: b.rail, holder: b.holder, iban: b.iban, bic: b.bic, clabe: b.clabe, created_at: b.created_at })),
  }));

  app.post<{ Body: { rail: 'sepa' | 'spei'; holder: string; iban?: string; bic?: string; clabe?: string } }>('/bank-accounts', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['rail', 'holder'],
        properties: { rail: { type: 'string', enum: ['sepa', 'spei'] }, holder: { type: 'string', maxLength: 140 }, iban: { type: 'string', maxLength: 64 }, bic: { type: 'string', maxLength: 16 }, clabe: { type: 'string', maxLength: 32 } },
      },
    },
    preValidation: withdraw, config: { weight: 5 },
  }, async (request, reply) => {
    const b = funding().addBankAccount(userOf(request), request.body);
    void reply.status(201);
    return { id: String(b.id), rail: b.rail, holder: b.holder, iban: b.iban, bic: b.bic, clabe: b.clabe, created_at: b.created_at };
  });

  const transferOut = (t: TransferRow, me: number) => ({
    id: String(t.id), request_id: t.from_user === me ? t.request_key : null,
    direction: t.from_user === me && t.to_user === me ? 'internal' : t.from_user === me ? 'out' : 'in',
    from_account: t.from_user === me ? t.from_account : null, to_account: t.to_user === me ? t.to_account : null,
    counterparty: t.from_user === t.to_user ? null : exchange.identity.user(t.from_user === me ? t.to_user : t.from_user)?.email ?? null,
    asset: t.asset, amount: formatMinor(t.amount, scale(t.asset)), created_at: t.created_at,
  });

  app.post<{ Body: { to_email?: string; to_account?: number; asset: string; amount: string; request_id: string } }>('/transfers', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['asset', 'amount', 'request_id'],
        properties: {
          to_email: { type: 'string', minLength: 3, maxLength: 254 }, to_account: ACCOUNT_ID,
          asset: ASSET, amount: DECIMAL, request_id: REQUEST_ID,
        },
      },
    },
    preValidation: withdraw, config: { weight: 2 },
  }, async (request, reply) => {
    const { body } = request;
    if ((body.to_email === undefined) === (body.to_account === undefined)) throw new ApiError(400, 'INVALID_REQUEST', 'give exactly one of to_email (another user) and to_account (one of yours)');
    const asset = exchange.engine.assets.get(body.asset);
    if (asset === undefined) throw new ApiError(404, 'UNKNOWN_ASSET', `unknown asset ${body.asset}`);
    const result = await funding().transfer(userOf(request), request.apiKey!.account, {
      toEmail: body.to_email, toAccount: body.to_account, asset: asset.code, amount: decimalIn(body.amount, asset.precision, 'amount'), requestKey: body.request_id,
    });
    void reply.status(result.created ? 201 : 200);
    return transferOut(result, request.apiKey!.userId);
  });

  app.get<{ Querystring: PageQuery }>('/transfers', { schema: { querystring: PAGE_QUERY }, preValidation: read, config: { weight: 2 } }, async (request) => {
    const { rows, links } = listed(request.query, (page) => funding().transfers(request.apiKey!.userId, page));
    return { transfers: rows.map((t) => transferOut(t, request.apiKey!.userId)), ...links };
  });
}
