/**
 * The audit trail of the admin API: each request the admin token admitted, kept in the identity
 * store with when, who, from where, the route, how it ended and what it was about, and the route
 * that lists them (GET /admin/v1/audit). Passwords never enter it: only chosen fields are kept.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Exchange } from '../exchange.js';

/** Fields of an admin request that say what it was about; anything else (a password) stays out of the audit trail. */
const SUBJECT_FIELDS = [
  'email', 'account', 'market', 'asset', 'amount', 'code', 'precision', 'base', 'quote', 'tick', 'lot', 'state', 'maker', 'taker', 'tiers',
  'level', 'kyc', 'restriction', 'cancel_orders', 'permissions', 'ip', 'key', 'id', 'name', 'max_open_orders', 'network', 'address', 'tag',
  'blocks', 'depth', 'reason', 'reference', 'bank_reference', 'operator', 'cidr', 'minutes', 'collar', 'expires_at', 'label', 'new_email', 'text', 'until',
] as const;

function subjectOf(request: FastifyRequest): Record<string, unknown> {
  const subject: Record<string, unknown> = {};
  for (const source of [request.params, request.query, request.body]) {
    if (source === null || typeof source !== 'object') continue;
    for (const field of SUBJECT_FIELDS) if (Object.hasOwn(source, field)) subject[field] = (source as Record<string, unknown>)[field];
  }
  return subject;
}

/** Who the request says made it: X-Bourse-Operator, printable and short, else "unnamed". */
export function operatorOf(request: FastifyRequest): string {
  const named = request.headers['x-bourse-operator'];
  return typeof named === 'string' && /^[\x20-\x7e]{1,64}$/.test(named) ? named : 'unnamed';
}

const AUDIT_PATH = '/admin/v1/audit';

/** Keeps an admitted admin request in the trail (reading the trail itself is not kept). */
export function recordAdminRequest(exchange: Exchange, request: FastifyRequest, reply: FastifyReply, address: string): void {
  if (request.routeOptions.url === AUDIT_PATH) return;
  try {
    exchange.identity.recordAdminAction({
      ts: exchange.clock(), operator: operatorOf(request), address, method: request.method,
      path: request.routeOptions.url ?? request.url.split('?')[0]!, status: reply.statusCode, subject: subjectOf(request),
    });
  } catch (error) {
    // The action is done and answered; a full disk must not turn that into an error.
    request.log.error({ err: error, admin: true, path: request.url }, 'admin audit not recorded');
  }
}

export function registerAdminAuditRoute(app: FastifyInstance, exchange: Exchange): void {
  app.get<{ Querystring: { before?: string; limit?: string } }>('/audit', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { before: { type: 'string', pattern: '^[0-9]{1,16}$' }, limit: { type: 'string', pattern: '^[0-9]{1,4}$' } } } },
  }, async (request) => {
    const limit = Math.min(Math.max(Number(request.query.limit ?? 100), 1), 1_000);
    const actions = exchange.identity.adminActions({ before: request.query.before === undefined ? undefined : Number(request.query.before), limit });
    return { actions, next_before: actions.length === limit ? String(actions.at(-1)!.id) : null };
  });
}
