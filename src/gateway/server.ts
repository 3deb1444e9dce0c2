/**
 * The HTTP and WebSocket server: Fastify on one port, the native API under /api/v1, the admin
 * API under /admin/v1, /health. Every route declares its schema; every error is
 * {"error": {"code", "message"}} with a 4xx status, and nothing a client sends may cause a 5xx.
 */
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import proxyAddr from '@fastify/proxy-addr';
import Fastify, { LogController } from 'fastify';
import { parse as parseJson } from 'secure-json-parse';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { capConnectionsPerAddress } from './connection-cap.js';
import { registerMetrics } from './metrics.js';
import { documentRoute, withBudgetDocs } from './route-docs.js';
import type { SignedHook } from './route-docs.js';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { Exchange } from '../exchange.js';
import { Authenticator } from '../identity/auth.js';
import type { ApiKeyRecord, Permission } from '../identity/store.js';
import { RateLimiter } from '../identity/rate-limit.js';
import { DEFAULT_RATE_BANS, RateBans, type RateBan, type RateBanOptions } from '../identity/rate-bans.js';
import { addressSubject, allows, blockList, LOOPBACK, unwrapIpv4 } from '../identity/ip.js';
import { ApiError, authRefusal, errorBody, serviceRefusal } from './errors.js';
import { registerNativeRoutes } from './native-routes.js';
import { registerOrderBatchRoutes } from './order-batch.js';
import { registerExportRoutes } from './exports.js';
import { registerLiabilityRoutes } from './liability-routes.js';
import { registerFundingRoutes } from './funding-routes.js';
import { FundingError } from '../funding/service.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerSessionRoutes } from './session-routes.js';
import { registerSignupRoutes } from './signup-routes.js';
import { mailFundingChanges } from './funding-mails.js';
import { noticeExpiringKeys } from './key-expiry-notices.js';
import { loginGuards } from './login-guards.js';
import type { LoginGuards } from './login-guards.js';
import { DEFAULT_MAIL, DEFAULT_RETRY, Mailer } from '../mail/mailer.js';
import type { Mail, MailConfig, RetryPolicy } from '../mail/mailer.js';
import { openMailQueue } from '../mail/mail-queue.js';
import { attachWebSocket, DEFAULT_WS_OPTIONS } from './ws.js';
import type { SocketStats } from './ws.js';
import type { WsOptions } from './ws.js';
import { STRING } from './wire.js';

const HEALTH = {
  type: 'object', required: ['status', 'seq', 'read_model'],
  properties: {
    status: { type: 'string', enum: ['ok', 'failed'] }, seq: { type: 'integer' },
    error: { ...STRING, description: 'why the exchange stopped taking commands' },
    read_model: { ...STRING, description: "'ok', or 'failed: …' while a new projection thread catches up" },
  },
} as const;

declare module 'fastify' {
  interface FastifyRequest {
    rawBody: string;
    apiKey: ApiKeyRecord | null;
    /** The route's request weight (FastifyContextConfig.weight), set before any other hook runs. */
    weight: number;
    /** The least its address's and key's budgets had left (what X-RateLimit-Remaining says). */
    budgetLeft: number;
  }
  interface FastifyInstance {
    /** Mail to users; `settled()` resolves once what was sent so far is delivered (or failed). */
    mailer: Mailer;
  }
  interface FastifyContextConfig {
    /** What a request to the route draws from its address's and its key's budgets (default 1). */
    weight?: number;
  }
}

export interface ServerOptions {
  logger?: boolean;
  bodyLimitBytes?: number;
  /** Request weight per key per second. */
  keyWeightPerSecond?: number;
  /** Request weight per IP per second. */
  ipWeightPerSecond?: number;
  /**
   * New orders (placed or amended, over HTTP or the socket) per user per second, across all their
   * keys and accounts (default 2,000). Each key has a budget of its own and an account up to 30
   * keys, so without it one user's runaway bots could take the engine's whole capacity. Cancels
   * are never limited by it.
   */
  ordersPerSecondPerUser?: number;
  /** Bans for addresses and keys that keep sending after a 429 (rate-bans.ts). */
  rateBans?: Partial<RateBanOptions>;
  /**
   * Addresses or CIDR blocks never banned (default loopback): a reverse proxy on this host that
   * is not in trustProxy would otherwise get the whole venue banned for one client's flood, and a
   * developer's own bot would ban their machine. Their budgets still apply.
   */
  rateBanExempt?: string[];
  /** A request (headers and body) must arrive within this long, or it gets 408 (default 30 s). */
  requestTimeoutMs?: number;
  /**
   * Addresses or CIDR blocks of reverse proxies whose X-Forwarded-For is believed (default none):
   * behind one, budgets, lockouts and IP allow-lists must see the client, not the proxy.
   */
  trustProxy?: string[];
  /** Addresses or CIDR blocks the admin API answers (default loopback only: 127.0.0.0/8, ::1). */
  adminAllow?: string[];
  /** TCP connections (HTTP and WebSocket) one address may hold open; 0: no cap (default 500). */
  connectionsPerAddress?: number;
  ws?: Partial<WsOptions>;
  /** Mail to users: an SMTP server, or (default) .eml files in DATA/outbox. */
  mail?: MailConfig;
  /** How queued mail is retried (tests shorten the pauses). */
  mailRetry?: Partial<RetryPolicy>;
  /** How often owners of keys about to expire are looked for (default hourly). */
  keyExpiryCheckMs?: number;
  /** Whether anyone may sign up (POST /api/v1/auth/signup); default true. The operator can always create users. */
  registration?: { open: boolean };
}

/**
 * A route hook in Fastify's callback form: on the order path, a promise per hook per request
 * costs more than the check it wraps.
 */
export type RouteHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

export interface Gateway {
  app: FastifyInstance;
  /** A hook that verifies the request's signature and the key's permission; sets request.apiKey. */
  authenticate: (permission: Permission) => RouteHook;
  /**
   * The same budgets, for messages that do not come as HTTP requests (the socket), and for a
   * route's weight beyond its own (`answer`: the request whose rate-limit headers it updates).
   */
  chargeSubjects: (ip: string, key: string | null, weight: number, answer?: { request: FastifyRequest; reply: FastifyReply }) => void;
  /** The client's address for a raw request (a socket upgrade), as clientIp gives it for routes. */
  addressOf: (raw: IncomingMessage) => string;
  /**
   * Why anything arriving on this connection is refused before it is looked at, if it is: the
   * server is stopping (503), or the connection came in over its address's cap (429).
   */
  refusedAtTheDoor: (socket: Socket) => ApiError | undefined;
  /** A refusal for an address the operator blocked. */
  blockedAddress: (ip: string) => ApiError | undefined;
  /** Mail to users (sign-up codes, password resets, notices). */
  mailer: Mailer;
  /** Sessions, lockouts, second factors and the password budget, shared by the routes that take passwords. */
  logins: LoginGuards;
  /** Takes `count` new orders from the key's user's order budget (ordersPerSecondPerUser); throws 429 TOO_MANY_ORDERS beyond it. */
  chargeOrders: (key: ApiKeyRecord, count: number) => void;
  /** Addresses and keys banned for sending on after being refused for their budget. */
  rateBans: RateBans;
  /** Counts a refusal toward the subject's ban (an exempt address's own none); returns the ban it brings, if any. */
  countRefusal: (ip: string, subject: string, waitMs: number, now: number) => RateBan | undefined;
  /** What an address and a key may still spend of their request-weight budgets, and every route's weight. */
  budgets: (ip: string, key: ApiKeyRecord) => { key: Budget; address: Budget; orders: Budget; weights: Record<string, number> };
}

/** A request-weight budget: how much it refills to each second, and how much of it is there now. */
export interface Budget { per_second: number; available: number }

/** The token of an `Authorization: Bearer …` header, or '' (sessions and the admin API). */
export function bearerToken(request: FastifyRequest): string {
  const header = request.headers.authorization;
  return typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : '';
}

/** The request's address, IPv4 unwrapped from its IPv6 form (see unwrapIpv4). */
export function clientIp(request: FastifyRequest): string {
  return unwrapIpv4(request.ip);
}

export async function buildServer(exchange: Exchange, options: ServerOptions = {}): Promise<FastifyInstance> {
  // Without a limit (Fastify's default), a client that trickles a request in holds its connection
  // for ever: bound it, and check often enough that the bound means something.
  const requestTimeout = options.requestTimeoutMs ?? 30_000;
  const trusted = options.trustProxy ?? [];
  const trust = trusted.length > 0 ? proxyAddr.compile(trusted) : null;
  const addressOf = (raw: IncomingMessage): string => unwrapIpv4(trust === null ? raw.socket.remoteAddress ?? '' : proxyAddr(raw, trust));
  const app = Fastify({
    trustProxy: trusted.length > 0 ? trusted : false,
    requestTimeout,
    http: { requestTimeout, headersTimeout: requestTimeout, connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(requestTimeout / 10))) },
    logger: options.logger ?? false,
    // Per-request lines would cost more than the request at exchange rates; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes ?? 64 * 1024,
    // Amounts are strings: never coerce a JSON number into one, and refuse unknown fields.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    // Requests that arrive while the server closes are refused by our own hook (below), in this
    // API's error format rather than Fastify's.
    return503OnClosing: false,
  });

  // A client that half-closes after its request (shutdown(SHUT_WR), `nc -N`) still gets the
  // answer: by default Node ends such a socket at once, so an order placed that way was carried
  // out without the client ever learning its id. The socket closes after the last answer.
  (app.server as typeof app.server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  const connectionCap = options.connectionsPerAddress ?? 500;
  const connections = capConnectionsPerAddress(app.server, connectionCap, (peer) => trust !== null && trust(peer, 0));

  app.decorateRequest('rawBody', '');
  app.decorateRequest('apiKey', null);
  app.decorateRequest('weight', 1);
  app.decorateRequest('budgetLeft', Number.POSITIVE_INFINITY);
  // Our own JSON parser keeps the raw body for signatures; like Fastify's, it refuses `__proto__`
  // and `constructor.prototype` keys (secure-json-parse), which could poison objects built from it.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    request.rawBody = text;
    if (text.length === 0) return done(null, undefined);
    try {
      done(null, parseJson(text));
    } catch {
      done(new ApiError(400, 'INVALID_JSON', 'the body is not valid JSON, or carries a __proto__ or constructor.prototype key'), undefined);
    }
  });

  app.setErrorHandler((error: Error & { validation?: unknown; statusCode?: number; code?: string }, request, reply) => {
    const refusal = error instanceof ApiError ? error : serviceRefusal(error);
    if (refusal !== null) {
      if (refusal.retryAfterSeconds !== undefined) void reply.header('Retry-After', String(refusal.retryAfterSeconds));
      return reply.status(refusal.status).send(errorBody(refusal.code, refusal.message));
    }
    if (error instanceof FundingError) return reply.status(error.status).send(errorBody(error.code, error.message));
    if (error.validation !== undefined) return reply.status(400).send(errorBody('INVALID_REQUEST', error.message));
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      const code = error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'BODY_TOO_LARGE'
        : error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'UNSUPPORTED_MEDIA_TYPE' : 'INVALID_REQUEST';
      return reply.status(error.statusCode).send(errorBody(code, error.message));
    }
    request.log.error({ err: error }, 'unexpected error');
    return reply.status(500).send(errorBody('INTERNAL', 'internal error'));
  });

  const keyLimiter = new RateLimiter({ capacity: options.keyWeightPerSecond ?? 1_000, intervalMs: 1_000, subjectsMax: 100_000 });
  const ipLimiter = new RateLimiter({ capacity: options.ipWeightPerSecond ?? 2_000, intervalMs: 1_000, subjectsMax: 100_000 });
  const orderLimiter = new RateLimiter({ capacity: options.ordersPerSecondPerUser ?? 2_000, intervalMs: 1_000, subjectsMax: 100_000 });
  const chargeOrders = (key: ApiKeyRecord, count: number): void => {
    const wait = orderLimiter.take(`user:${key.userId}`, count, exchange.clock());
    if (wait > 0) {
      throw new ApiError(429, 'TOO_MANY_ORDERS', `at most ${orderLimiter.capacity} new orders a second per user, across all their keys and accounts; cancels are not limited`, Math.ceil(wait / 1000));
    }
  };

  const rateBans = new RateBans({ ...DEFAULT_RATE_BANS, ...options.rateBans }, {
    save: (ban) => exchange.identity.saveRateBan(ban),
    forget: (subject) => exchange.identity.forgetRateBan(subject),
    load: (since) => exchange.identity.rateBans(since),
  }, exchange.clock());
  const banExempt = blockList(options.rateBanExempt ?? LOOPBACK);
  const countRefusal = (ip: string, subject: string, waitMs: number, now: number): RateBan | undefined =>
    (subject.startsWith('ip:') && allows(banExempt, ip) ? undefined : rateBans.refused(subject, waitMs, now));
  const banned = (leftMs: number): ApiError => new ApiError(429, 'BANNED',
    'banned for sending on after being refused for the request budget; wait for Retry-After, and after a 429 always wait as long as it says', Math.ceil(leftMs / 1000));
  /** The refusal of a banned subject, if it is banned (while none is, one comparison). */
  const banOf = (subject: string, now: number): ApiError | undefined => {
    if (rateBans.none) return undefined;
    const left = rateBans.remaining(subject, now);
    return left > 0 ? banned(left) : undefined;
  };
  /** A refusal for the budget, which counts toward a ban if the subject should have been waiting. */
  const overBudget = (ip: string, subject: string, waitMs: number, now: number): ApiError => {
    const ban = countRefusal(ip, subject, waitMs, now);
    return ban === undefined ? new ApiError(429, 'RATE_LIMITED', 'request weight limit exceeded', Math.ceil(waitMs / 1000)) : banned(ban.until - now);
  };
  /**
   * Every answer says what its address's or key's budget has left, whichever is less, so that a
   * client paces itself without asking: X-RateLimit-Limit (weight per second) and
   * X-RateLimit-Remaining (weight left now). Both budgets refill continuously.
   */
  const tellBudget = (request: FastifyRequest, reply: FastifyReply, limiter: RateLimiter): void => {
    const left = Math.floor(limiter.left);
    if (left >= request.budgetLeft) return;
    request.budgetLeft = left;
    void reply.header('x-ratelimit-limit', limiter.capacity).header('x-ratelimit-remaining', left);
  };
  const chargeSubjects = (ip: string, key: string | null, weight: number, answer?: { request: FastifyRequest; reply: FastifyReply }): void => {
    const now = exchange.clock();
    const address = addressSubject(ip);
    const keySubject = key === null ? null : `key:${key}`;
    const ban = banOf(address, now) ?? (keySubject === null ? undefined : banOf(keySubject, now));
    if (ban !== undefined) throw ban;
    const waitIp = ipLimiter.take(address, weight, now);
    const waitKey = keySubject === null ? 0 : keyLimiter.take(keySubject, weight, now);
    if (answer !== undefined) {
      tellBudget(answer.request, answer.reply, ipLimiter);
      if (keySubject !== null) tellBudget(answer.request, answer.reply, keyLimiter);
    }
    const refusedIp = waitIp > 0 ? overBudget(ip, address, waitIp, now) : undefined;
    const refusedKey = waitKey > 0 ? overBudget(ip, keySubject!, waitKey, now) : undefined;
    if (refusedIp === undefined && refusedKey === undefined) return;
    throw [refusedIp, refusedKey].find((r) => r?.code === 'BANNED') ?? (waitIp >= waitKey ? refusedIp! : refusedKey!);
  };
  /** A synchronous check as a route hook: a throw becomes the request's error. */
  const asHook = (check: (request: FastifyRequest, reply: FastifyReply) => void): RouteHook => (request, reply, done) => {
    try {
      check(request, reply);
    } catch (error) {
      return done(error as Error);
    }
    done();
  };
  // Every request draws on its address's budget before anything else is done for it: unsigned,
  // malformed and unknown-route requests count as much as good ones. Its key's budget is charged
  // once the signature shows whose key it is (authenticate). Each route gets its own first hook
  // with its weight: reading request.routeOptions builds an object on every access.
  const chargeAddress = (request: FastifyRequest, reply: FastifyReply, weight: number, admin = false): ApiError | undefined => {
    request.weight = weight;
    const ip = clientIp(request);
    const subject = addressSubject(ip);
    const now = exchange.clock();
    const ban = admin ? undefined : banOf(subject, now);
    if (ban !== undefined) return ban;
    const wait = ipLimiter.take(subject, weight, now);
    tellBudget(request, reply, ipLimiter);
    return wait > 0 ? overBudget(ip, subject, wait, now) : undefined;
  };
  app.setNotFoundHandler((request, reply) => {
    const limited = refusedRequest(request, reply) ?? chargeAddress(request, reply, 1);
    if (limited !== undefined) throw limited;
    return reply.status(404).send(errorBody('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
  // Shutting down: a request that arrives gets 503 UNAVAILABLE with `Connection: close`, and each
  // connection goes as soon as it is idle. Node closes the idle ones once, as the server closes; a
  // connection busy then would, after its answer, be kept alive for keepAliveTimeout (72 s) and
  // hold the shutdown up until the client let go.
  let shuttingDown = false;
  app.addHook('preClose', (done) => {
    shuttingDown = true;
    const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
    sweep.unref();
    app.server.once('close', () => clearInterval(sweep));
    done();
  });
  const blockedAddress = (ip: string): ApiError | undefined =>
    (exchange.addressBlocks.blocking(ip) === undefined ? undefined : new ApiError(403, 'ADDRESS_BLOCKED', 'this address is blocked by the exchange'));
  const refusedAtTheDoor = (socket: Socket): ApiError | undefined =>
    shuttingDown ? new ApiError(503, 'UNAVAILABLE', 'the exchange is shutting down; retry shortly', 1)
      : connections.refused(socket) ? new ApiError(429, 'TOO_MANY_CONNECTIONS', `at most ${connectionCap} open connections per address`, 1)
        : undefined;
  /**
   * The same for a request, whose answer then closes the connection; and a request from an address
   * the operator blocked (the admin API, open to its own addresses only, is never blocked: an
   * operator cannot lock themselves out).
   */
  const refusedRequest = (request: FastifyRequest, reply: FastifyReply, admin = false): ApiError | undefined => {
    const refusal = refusedAtTheDoor(request.raw.socket) ?? (admin || exchange.addressBlocks.none ? undefined : blockedAddress(clientIp(request)));
    if (refusal !== undefined) void reply.header('connection', 'close');
    return refusal;
  };
  /** Each API route's request weight, by "METHOD /path", for clients that pace themselves. */
  const routeWeights = new Map<string, number>();
  app.addHook('onRoute', documentRoute);
  app.addHook('onRoute', (route) => {
    const weight = route.config?.weight ?? 1;
    const admin = route.url.startsWith('/admin/');
    if (route.url.startsWith('/api/')) for (const method of [route.method].flat()) if (method !== 'HEAD') routeWeights.set(`${method} ${route.url}`, weight);
    const charge: RouteHook = (request, reply, done) => done(refusedRequest(request, reply, admin) ?? chargeAddress(request, reply, weight, admin));
    route.onRequest = route.onRequest === undefined ? [charge] : [charge, ...[route.onRequest].flat()];
  });

  const verify = (request: FastifyRequest, reply: FastifyReply, permission: Permission): void => {
    const header = (name: string): string | undefined => {
      const value = request.headers[name];
      return typeof value === 'string' ? value : undefined;
    };
    const result = exchange.auth.verify({
      method: request.method, pathWithQuery: request.url, body: request.rawBody, key: header('x-bourse-key'),
      timestamp: header('x-bourse-timestamp'), recvWindow: header('x-bourse-recv-window'), signature: header('x-bourse-signature'),
      ip: clientIp(request), now: exchange.clock(),
    });
    if (!result.ok) throw authRefusal(result);
    if (!Authenticator.permits(result.key, permission)) {
      throw new ApiError(403, 'PERMISSION_DENIED', `this key lacks the ${permission} permission`);
    }
    const subject = `key:${result.key.key}`;
    const now = exchange.clock();
    const ban = banOf(subject, now);
    if (ban !== undefined) throw ban;
    const wait = keyLimiter.take(subject, request.weight, now);
    tellBudget(request, reply, keyLimiter);
    if (wait > 0) throw overBudget(clientIp(request), subject, wait, now);
    request.apiKey = result.key;
  };
  // Tagged with its permission, which the docs page reads (route-docs.ts).
  const authenticate = (permission: Permission): RouteHook => Object.assign(asHook((request, reply) => verify(request, reply, permission)), { signedPermission: permission } satisfies SignedHook);

  // Hooks first, so that they apply to every route registered below.
  let sockets: { clients: () => number; stats: SocketStats } | null = null;
  const mailUser = (mail: Mail) => (mail.userId === undefined ? exchange.identity.userByEmail(mail.to) : exchange.identity.user(mail.userId));
  const mailQueue = openMailQueue(join(exchange.dataDir, 'mail.db'), exchange.identity.derivedKey('mail queue'), Date.now(), app.log);
  const mailer = new Mailer(options.mail ?? DEFAULT_MAIL, join(exchange.dataDir, 'outbox'), mailQueue, app.log, {
    turnedOff: (mail, group) => { const user = mailUser(mail); return user !== undefined && exchange.identity.mailTurnedOff(user.id).includes(group); },
    antiPhishing: (mail) => { const user = mailUser(mail); return user === undefined ? null : exchange.identity.antiPhishingOf(user.email); },
    freezeCode: (mail) => { const user = mailUser(mail); return user === undefined ? null : exchange.identity.createFreezeCode(user.id, exchange.clock()); },
  }, { retry: { ...DEFAULT_RETRY, ...options.mailRetry } });
  app.decorate('mailer', mailer);
  app.addHook('onClose', async () => mailer.close());
  registerMetrics(app, exchange, () => sockets, mailer, rateBans);
  rateBans.onBan((ban) => app.log.warn({ subject: ban.subject, until: new Date(ban.until).toISOString(), bans: ban.bans }, 'banned for sending on after 429s'));
  await app.register(swagger, {
    transform: ({ schema, url }) => ({ schema: withBudgetDocs(schema as Record<string, unknown> | undefined, url) as typeof schema, url }),
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Bourse native API', version: '1', description: 'Amounts and prices are decimal strings. Private routes are signed: see the README.' },
      components: {
        securitySchemes: {
          key: { type: 'apiKey', in: 'header', name: 'X-BOURSE-KEY' },
          timestamp: { type: 'apiKey', in: 'header', name: 'X-BOURSE-TIMESTAMP' },
          signature: { type: 'apiKey', in: 'header', name: 'X-BOURSE-SIGNATURE', description: 'hex HMAC-SHA256(secret, timestamp + METHOD + path-with-query + body)' },
          admin: { type: 'http', scheme: 'bearer', description: 'the token in DATA/admin.token' },
          session: { type: 'http', scheme: 'bearer', description: 'a session token from POST /api/v1/auth/login' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  // Whoever opens the server's address in a browser lands on the API documentation.
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/docs/', 302));
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // Probes and load balancers read the status: 503 once the exchange takes no commands. A failed
  // read model alone keeps 200, since trading goes on while a new projection thread catches up.
  app.get('/health', { schema: { tags: ['operations'], response: { 200: HEALTH, 503: HEALTH } } }, async (_request, reply) => {
    const failed = exchange.sequencer.failed;
    return reply.status(failed === null ? 200 : 503).send({
      status: failed === null ? 'ok' : 'failed', seq: exchange.sequencer.lastSeq,
      ...(failed === null ? {} : { error: failed.message }),
      read_model: exchange.readModelFailure === null ? 'ok' : `failed: ${exchange.readModelFailure}`,
    });
  });
  const budgets = (ip: string, key: ApiKeyRecord) => {
    const now = exchange.clock();
    return {
      key: { per_second: keyLimiter.capacity, available: Math.floor(keyLimiter.available(`key:${key.key}`, now)) },
      address: { per_second: ipLimiter.capacity, available: Math.floor(ipLimiter.available(addressSubject(ip), now)) },
      orders: { per_second: orderLimiter.capacity, available: Math.floor(orderLimiter.available(`user:${key.userId}`, now)) },
      weights: Object.fromEntries(routeWeights),
    };
  };
  const stopFundingMails = mailFundingChanges(exchange, mailer);
  const stopKeyNotices = noticeExpiringKeys(exchange, mailer, app.log, options.keyExpiryCheckMs ?? 3_600_000);
  app.addHook('onClose', async () => { stopFundingMails(); stopKeyNotices(); });
  const gateway: Gateway = { app, authenticate, chargeSubjects, addressOf, refusedAtTheDoor, blockedAddress, chargeOrders, rateBans, countRefusal, budgets, mailer, logins: loginGuards(exchange) };
  await app.register(async (scope) => registerNativeRoutes(scope, exchange, gateway), { prefix: '/api/v1' });
  await app.register(async (scope) => registerOrderBatchRoutes(scope, exchange, gateway), { prefix: '/api/v1' });
  await app.register(async (scope) => registerExportRoutes(scope, exchange, gateway), { prefix: '/api/v1' });
  await app.register(async (scope) => registerLiabilityRoutes(scope, exchange, gateway), { prefix: '/api/v1' });
  await app.register(async (scope) => registerFundingRoutes(scope, exchange, gateway), { prefix: '/api/v1' });
  await app.register(async (scope) => {
    await registerSessionRoutes(scope, exchange, gateway);
    await registerSignupRoutes(scope, exchange, gateway, options.registration ?? { open: true });
  }, { prefix: '/api/v1/auth' });
  await app.register(async (scope) => registerAdminRoutes(scope, exchange, options.adminAllow ?? LOOPBACK, mailer, rateBans), { prefix: '/admin/v1' });
  sockets = attachWebSocket(app, exchange, gateway, { ...DEFAULT_WS_OPTIONS, ...options.ws });
  // Only now, with the funding listeners (mail, the socket channel) attached: a withdrawal the
  // recovery carries out is told to its owner like any other.
  await exchange.funding.recover();
  return app;
}

