/**
 * The admin API: what operators (and `bourse admin`) do. Bearer token from DATA/admin.token,
 * compared in constant time, and only from the addresses in `allow` (loopback by default).
 * Amounts are decimal strings, as everywhere on the wire.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Command, EngineEvent, MarketState } from '../core/index.js';
import type { Exchange } from '../exchange.js';
import { KYC_STATUSES, PERMISSIONS } from '../identity/store.js';
import type { KycStatus, Permission } from '../identity/store.js';
import { formatMinor } from '../money/index.js';
import { ApiError, identityCall, rejectionStatus } from './errors.js';
import { decimalIn, scalesOf } from './wire.js';
import { registerAdminFundingRoutes } from './admin-funding-routes.js';
import { marketOut } from './market-views.js';
import { allows, blockList } from '../identity/ip.js';
import { bearerToken, clientIp } from './server.js';
import { DEFAULT_MAX_OPEN_ORDERS } from '../config.js';
import { BACKUP_NAME, backupName, BackupTargetError } from '../backup.js';

const DECIMAL = { type: 'string', pattern: '^[0-9]{1,40}(\\.[0-9]{1,40})?$', maxLength: 64 } as const;
const CODE = { type: 'string', pattern: '^[A-Z0-9]{1,16}$' } as const;
/** Per account and market; 0 lifts the limit. */
const MAX_OPEN_ORDERS = { type: 'integer', minimum: 0, maximum: 1_000_000_000 } as const;
const EMAIL = { type: 'string', maxLength: 254 } as const;

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export async function registerAdminRoutes(app: FastifyInstance, exchange: Exchange, allow: string[]): Promise<void> {
  const expected = digest(exchange.adminToken);
  const allowed = blockList(allow);
  // Every admin request leaves a line in the log, refused ones as warnings: what was done (never
  // the body, which may hold a password), from where, and how it ended.
  app.addHook('onResponse', (request, reply, done) => {
    const entry = { admin: true, method: request.method, path: request.url, ip: clientIp(request), status: reply.statusCode };
    if (reply.statusCode === 401 || reply.statusCode === 403) request.log.warn(entry, 'admin request refused');
    else request.log.info(entry, 'admin request');
    done();
  });
  app.addHook('preHandler', async (request: FastifyRequest) => {
    if (!allows(allowed, clientIp(request))) throw new ApiError(403, 'ADMIN_NOT_ALLOWED', 'the admin API is not open to this address');
    const token = bearerToken(request);
    // Compare digests: equal length, constant time, whatever the caller sent.
    if (!timingSafeEqual(digest(token), expected)) throw new ApiError(401, 'INVALID_ADMIN_TOKEN', 'admin token required');
  });

  const submit = async (cmd: Command): Promise<EngineEvent[]> => {
    const ack = await exchange.submit(cmd);
    for (const event of ack.events) {
      if (event.type === 'command_rejected') throw new ApiError(rejectionStatus(event.reason), event.reason, event.message);
    }
    return ack.events;
  };
  const userByEmail = (email: string) => {
    const user = exchange.identity.userByEmail(email);
    if (user === undefined) throw new ApiError(404, 'UNKNOWN_USER', `no user ${email}`);
    return user;
  };

  app.post<{ Body: { email: string; password: string } }>('/users', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['email', 'password'], properties: { email: EMAIL, password: { type: 'string', maxLength: 256 } } } },
  }, async (request, reply) => {
    const user = await identityCall(() => exchange.createUser(request.body.email, request.body.password));
    void reply.status(201);
    return { id: user.id, email: user.email, account: user.account, kyc: user.kyc, level: user.level };
  });

  app.post<{ Body: { name?: string } }>('/backups', {
    schema: { body: { type: 'object', additionalProperties: false, properties: { name: { type: 'string', pattern: BACKUP_NAME.source } } } },
  }, async (request, reply) => {
    try {
      const report = await exchange.backup(request.body?.name ?? backupName(exchange.clock()));
      void reply.status(201);
      return report;
    } catch (error) {
      if (error instanceof BackupTargetError) {
        const status = error.code === 'INVALID_BACKUP_NAME' ? 400 : error.code === 'BACKUP_DIR_UNUSABLE' ? 500 : 409;
        throw new ApiError(status, error.code, error.message);
      }
      // The operator needs the reason (a full disk, say); the partial copy is gone.
      throw new ApiError(500, 'BACKUP_FAILED', `backup failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  });

  app.post<{ Body: { email: string; kyc: KycStatus; level: number } }>('/users/kyc', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['email', 'kyc', 'level'],
        properties: { email: EMAIL, kyc: { type: 'string', enum: [...KYC_STATUSES] }, level: { type: 'integer', minimum: 0, maximum: 1_000 } },
      },
    },
  }, async (request) => {
    const user = userByEmail(request.body.email);
    await identityCall(() => exchange.identity.setKyc(user.id, request.body.kyc, request.body.level));
    // The engine prices fees by level: it learns the level through a command like everything else.
    await submit({ type: 'set_user_level', user: user.id, level: request.body.level });
    return { email: user.email, kyc: request.body.kyc, level: request.body.level };
  });

  app.post<{ Body: { email: string; permissions: Permission[]; ip?: string[]; public_key?: string; account?: number } }>('/apikeys', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['email', 'permissions'],
        properties: {
          email: EMAIL,
          permissions: { type: 'array', minItems: 1, maxItems: 3, uniqueItems: true, items: { type: 'string', enum: [...PERMISSIONS] } },
          ip: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 64 } },
          public_key: { type: 'string', maxLength: 2_000 },
          account: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
        },
      },
    },
  }, async (request, reply) => {
    const user = userByEmail(request.body.email);
    const account = request.body.account;
    const ip = request.body.ip ?? [];
    void reply.status(201);
    if (request.body.public_key !== undefined) {
      // Ed25519: the client keeps the private key; nothing secret is created or shown.
      const record = await identityCall(() => exchange.identity.registerEd25519Key(user.id, request.body.public_key!, request.body.permissions, ip, exchange.clock(), account));
      return { key: record.key, scheme: 'ed25519', permissions: record.permissions, ip: record.ipAllow, account: record.account };
    }
    const { record, secret } = await identityCall(() => exchange.identity.createApiKey(user.id, request.body.permissions, ip, exchange.clock(), account));
    return { key: record.key, secret, permissions: record.permissions, ip: record.ipAllow, account: record.account };
  });

  app.get<{ Querystring: { email: string } }>('/apikeys', {
    schema: { querystring: { type: 'object', required: ['email'], properties: { email: EMAIL } } },
  }, async (request) => {
    const user = userByEmail(request.query.email);
    return { keys: exchange.identity.apiKeysOf(user.id).map((k) => ({ key: k.key, permissions: k.permissions, ip: k.ipAllow, scheme: k.scheme, created_at: k.createdAt, revoked_at: k.revokedAt })) };
  });

  app.delete<{ Params: { key: string }; Querystring: { email: string } }>('/apikeys/:key', {
    schema: { querystring: { type: 'object', required: ['email'], properties: { email: EMAIL } } },
  }, async (request) => {
    const user = userByEmail(request.query.email);
    if (!exchange.revokeApiKey(user.id, request.params.key)) throw new ApiError(404, 'UNKNOWN_KEY', 'no such active key for this user');
    return { key: request.params.key, revoked: true };
  });

  app.post<{ Body: { email: string; asset: string; amount: string; key?: string } }>('/deposits', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['email', 'asset', 'amount'],
        properties: { email: EMAIL, asset: CODE, amount: DECIMAL, key: { type: 'string', minLength: 1, maxLength: 100 } },
      },
    },
  }, async (request, reply) => {
    const user = userByEmail(request.body.email);
    const asset = exchange.engine.assets.get(request.body.asset);
    if (asset === undefined) throw new ApiError(404, 'UNKNOWN_ASSET', `unknown asset ${request.body.asset}`);
    const amount = decimalIn(request.body.amount, asset.precision, 'amount');
    const key = `admin:${request.body.key ?? randomUUID()}`;
    await submit({ type: 'deposit', account: user.account, asset: asset.code, amount, key });
    void reply.status(201);
    const balance = exchange.engine.balance(user.account, asset.code);
    return { email: user.email, account: user.account, asset: asset.code, amount: request.body.amount, key, available: formatMinor(balance.available, asset.precision) };
  });

  app.post<{ Body: { code: string; precision: number } }>('/assets', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['code', 'precision'], properties: { code: CODE, precision: { type: 'integer', minimum: 0, maximum: 18 } } } },
  }, async (request, reply) => {
    await submit({ type: 'create_asset', code: request.body.code, precision: request.body.precision });
    void reply.status(201);
    return { code: request.body.code, precision: request.body.precision };
  });

  app.post<{ Body: { base: string; quote: string; tick: string; lot: string; min_notional?: string; maker_fee?: string; taker_fee?: string; max_open_orders?: number } }>('/markets', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['base', 'quote', 'tick', 'lot'],
        properties: { base: CODE, quote: CODE, tick: DECIMAL, lot: DECIMAL, min_notional: DECIMAL, maker_fee: DECIMAL, taker_fee: DECIMAL, max_open_orders: MAX_OPEN_ORDERS },
      },
    },
  }, async (request, reply) => {
    const { base, quote } = request.body;
    const baseAsset = exchange.engine.assets.get(base);
    const quoteAsset = exchange.engine.assets.get(quote);
    if (baseAsset === undefined || quoteAsset === undefined) throw new ApiError(404, 'UNKNOWN_ASSET', 'unknown base or quote asset');
    const market = `${base}-${quote}`;
    const cmd: Command = {
      type: 'create_market', market, base, quote,
      tick: decimalIn(request.body.tick, quoteAsset.precision, 'tick'), lot: decimalIn(request.body.lot, baseAsset.precision, 'lot'),
      maxOpenOrders: request.body.max_open_orders ?? DEFAULT_MAX_OPEN_ORDERS,
    };
    if (request.body.min_notional !== undefined) cmd.minNotional = decimalIn(request.body.min_notional, quoteAsset.precision, 'min_notional', true);
    if (request.body.maker_fee !== undefined) cmd.makerFeePpm = decimalIn(request.body.maker_fee, 6, 'maker_fee', true);
    if (request.body.taker_fee !== undefined) cmd.takerFeePpm = decimalIn(request.body.taker_fee, 6, 'taker_fee', true);
    await submit(cmd);
    void reply.status(201);
    return marketOut(exchange.engine.markets.get(market)!);
  });

  app.post<{ Params: { market: string }; Body: { state: MarketState } }>('/markets/:market/state', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['state'], properties: { state: { type: 'string', enum: ['trading', 'halted', 'cancel_only', 'post_only'] } } } },
  }, async (request) => {
    const scales = scalesOf(exchange.engine, request.params.market);
    await submit({ type: 'set_market_state', market: scales.id, state: request.body.state });
    return { market: scales.id, state: request.body.state };
  });

  app.post<{ Params: { market: string }; Body: { maker: string; taker: string } }>('/markets/:market/fees', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['maker', 'taker'], properties: { maker: DECIMAL, taker: DECIMAL } } },
  }, async (request) => {
    const scales = scalesOf(exchange.engine, request.params.market);
    await submit({ type: 'set_fees', market: scales.id, makerFeePpm: decimalIn(request.body.maker, 6, 'maker', true), takerFeePpm: decimalIn(request.body.taker, 6, 'taker', true) });
    return { market: scales.id, maker: request.body.maker, taker: request.body.taker };
  });

  app.post<{ Params: { market: string }; Body: { max_open_orders: number } }>('/markets/:market/limits', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['max_open_orders'], properties: { max_open_orders: MAX_OPEN_ORDERS } } },
  }, async (request) => {
    const scales = scalesOf(exchange.engine, request.params.market);
    await submit({ type: 'set_open_order_limit', market: scales.id, maxOpenOrders: request.body.max_open_orders });
    return marketOut(exchange.engine.markets.get(scales.id)!);
  });

  registerAdminFundingRoutes(app, exchange);
}
