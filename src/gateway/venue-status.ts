/**
 * The venue's status as traders and their bots read it before acting (GET /api/v1/status): whether
 * it takes orders at all, each market's state, the assets whose deposits or withdrawals the
 * operator suspended and why, and the operator's notice (a maintenance window, an incident). The
 * admin routes set and clear the notice.
 */
import type { FastifyInstance } from 'fastify';
import type { Exchange } from '../exchange.js';
import { MARKET_STATES } from '../core/index.js';
import { operatorOf } from './admin-audit.js';
import { ApiError, identityCall } from './errors.js';

const SUSPENSION = { type: 'object', properties: { asset: { type: 'string' }, reason: { type: 'string' }, since: { type: 'integer' } } } as const;
const STATUS = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['online', 'halted'], description: 'halted: the exchange takes no commands (its journal failed); every order is refused until the operator restarts it' },
    server_time: { type: 'integer' },
    markets: { type: 'object', properties: Object.fromEntries(MARKET_STATES.map((state) => [state, { type: 'array', items: { type: 'string' } }])) },
    deposits_suspended: { type: 'array', items: SUSPENSION },
    withdrawals_suspended: { type: 'array', items: SUSPENSION },
    notice: { type: 'object', nullable: true, properties: { text: { type: 'string' }, since: { type: 'integer' }, until: { type: 'integer', nullable: true } } },
  },
} as const;

export function registerStatusRoute(app: FastifyInstance, exchange: Exchange): void {
  app.get('/status', { schema: { response: { 200: STATUS } }, config: { weight: 1 } }, async () => {
    const now = exchange.clock();
    const markets = Object.fromEntries(MARKET_STATES.map((state) => [state, [] as string[]]));
    for (const market of exchange.engine.marketList) markets[market.state]!.push(market.id);
    const suspended = (kind: 'deposits' | 'withdrawals') => exchange.funding.assets().flatMap((rules) => {
      const suspension = exchange.funding.suspension(rules.asset, kind);
      return suspension === null ? [] : [{ asset: rules.asset, reason: suspension.reason, since: suspension.since }];
    });
    const notice = exchange.identity.venueNotice(now);
    return {
      status: exchange.sequencer.failed === null ? 'online' : 'halted', server_time: now, markets,
      deposits_suspended: suspended('deposits'), withdrawals_suspended: suspended('withdrawals'),
      notice: notice === null ? null : { text: notice.text, since: notice.since, until: notice.until },
    };
  });
}

export function registerNoticeRoutes(app: FastifyInstance, exchange: Exchange): void {
  app.post<{ Body: { text: string; until?: number } }>('/notice', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['text'],
        properties: { text: { type: 'string', minLength: 1, maxLength: 500 }, until: { type: 'integer', minimum: 0, maximum: 8_640_000_000_000_000 } },
      },
    },
  }, async (request) => {
    const now = exchange.clock();
    if (request.body.until !== undefined && request.body.until <= now) throw new ApiError(400, 'INVALID_REQUEST', 'until must be in the future');
    const notice = { text: request.body.text, actor: operatorOf(request), since: now, until: request.body.until ?? null };
    await identityCall(() => exchange.identity.setVenueNotice(notice));
    return notice;
  });

  app.delete('/notice', async () => ({ cleared: exchange.identity.clearVenueNotice() }));
}
