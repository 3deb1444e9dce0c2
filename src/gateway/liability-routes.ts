/**
 * Proof of liabilities over the API (funding/liabilities.ts): the operator publishes a report
 * (POST /admin/v1/liabilities); anyone reads the published totals and root hashes
 * (GET /api/v1/liabilities); a user fetches their own leaf and path to the root
 * (GET /api/v1/account/liabilities) and checks it as the README tells, or with
 * `bourse verify-liabilities`.
 */
import type { FastifyInstance } from 'fastify';
import type { Exchange } from '../exchange.js';
import type { LiabilityReport } from '../funding/liabilities.js';
import { LiabilityReportBusy } from '../funding/liabilities.js';
import { operatorOf } from './admin-audit.js';
import { ApiError } from './errors.js';
import { limitOf, LIMIT_QUERY } from './paging.js';
import type { Gateway } from './server.js';
import { STRING } from './wire.js';

const HASH = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const AMOUNTS = { type: 'array', items: STRING, description: 'one decimal amount per asset, in the order of `assets`' } as const;

const LIABILITY_REPORT_OUT = {
  type: 'object',
  properties: {
    id: STRING, seq: { type: 'integer', description: 'the journal sequence number the balances are as of' }, time: { type: 'integer' },
    users: { type: 'integer', description: 'leaves in the tree: every user with an account' },
    root_hash: HASH,
    totals: { type: 'object', additionalProperties: STRING, description: 'what the exchange owes its users in each asset: the root\'s sums' },
  },
} as const;

const PROOF_OUT = {
  type: 'object',
  properties: {
    report: LIABILITY_REPORT_OUT,
    assets: { type: 'array', items: { type: 'object', properties: { asset: STRING, precision: { type: 'integer' } } } },
    root: { type: 'object', properties: { hash: HASH, sums: AMOUNTS } },
    leaf: { type: 'object', properties: { salt: STRING, balances: AMOUNTS } },
    path: {
      type: 'array',
      items: { type: 'object', properties: { side: { type: 'string', enum: ['left', 'right'] }, hash: HASH, sums: AMOUNTS } },
      description: 'the siblings from the leaf up to the root, each on the side where it sits',
    },
  },
} as const;

function liabilityReportOut(report: LiabilityReport): Record<string, unknown> {
  return {
    id: String(report.id), seq: report.seq, time: report.takenAt, users: report.users, root_hash: report.rootHash,
    totals: Object.fromEntries(report.assets.map((a, i) => [a.asset, report.totals[i]!])),
  };
}

export function registerLiabilityRoutes(app: FastifyInstance, exchange: Exchange, gateway: Gateway): void {
  const read = gateway.authenticate('read');

  app.get<{ Querystring: { limit?: string } }>('/liabilities', {
    schema: {
      description: 'Published proof-of-liabilities reports, newest first.',
      querystring: { type: 'object', additionalProperties: false, properties: { limit: LIMIT_QUERY } },
      response: { 200: { type: 'object', properties: { reports: { type: 'array', items: LIABILITY_REPORT_OUT } } } },
    },
    config: { weight: 2 },
  }, async (request) => ({ reports: exchange.liabilities.reports(limitOf(request.query.limit, 10, 100)).map(liabilityReportOut) }));

  app.get<{ Querystring: { report?: string } }>('/account/liabilities', {
    schema: {
      description: "The user's leaf in a proof-of-liabilities report (the newest unless `report` names one) and its path to the root.",
      querystring: { type: 'object', additionalProperties: false, properties: { report: { type: 'string', pattern: '^[0-9]{1,16}$' } } },
      response: { 200: PROOF_OUT },
    },
    preValidation: read, config: { weight: 2 },
  }, async (request) => {
    const reportId = request.query.report === undefined ? undefined : Number(request.query.report);
    const found = exchange.liabilities.proof(request.apiKey!.userId, reportId);
    if (found === undefined) {
      throw new ApiError(404, 'NOT_IN_REPORT', reportId === undefined ? 'no report counts this user yet' : `report ${reportId} does not exist or does not count this user`);
    }
    return { report: liabilityReportOut(found.report), ...found.proof };
  });
}

export function registerAdminLiabilityRoutes(app: FastifyInstance, exchange: Exchange): void {
  app.post('/liabilities', {
    schema: { description: "Publishes a proof-of-liabilities report of every user's balances as of now." },
  }, async (request, reply) => {
    try {
      const report = await exchange.liabilities.publish(operatorOf(request));
      void reply.status(201);
      return liabilityReportOut(report);
    } catch (error) {
      if (error instanceof LiabilityReportBusy) throw new ApiError(409, 'REPORT_IN_PROGRESS', error.message);
      throw error;
    }
  });
}
