/**
 * Mail to the owners of API keys about to expire: a bot signing with such a key stops the moment
 * it expires, so its owner is told, once per key, when it has KEY_EXPIRY_NOTICE_MS left.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Exchange } from '../exchange.js';
import { apiKeyExpiringMail } from '../mail/account-mails.js';
import type { Mailer } from '../mail/mailer.js';

const KEY_EXPIRY_NOTICE_MS = 3 * 86_400_000;

/** Checks now and every `everyMs`; returns what stops it. */
export function noticeExpiringKeys(exchange: Exchange, mailer: Mailer, log: FastifyBaseLogger, everyMs: number): () => void {
  const check = (): void => {
    try {
      const now = exchange.clock();
      for (const key of exchange.identity.takeExpiringKeys(now, now + KEY_EXPIRY_NOTICE_MS)) {
        mailer.send(apiKeyExpiringMail(mailer.config, key.email, key));
      }
    } catch (error) {
      log.error({ err: error }, 'API key expiry notices not sent');
    }
  };
  check();
  const timer = setInterval(check, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
