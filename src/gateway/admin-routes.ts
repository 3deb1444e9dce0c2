/**
 * The admin API: what operators (and `bourse admin`) do. Bearer token from DATA/admin.token,
 * compared in constant time, and only from the addresses in `allow` (loopback by default).
 * Amounts are decimal strings, as everywhere on the wire.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FEE_ACCOUNT, MARKET_STATES } from '../core/index.js';
import type { Command, EngineEvent, MarketState, SetMarketLimits } from '../core/index.js';
import type { Exchange } from '../exchange.js';
import { KYC_STATUSES } from '../identity/store.js';
import type { KycStatus } from '../identity/store.js';
import { formatMinor } from '../money/index.js';
import { ApiError, identityCall, rejectionStatus } from './errors.js';
import { ASSET_CODE, DECIMAL, decimalIn, EMAIL, scalesOf } from './wire.js';
import { apiKeyOut, changeApiKeyFor, createApiKeyFor, KEY_CHANGE_FIELDS, keyDetail, NEW_KEY_FIELDS } from './api-keys.js';
import type { KeyChangeBody } from './api-keys.js';
import { apiKeyCreatedMail } from '../mail/account-mails.js';
import type { NewKeyBody } from './api-keys.js';
import { registerAdminFundingRoutes } from './admin-funding-routes.js';
import { registerAdminLiabilityRoutes } from './liability-routes.js';
import { cancelledIn, registerAdminAccountRoutes } from './admin-account-routes.js';
import { operatorOf, recordAdminRequest, registerAdminAuditRoute } from './admin-audit.js';
import { recordSecurityEvent } from './security-events.js';
import { feeLevelsOut, marketOut } from './market-views.js';
import { allows, blockList } from '../identity/ip.js';
import { bearerToken, clientIp } from './server.js';
import { DEFAULT_MAX_OPEN_ORDERS } from '../config.js';
import { BACKUP_NAME, backupName, BackupTargetError } from '../backup.js';
import type { Mailer } from '../mail/mailer.js';
import type { RateBans } from '../identity/rate-bans.js';
import { registerAdminMailRoutes } from './admin-mail-routes.js';
import { registerNoticeRoutes } from './venue-status.js';

/** Per account and market; 0 lifts the limit. */
const MAX_OPEN_ORDERS = { type: 'integer', minimum: 0, maximum: 1_000_000_000 } as const;
/** User levels, which fee levels price. */
const LEVEL = { type: 'integer', minimum: 0, maximum: 1_000 } as const;
const COLLAR = { ...DECIMAL, description: 'how far from the last price a market order may trade, as a fraction (0.05: 5 %; 0: no collar); the rest expires PRICE_COLLAR' } as const;

/** A market's order limits and band from the admin API's decimals, in the engine's units (those given). */
function limitsIn(body: Partial<MarketBody>, baseScale: number, quoteScale: number): Omit<SetMarketLimits, 'type' | 'market'> {
  const limits: Omit<SetMarketLimits, 'type' | 'market'> = {};
  if (body.min_quantity !== undefined) limits.minQuantity = decimalIn(body.min_quantity, baseScale, 'min_quantity', true);
  if (body.max_quantity !== undefined) limits.maxQuantity = decimalIn(body.max_quantity, baseScale, 'max_quantity', true);
  if (body.min_notional !== undefined) limits.minNotional = decimalIn(body.min_notional, quoteScale, 'min_notional', true);
  if (body.max_notional !== undefined) limits.maxNotional = decimalIn(body.max_notional, quoteScale, 'max_notional', true);
  if (body.band_low !== undefined) limits.bandLowBps = decimalIn(body.band_low, 4, 'band_low', true);
  if (body.band_high !== undefined) limits.bandHighBps = decimalIn(body.band_high, 4, 'band_high', true);
  if (body.collar !== undefined) limits.collarBps = decimalIn(body.collar, 4, 'collar', true);
  return limits;
}

/** A new market's rules as the admin API takes them (decimal strings; fees and bands as fractions). */
interface MarketBody {
  base: string; quote: string; tick: string; lot: string;
  min_quantity?: string; max_quantity?: string; min_notional?: string; max_notional?: string;
  maker_fee?: string; taker_fee?: string; band_low?: string; band_high?: string; max_open_orders?: number; collar?: string;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export async function registerAdminRoutes(app: FastifyInstance, exchange: Exchange, allow: string[], mailer: Mailer, rateBans: RateBans): Promise<void> {
  const expected = digest(exchange.adminToken);
  const allowed = blockList(allow);
  // Every admin request leaves a line in the log, refused ones as warnings: what was done (never
  // the body, which may hold a password), from where, and how it ended. Those the token admitted
  // are also kept in the identity store's audit trail (GET /audit), with who made them; refused
  // ones are not, so that nobody without the token can grow it.
  const admitted = new WeakSet<FastifyRequest>();
  app.addHook('onResponse', (request, reply, done) => {
    const entry = { admin: true, method: request.method, path: request.url, ip: clientIp(request), status: reply.statusCode };
    if (reply.statusCode === 401 || reply.statusCode === 403) request.log.warn(entry, 'admin request refused');
    else request.log.info(entry, 'admin request');
    if (admitted.has(request)) recordAdminRequest(exchange, request, reply, entry.ip);
    done();
  });
  // On request, before the body is read or checked: without the token nothing is parsed, and no
  // schema error tells a stranger what a route expects.
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (!allows(allowed, clientIp(request))) throw new ApiError(403, 'ADMIN_NOT_ALLOWED', 'the admin API is not open to this address');
    const token = bearerToken(request);
    // Compare digests: equal length, constant time, whatever the caller sent.
    if (!timingSafeEqual(digest(token), expected)) throw new ApiError(401, 'INVALID_ADMIN_TOKEN', 'admin token required');
    admitted.add(request);
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

  /** The user, asset and amount (in minor units) of a request that moves money to a user. */
  const moneyFor = (body: { email: string; asset: string; amount: string }) => {
    const user = userByEmail(body.email);
    const asset = exchange.engine.assets.get(body.asset);
    if (asset === undefined) throw new ApiError(404, 'UNKNOWN_ASSET', `unknown asset ${body.asset}`);
    return { user, asset, amount: decimalIn(body.amount, asset.precision, 'amount') };
  };

  app.get('/ledger', async () => {
    const precision = (code: string) => exchange.engine.assets.get(code)!.precision;
    return {
      seq: exchange.sequencer.lastSeq,
      assets: exchange.engine.ledgerTotals().map((t) => {
        const p = precision(t.asset);
        return {
          asset: t.asset, users_available: formatMinor(t.available, p), users_reserved: formatMinor(t.reserved, p), users_locked: formatMinor(t.locked, p),
          users_total: formatMinor(t.available + t.reserved + t.locked, p), fees: formatMinor(t.fees, p), net_inflow: formatMinor(t.netInflow, p),
          balanced: t.available + t.reserved + t.locked + t.fees === t.netInflow,
        };
      }),
    };
  });

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
        properties: { email: EMAIL, kyc: { type: 'string', enum: [...KYC_STATUSES] }, level: LEVEL },
      },
    },
  }, async (request) => {
    const user = userByEmail(request.body.email);
    await identityCall(() => exchange.identity.setKyc(user.id, request.body.kyc, request.body.level));
    // The engine prices fees by level (POST /fee-levels): it learns the level through a command like everything else.
    await submit({ type: 'set_user_level', user: user.id, level: request.body.level });
    return { email: user.email, kyc: request.body.kyc, level: request.body.level };
  });

  app.post<{ Body: { email: string } & NewKeyBody }>('/apikeys', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['email', 'permissions'], properties: { email: EMAIL, ...NEW_KEY_FIELDS } } },
  }, async (request, reply) => {
    const user = userByEmail(request.body.email);
    const { record, answer } = await createApiKeyFor(exchange, user.id, request.body);
    recordSecurityEvent(exchange, request, user.id, 'api_key_created', 'support', `${keyDetail(record)} (${operatorOf(request)})`);
    mailer.send(apiKeyCreatedMail(mailer.config, user.email, record, 'by support'));
    void reply.status(201);
    return answer;
  });

  app.patch<{ Params: { key: string }; Querystring: { email: string }; Body: KeyChangeBody }>('/apikeys/:key', {
    schema: {
      querystring: { type: 'object', additionalProperties: false, required: ['email'], properties: { email: EMAIL } },
      body: { type: 'object', additionalProperties: false, minProperties: 1, properties: KEY_CHANGE_FIELDS },
    },
  }, async (request) => {
    const user = userByEmail(request.query.email);
    const record = await changeApiKeyFor(exchange, user.id, request.params.key, request.body);
    recordSecurityEvent(exchange, request, user.id, 'api_key_changed', 'support', `${keyDetail(record)} (${operatorOf(request)})`);
    return apiKeyOut(record);
  });

  app.get<{ Querystring: { email: string } }>('/apikeys', {
    schema: { querystring: { type: 'object', required: ['email'], properties: { email: EMAIL } } },
  }, async (request) => {
    const user = userByEmail(request.query.email);
    return { keys: exchange.apiKeysOf(user.id).map(apiKeyOut) };
  });

  app.delete<{ Params: { key: string }; Querystring: { email: string } }>('/apikeys/:key', {
    schema: { querystring: { type: 'object', required: ['email'], properties: { email: EMAIL } } },
  }, async (request) => {
    const user = userByEmail(request.query.email);
    if (!exchange.revokeApiKey(user.id, request.params.key)) throw new ApiError(404, 'UNKNOWN_KEY', 'no such active key for this user');
    recordSecurityEvent(exchange, request, user.id, 'api_key_revoked', 'support', `${request.params.key} (${operatorOf(request)})`);
    return { key: request.params.key, revoked: true };
  });

  app.post<{ Body: { email: string; asset: string; amount: string; key?: string } }>('/deposits', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['email', 'asset', 'amount'],
        properties: { email: EMAIL, asset: ASSET_CODE, amount: DECIMAL, key: { type: 'string', minLength: 1, maxLength: 100 } },
      },
    },
  }, async (request, reply) => {
    const { user, asset, amount } = moneyFor(request.body);
    const key = `admin:${request.body.key ?? randomUUID()}`;
    await submit({ type: 'deposit', account: user.account, asset: asset.code, amount, key });
    void reply.status(201);
    const balance = exchange.engine.balance(user.account, asset.code);
    return { email: user.email, account: user.account, asset: asset.code, amount: request.body.amount, key, available: formatMinor(balance.available, asset.precision) };
  });

  app.post<{ Body: { code: string; precision: number; min_fee?: string } }>('/assets', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['code', 'precision'],
        properties: { code: ASSET_CODE, precision: { type: 'integer', minimum: 0, maximum: 18 }, min_fee: { ...DECIMAL, description: 'the least fee a trade pays in this asset' } },
      },
    },
  }, async (request, reply) => {
    const { code, precision } = request.body;
    const minFee = request.body.min_fee === undefined ? 0 : decimalIn(request.body.min_fee, precision, 'min_fee', true);
    await submit({ type: 'create_asset', code, precision, minFee });
    void reply.status(201);
    return { code, precision, min_fee: formatMinor(minFee, precision) };
  });

  app.post<{ Body: MarketBody }>('/markets', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['base', 'quote', 'tick', 'lot'],
        properties: {
          base: ASSET_CODE, quote: ASSET_CODE, tick: DECIMAL, lot: DECIMAL, min_quantity: DECIMAL, max_quantity: DECIMAL, min_notional: DECIMAL, max_notional: DECIMAL,
          maker_fee: DECIMAL, taker_fee: DECIMAL, max_open_orders: MAX_OPEN_ORDERS,
          band_low: { ...DECIMAL, description: 'limit prices below this fraction of the last price are refused (0.4: 40 %)' },
          band_high: { ...DECIMAL, description: 'limit prices above this multiple of the last price are refused (2.5: 250 %)' },
          collar: COLLAR,
        },
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
    const body = request.body;
    Object.assign(cmd, limitsIn(body, baseAsset.precision, quoteAsset.precision));
    if (body.maker_fee !== undefined) cmd.makerFeePpm = decimalIn(body.maker_fee, 6, 'maker_fee', true);
    if (body.taker_fee !== undefined) cmd.takerFeePpm = decimalIn(body.taker_fee, 6, 'taker_fee', true);
    await submit(cmd);
    void reply.status(201);
    return marketOut(exchange.engine.markets.get(market)!);
  });

  // The whole venue at once, as an incident calls for (cancel-only while a wallet is checked,
  // halted while the journal's disk is replaced): each market's change is its own command.
  app.post<{ Body: { state: MarketState } }>('/markets/state', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['state'], properties: { state: { type: 'string', enum: [...MARKET_STATES] } } } },
  }, async (request) => {
    const markets: { market: string; state: MarketState }[] = [];
    for (const market of exchange.engine.marketList) {
      await submit({ type: 'set_market_state', market: market.id, state: request.body.state });
      markets.push({ market: market.id, state: request.body.state });
    }
    return { markets };
  });

  app.post<{ Params: { market: string }; Body: { state: MarketState } }>('/markets/:market/state', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['state'], properties: { state: { type: 'string', enum: [...MARKET_STATES] } } } },
  }, async (request) => {
    const scales = scalesOf(exchange.engine, request.params.market);
    await submit({ type: 'set_market_state', market: scales.id, state: request.body.state });
    return { market: scales.id, state: request.body.state };
  });

  app.post<{ Params: { market: string }; Body: { maker: string; taker: string; tiers?: { min_volume: string; maker: string; taker: string }[] } }>('/markets/:market/fees', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['maker', 'taker'],
        properties: {
          maker: DECIMAL, taker: DECIMAL,
          tiers: {
            type: 'array', maxItems: 32, description: 'volume tiers, ascending by min_volume; [] removes them; left out, the current ones stay',
            items: { type: 'object', additionalProperties: false, required: ['min_volume', 'maker', 'taker'], properties: { min_volume: DECIMAL, maker: DECIMAL, taker: DECIMAL } },
          },
        },
      },
    },
  }, async (request) => {
    const scales = scalesOf(exchange.engine, request.params.market);
    const market = exchange.engine.markets.get(scales.id)!;
    // The engine replaces a market's tiers with every fee change, so a change of the base rates alone carries the current ones.
    const tiers = request.body.tiers === undefined ? market.tiers.map((t) => ({ ...t })) : request.body.tiers.map((t, i) => ({
      minVolume: decimalIn(t.min_volume, scales.quoteScale, `tiers[${i}].min_volume`, true),
      makerFeePpm: decimalIn(t.maker, 6, `tiers[${i}].maker`, true),
      takerFeePpm: decimalIn(t.taker, 6, `tiers[${i}].taker`, true),
    }));
    await submit({ type: 'set_fees', market: scales.id, makerFeePpm: decimalIn(request.body.maker, 6, 'maker', true), takerFeePpm: decimalIn(request.body.taker, 6, 'taker', true), tiers });
    return marketOut(exchange.engine.markets.get(scales.id)!);
  });

  app.post<{ Body: { email: string; asset: string; amount: string; key?: string } }>('/fees/collect', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['email', 'asset', 'amount'],
        properties: { email: EMAIL, asset: ASSET_CODE, amount: DECIMAL, key: { type: 'string', minLength: 1, maxLength: 100, description: 'applies once per key' } },
      },
    },
  }, async (request, reply) => {
    const { user, asset, amount } = moneyFor(request.body);
    const key = `fees:${request.body.key ?? randomUUID()}`;
    await submit({ type: 'collect_fees', to: user.account, asset: asset.code, amount, key });
    void reply.status(201);
    const left = exchange.engine.balance(FEE_ACCOUNT, asset.code).available;
    return { email: user.email, account: user.account, asset: asset.code, amount: request.body.amount, key, fees_left: formatMinor(left, asset.precision) };
  });

  app.post<{ Body: { level: number; maker: string; taker: string } }>('/fee-levels', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['level', 'maker', 'taker'], properties: { level: LEVEL, maker: DECIMAL, taker: DECIMAL } } },
  }, async (request) => {
    await submit({ type: 'set_fee_level', level: request.body.level, makerFeePpm: decimalIn(request.body.maker, 6, 'maker', true), takerFeePpm: decimalIn(request.body.taker, 6, 'taker', true) });
    return { levels: feeLevelsOut(exchange.engine) };
  });

  app.post<{ Params: { market: string } }>('/markets/:market/cancel-orders', async (request) => {
    const scales = scalesOf(exchange.engine, request.params.market);
    const events = await submit({ type: 'cancel_market', market: scales.id });
    return { market: scales.id, cancelled: cancelledIn(events) };
  });

  app.post<{ Params: { market: string }; Body: Omit<MarketBody, 'base' | 'quote' | 'tick' | 'lot' | 'maker_fee' | 'taker_fee'> }>('/markets/:market/limits', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, minProperties: 1, description: 'the limits to change; the others stay',
        properties: {
          max_open_orders: MAX_OPEN_ORDERS, min_quantity: DECIMAL, max_quantity: DECIMAL, min_notional: DECIMAL, max_notional: DECIMAL,
          band_low: { ...DECIMAL, description: 'a fraction of the last price (0: no lower band)' }, band_high: { ...DECIMAL, description: 'a multiple of the last price (0: no upper band)' },
          collar: COLLAR,
        },
      },
    },
  }, async (request) => {
    const scales = scalesOf(exchange.engine, request.params.market);
    const body = request.body;
    const cmd: Command = { type: 'set_market_limits', market: scales.id, ...limitsIn(body, scales.baseScale, scales.quoteScale) };
    // Each command checks its part whole; the open-order limit goes second, so a refused band leaves it unchanged too.
    const changesLimits = Object.keys(body).some((field) => field !== 'max_open_orders');
    if (changesLimits) await submit(cmd);
    if (body.max_open_orders !== undefined) await submit({ type: 'set_open_order_limit', market: scales.id, maxOpenOrders: body.max_open_orders });
    return marketOut(exchange.engine.markets.get(scales.id)!);
  });

  registerAdminAuditRoute(app, exchange);
  registerAdminAccountRoutes(app, exchange, { submit, userByEmail, mailer, rateBans });
  registerAdminMailRoutes(app, mailer);
  registerNoticeRoutes(app, exchange);
  registerAdminFundingRoutes(app, exchange);
  registerAdminLiabilityRoutes(app, exchange);
}
