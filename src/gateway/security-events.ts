/**
 * A user's account activity, and what every change of a credential does: every change to what guards the account (password, second factor,
 * keys, address, anti-phishing code, withdrawal addresses, freezing), with when, by whom and from
 * where; the user reads it (GET /api/v1/auth/activity), support too (GET /admin/v1/users/activity).
 * Recorded where the change is made, with the request that made it.
 */
import type { FastifyRequest } from 'fastify';
import type { Exchange } from '../exchange.js';
import type { Mail, Mailer } from '../mail/mailer.js';
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

/**
 * What a change of a credential (a password, an address, a second factor) does, wherever it is
 * made: the user's sessions end (all, or all but `keepSession`'s), withdrawals wait out the
 * credential hold, the change goes into the account's activity, and the mails tell of it. One
 * place, so that no route making such a change can leave a step out. Returns the sessions ended.
 */
export function credentialChanged(
  exchange: Exchange, mailer: Mailer, request: FastifyRequest, userId: number,
  change: { event: SecurityEventKind; by: 'user' | 'support'; detail?: string; mails: Mail[]; keepSession?: string },
): number {
  const ended = exchange.identity.endSessions(userId, change.keepSession);
  exchange.funding.credentialsChanged(userId);
  recordSecurityEvent(exchange, request, userId, change.event, change.by, change.detail);
  for (const mail of change.mails) mailer.send(mail);
  return ended;
}
