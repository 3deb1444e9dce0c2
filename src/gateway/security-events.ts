/**
 * A user's account activity: every change to what guards the account (password, second factor,
 * keys, address, anti-phishing code, withdrawal addresses, freezing), with when, by whom and from
 * where; the user reads it (GET /api/v1/auth/activity), support too (GET /admin/v1/users/activity).
 * Recorded where the change is made, with the request that made it.
 */
import type { FastifyRequest } from 'fastify';
import type { Exchange } from '../exchange.js';
import { SECURITY_EVENTS_KEPT } from '../identity/store.js';
import type { SecurityEventKind } from '../identity/store.js';
import { clientIp } from './server.js';

export function recordSecurityEvent(exchange: Exchange, request: FastifyRequest, userId: number, kind: SecurityEventKind, by: 'user' | 'support', detail = ''): void {
  const userAgent = request.headers['user-agent'];
  exchange.identity.recordSecurityEvent({
    userId, ts: exchange.clock(), kind, by, address: clientIp(request), userAgent: typeof userAgent === 'string' ? userAgent : '', detail,
  });
}

export function securityEventsOut(exchange: Exchange, userId: number, limit: string | undefined): Record<string, unknown>[] {
  const count = limit === undefined ? 50 : Math.min(Math.max(Number(limit), 1), SECURITY_EVENTS_KEPT);
  return exchange.identity.securityEventsOf(userId, count)
    .map((e) => ({ time: e.ts, event: e.kind, by: e.by, address: e.address, user_agent: e.userAgent, detail: e.detail }));
}

export const ACTIVITY_LIMIT = { type: 'string', pattern: '^[0-9]{1,3}$' } as const;
