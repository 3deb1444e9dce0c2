/**
 * Admin routes for the mail queue (under /admin/v1): what waits to go out or was given up on,
 * with why, and the operator's retry (once the mail server is mended) or drop; and a test mail
 * that checks the mail settings at once. Subjects and
 * texts are not shown: they carry the users' codes.
 */
import type { FastifyInstance } from 'fastify';
import type { Mailer } from '../mail/mailer.js';
import type { QueuedState } from '../mail/mail-queue.js';
import { ApiError } from './errors.js';
import { EMAIL } from './wire.js';

const ID_BODY = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'integer', minimum: 1 } } } as const;

export function registerAdminMailRoutes(app: FastifyInstance, mailer: Mailer): void {
  app.get<{ Querystring: { state?: QueuedState; email?: string; limit?: number } }>('/mail', {
    schema: {
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { state: { type: 'string', enum: ['pending', 'failed'] }, email: EMAIL, limit: { type: 'integer', minimum: 1, maximum: 1000 } },
      },
    },
  }, async (request) => ({
    destination: mailer.destination,
    counts: mailer.queue.counts(),
    mails: mailer.queue.list({ state: request.query.state, to: request.query.email, limit: request.query.limit ?? 100 }).map((m) => ({
      id: m.id, purpose: m.purpose, to: m.to, state: m.state, attempts: m.attempts, queued_at: m.queuedAt,
      next_attempt_at: m.state === 'pending' ? m.nextAt : null, last_error: m.lastError,
    })),
  }));

  app.post<{ Body: { to: string } }>('/mail/test', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['to'], properties: { to: { ...EMAIL, pattern: '^[^\\s@]+@[^\\s@]+\\.[^\\s@]+$' } } } },
  }, async (request, reply) => {
    const result = await mailer.sendTest(request.body.to);
    // The server's refusal is the answer asked for, not a fault of the request: 502 says the mail server failed.
    return reply.status(result.sent ? 200 : 502).send(result);
  });

  app.post<{ Body: { id: number } }>('/mail/retry', { schema: { body: ID_BODY } }, async (request) => {
    if (!mailer.requeue(request.body.id)) throw new ApiError(404, 'UNKNOWN_MAIL', `no queued mail ${request.body.id}`);
    return { id: request.body.id, state: 'pending' };
  });

  app.post<{ Body: { id: number } }>('/mail/drop', { schema: { body: ID_BODY } }, async (request) => {
    if (!mailer.queue.drop(request.body.id)) throw new ApiError(404, 'UNKNOWN_MAIL', `no queued mail ${request.body.id}`);
    return { id: request.body.id, dropped: true };
  });
}
