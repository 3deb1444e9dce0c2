/**
 * Admin funding routes (under /admin/v1, behind the admin token of admin-routes.ts): the
 * simulated chain, withdrawal review with an audit record of who decided, and incoming bank
 * transfers recorded by reference.
 */
import type { FastifyInstance } from 'fastify';
import type { Exchange } from '../exchange.js';
import type { Network } from '../funding/chains/addresses.js';
import type { WithdrawalRow } from '../funding/store.js';
import { formatMinor } from '../money/index.js';
import { ApiError } from './errors.js';
import { ASSET_CODE, DECIMAL, decimalIn, EMAIL } from './wire.js';
import { PAGE_FIELDS, pageLinks, pageOf } from './paging.js';
import type { PageQuery } from './paging.js';
import { withdrawalWire } from './funding-wire.js';

const OPERATOR = { type: 'string', minLength: 1, maxLength: 100 } as const;
const ID_PARAM = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9]{1,16}$' } } } as const;
const NETWORK = { type: 'string', enum: ['bitcoin', 'ethereum', 'ripple', 'stellar', 'nem'] } as const;

export function registerAdminFundingRoutes(app: FastifyInstance, exchange: Exchange): void {
  const funding = () => exchange.funding;
  const scale = (asset: string): number => exchange.engine.assets.get(asset)?.precision ?? 0;
  // The user's view of a withdrawal, plus who it belongs to and who approved it.
  const withdrawalOut = (w: WithdrawalRow) => ({
    ...withdrawalWire(exchange, w), user_id: w.user_id, email: exchange.identity.user(w.user_id)?.email ?? null, approved_by: w.approved_by,
  });

  app.post<{ Body: { asset: string; address: string; tag?: string; amount: string } }>('/chain/send', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['asset', 'address', 'amount'], properties: { asset: ASSET_CODE, address: { type: 'string', minLength: 1, maxLength: 128 }, tag: { type: 'string', maxLength: 1024 }, amount: DECIMAL } } },
  }, async (request, reply) => {
    const rules = funding().rulesOf(request.body.asset);
    if (rules.network === null) throw new ApiError(400, 'FIAT_ASSET', `${request.body.asset} is not on a chain`);
    const amount = decimalIn(request.body.amount, rules.precision, 'amount');
    const txid = exchange.chain.receive({ network: rules.network, address: request.body.address, tag: request.body.tag ?? null, asset: request.body.asset, amount });
    void reply.status(201);
    return { network: rules.network, txid, confirmations: 0 };
  });

  // Wallet maintenance: an asset's withdrawals (new ones refused, approved ones wait) or deposits
  // (no address handed out, arrivals credited later) stop until resumed.
  for (const kind of ['withdrawals', 'deposits'] as const) {
    app.post<{ Body: { asset: string; reason: string; operator: string } }>(`/${kind}/suspend`, {
      schema: { body: { type: 'object', additionalProperties: false, required: ['asset', 'reason', 'operator'], properties: { asset: ASSET_CODE, reason: { type: 'string', minLength: 3, maxLength: 200 }, operator: OPERATOR } } },
    }, async (request) => {
      funding().suspend(request.body.asset, kind, request.body.reason, request.body.operator);
      return { asset: request.body.asset, [kind]: 'suspended', ...funding().suspension(request.body.asset, kind)! };
    });

    app.post<{ Body: { asset: string; operator: string } }>(`/${kind}/resume`, {
      schema: { body: { type: 'object', additionalProperties: false, required: ['asset', 'operator'], properties: { asset: ASSET_CODE, operator: OPERATOR } } },
    }, async (request) => {
      if (!await funding().resume(request.body.asset, kind, request.body.operator)) throw new ApiError(409, 'NOT_SUSPENDED', `${request.body.asset} ${kind} are not suspended`);
      return { asset: request.body.asset, [kind]: 'enabled' };
    });
  }

  app.post<{ Body: { network: Network; blocks?: number } }>('/chain/mine', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['network'], properties: { network: NETWORK, blocks: { type: 'integer', minimum: 1, maximum: 1_000 } } } },
  }, async (request) => ({ network: request.body.network, height: exchange.chain.mine(request.body.network, request.body.blocks ?? 1) }));

  app.post<{ Body: { network: Network; depth: number } }>('/chain/reorg', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['network', 'depth'], properties: { network: NETWORK, depth: { type: 'integer', minimum: 1, maximum: 1_000 } } } },
  }, async (request) => ({ network: request.body.network, ...exchange.chain.reorg(request.body.network, request.body.depth) }));

  for (const action of ['pause', 'resume'] as const) {
    app.post<{ Body: { network: Network } }>(`/chain/${action}`, {
      schema: { body: { type: 'object', additionalProperties: false, required: ['network'], properties: { network: NETWORK } } },
    }, async (request) => {
      exchange.chain[action](request.body.network);
      if (action === 'resume') funding().kick();
      return { network: request.body.network, paused: action === 'pause' };
    });
  }

  app.get('/chain/outgoing', async () => ({
    transactions: exchange.chain.outgoing().map((t) => ({ ...t, amount: formatMinor(t.amount, scale(t.asset)), dropped: t.dropped === 1 })),
  }));

  // Every user's withdrawals (or one user's), newest first, paged as the user's own listing pages.
  app.get<{ Querystring: { state?: string; asset?: string; email?: string } & PageQuery }>('/withdrawals', {
    schema: {
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { state: { type: 'string', maxLength: 20 }, asset: ASSET_CODE, email: EMAIL, ...PAGE_FIELDS },
      },
    },
  }, async (request) => {
    const q = request.query;
    const user = q.email === undefined ? null : exchange.identity.userByEmail(q.email);
    if (user === undefined) throw new ApiError(404, 'UNKNOWN_USER', `no user ${q.email}`);
    const page = pageOf(q, 100, 1_000);
    const rows = funding().withdrawals(user?.id ?? null, { state: q.state, asset: q.asset }, page);
    return { withdrawals: rows.map(withdrawalOut), ...pageLinks(rows, page, (w) => w.id) };
  });

  app.post<{ Params: { id: string }; Body: { operator: string } }>('/withdrawals/:id/approve', {
    schema: { params: ID_PARAM, body: { type: 'object', additionalProperties: false, required: ['operator'], properties: { operator: OPERATOR } } },
  }, async (request) => withdrawalOut(await funding().approve(Number(request.params.id), request.body.operator)));

  app.post<{ Params: { id: string }; Body: { operator: string; reason: string } }>('/withdrawals/:id/reject', {
    schema: { params: ID_PARAM, body: { type: 'object', additionalProperties: false, required: ['operator', 'reason'], properties: { operator: OPERATOR, reason: { type: 'string', minLength: 1, maxLength: 200 } } } },
  }, async (request) => withdrawalOut(await funding().reject(Number(request.params.id), request.body.operator, request.body.reason)));

  app.post<{ Params: { id: string }; Body: { operator: string; reason: string } }>('/withdrawals/:id/fail', {
    schema: { params: ID_PARAM, body: { type: 'object', additionalProperties: false, required: ['operator', 'reason'], properties: { operator: OPERATOR, reason: { type: 'string', minLength: 1, maxLength: 200 } } } },
  }, async (request) => withdrawalOut(await funding().failStuck(Number(request.params.id), request.body.operator, request.body.reason)));

  app.get<{ Params: { id: string } }>('/withdrawals/:id/audit', { schema: { params: ID_PARAM } }, async (request) => ({
    audit: funding().auditTrail(`wd:${request.params.id}`).map((a) => ({ ...a, detail: JSON.parse(a.detail) as unknown })),
  }));

  app.post<{ Body: { reference: string; asset: string; amount: string; bank_reference: string; operator: string } }>('/fiat/deposits', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['reference', 'asset', 'amount', 'bank_reference', 'operator'],
        properties: { reference: { type: 'string', maxLength: 40 }, asset: ASSET_CODE, amount: DECIMAL, bank_reference: { type: 'string', minLength: 1, maxLength: 100 }, operator: OPERATOR },
      },
    },
  }, async (request, reply) => {
    const rules = funding().rulesOf(request.body.asset);
    const amount = decimalIn(request.body.amount, rules.precision, 'amount');
    const result = await funding().recordFiatDeposit({ reference: request.body.reference, asset: request.body.asset, amount, bankReference: request.body.bank_reference, actor: request.body.operator });
    void reply.status(result.created ? 201 : 200);
    const user = exchange.identity.user(result.userId)!;
    return { email: user.email, asset: request.body.asset, amount: request.body.amount, bank_reference: request.body.bank_reference, credited: true, duplicate: !result.created };
  });
}
