/**
 * The native REST API (DESIGN.md §8): public market data and signed account and order routes.
 * Translation only: every rule lives in the engine; this file turns decimals into integers,
 * submits commands and turns events and state back into JSON.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { MAX_CANCEL_AFTER_MS } from '../core/index.js';
import type { AmendOrder, Command, EngineEvent, OrderState, RestingOrderView } from '../core/index.js';
import { CANDLE_INTERVAL_NAMES } from '../marketdata/candles.js';
import type { CandleInterval } from '../marketdata/candles.js';
import { registerStatusRoute } from './venue-status.js';
import { CANDLE_OUT, candleOut, DEPTH_WEIGHT, FEES_OUT, feeLevelsOut, feeRateOut, MARKET_OUT, marketOut, orderBookWeight, TICKER_OUT, tickerOf } from './market-views.js';
import { formatMinor } from '../money/index.js';
import type { Exchange } from '../exchange.js';
import type { ApiKeyRecord } from '../identity/store.js';
import { ApiError, identityCall, throwIfRejected } from './errors.js';
import type { Gateway } from './server.js';
import { clientIp } from './server.js';
import { actingAccount, openOrderInScope, orderAccountInScope } from './account-scope.js';
import { ORDER_BODY, orderCommand } from './orders.js';
import type { OrderBody } from './orders.js';
import { cancelAllFor, cancelByClientIdFor, cancelOrderFor } from './order-cancels.js';
import { fillsListing, ledgerListing, ordersListing } from './account-listings.js';
import { ACCOUNT_ID, cancelAfterOut, CLIENT_ORDER_ID, DECIMAL, decimalIn, findOrder, liveOrderOut, ORDER_OUT, placedOrderOut, rowOrderOut, scalesOf, STRING } from './wire.js';
import type { OrderWire } from './wire.js';
import { LIMIT_QUERY, limitOf, PAGE_FIELDS, PAGE_LINKS, pageLinks, pageOf } from './paging.js';
import type { PageQuery } from './paging.js';

const MARKET_PARAM = { type: 'object', required: ['market'], properties: { market: { type: 'string', maxLength: 40 } } } as const;
/** Which of the user's accounts a listing is about (default: the key's); see account-scope.ts. */
const ACCOUNT_QUERY = { type: 'string', pattern: '^[0-9]{1,16}$' } as const;
const ID_PARAM = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9]{1,16}$' } } } as const;
const CLIENT_ID_PARAM = { type: 'object', required: ['client_order_id'], properties: { client_order_id: CLIENT_ORDER_ID } } as const;
const ACCOUNT_ONLY_QUERY = { type: 'object', additionalProperties: false, properties: { account: ACCOUNT_QUERY } } as const;

const AMEND_BODY = {
  type: 'object',
  additionalProperties: false,
  properties: { quantity: DECIMAL, price: DECIMAL },
} as const;

const CANCEL_AFTER_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['timeout_ms'],
  properties: {
    timeout_ms: { type: 'integer', minimum: 0, maximum: MAX_CANCEL_AFTER_MS, description: 'milliseconds until every open order is cancelled, unless set again; 0 turns the switch off' },
    account: ACCOUNT_ID,
  },
} as const;
const CANCEL_AFTER_OUT = {
  type: 'object',
  properties: {
    account: { type: 'integer' },
    trigger_time: { type: ['integer', 'null'], description: 'when the open orders are cancelled (epoch ms); null when the switch is off' },
    current_time: { type: 'integer' },
  },
} as const;

const ACCOUNT_FEES_OUT = {
  type: 'object',
  properties: {
    account: { type: 'integer' },
    level: { type: 'integer', description: 'the user level, set by the operator' },
    markets: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          market: STRING, maker_fee: { ...STRING, description: 'what this account pays now as maker' }, taker_fee: STRING,
          volume_30d: { ...STRING, description: "the user's traded volume in the market over 30 days, in its quote asset, as fee tiers count it" },
        },
      },
    },
  },
} as const;

/** A book level: [price, quantity, orders at that price]. */
const LEVEL_OUT = { type: 'array', items: {}, description: '[price, quantity, number of orders]' } as const;
const DEPTH_OUT = {
  type: 'object',
  properties: {
    market: STRING, seq: { type: 'integer', description: 'the journal sequence number the book is as of' },
    bids: { type: 'array', items: LEVEL_OUT }, asks: { type: 'array', items: LEVEL_OUT },
  },
} as const;
const BOOK_ORDER_OUT = { type: 'array', items: STRING, minItems: 3, maxItems: 3, description: '[order id, price, quantity left]' } as const;
const ORDER_BOOK_OUT = {
  type: 'object',
  properties: {
    market: STRING, seq: { type: 'integer', description: 'the journal sequence number the book is as of' },
    bids: { type: 'array', items: BOOK_ORDER_OUT, description: 'best price first; within a price, first in the queue first' },
    asks: { type: 'array', items: BOOK_ORDER_OUT, description: 'best price first; within a price, first in the queue first' },
  },
} as const;
const TRADES_OUT = {
  type: 'object',
  properties: {
    market: STRING,
    trades: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: STRING, price: STRING, quantity: STRING, quote_quantity: STRING,
          taker_side: { type: 'string', enum: ['buy', 'sell'] }, time: { type: 'integer' },
        },
      },
    },
    ...PAGE_LINKS,
  },
} as const;
const BALANCES_OUT = {
  type: 'object',
  properties: {
    balances: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          asset: STRING, available: STRING, reserved: STRING, locked: STRING, total: STRING,
          pending: { type: 'string', description: 'deposits seen but not yet credited (not in total)' },
        },
      },
    },
  },
} as const;
const ORDER_WITH_FILLS_OUT = {
  type: 'object',
  properties: {
    ...ORDER_OUT.properties,
    fills: {
      type: 'array',
      items: {
        type: 'object',
        properties: { trade_id: STRING, price: STRING, quantity: STRING, fee: STRING, fee_asset: STRING, liquidity: { type: 'string', enum: ['maker', 'taker'] }, time: { type: 'integer' } },
      },
    },
  },
} as const;
const LEDGER_OUT = {
  type: 'object',
  properties: {
    entries: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: STRING, seq: { type: 'integer' }, time: { type: 'integer' }, asset: STRING, kind: { type: 'string', description: 'the command that moved the balance' },
          available_change: STRING, reserved_change: STRING, locked_change: STRING, available: STRING, reserved: STRING, locked: STRING,
        },
      },
    },
    ...PAGE_LINKS,
  },
} as const;
const FILLS_OUT = {
  type: 'object',
  properties: {
    trades: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          trade_id: STRING, order_id: STRING, market: STRING, side: { type: 'string', enum: ['buy', 'sell'] }, price: STRING, quantity: STRING,
          quote_quantity: STRING, fee: STRING, fee_asset: STRING, liquidity: { type: 'string', enum: ['maker', 'taker'] }, time: { type: 'integer' },
        },
      },
    },
    ...PAGE_LINKS,
  },
} as const;

export async function registerNativeRoutes(app: FastifyInstance, exchange: Exchange, gateway: Gateway): Promise<void> {
  const engine = () => exchange.engine;
  /** The account the request acts on: the key's, or the one it names when the key may act on it. */
  const account = (request: FastifyRequest, named?: unknown): number => actingAccount(exchange, request.apiKey!, named);
  const read = gateway.authenticate('read');
  const trade = gateway.authenticate('trade');

  // Orders that are no longer open are read from the read model: wait until it has every
  // command acknowledged so far, so that a client always reads its own writes.
  const fresh = (): Promise<void> => exchange.readModelCaughtUp();
  const orderOut = (orderId: number, owner: number): OrderWire | undefined => findOrder(exchange, orderId, owner);

  async function submit(cmd: Command): Promise<EngineEvent[]> {
    const ack = await exchange.submit(cmd);
    throwIfRejected(ack.events, exchange.engine, cmd.type === 'place_order' ? cmd : undefined);
    return ack.events;
  }

  // Public -------------------------------------------------------------------------------

  registerStatusRoute(app, exchange);

  app.get('/time', {
    schema: { response: { 200: { type: 'object', properties: { server_time: { type: 'integer', description: 'milliseconds since the epoch' } } } } },
    config: { weight: 1 },
  }, async () => ({ server_time: exchange.clock() }));

  app.get('/assets', {
    schema: {
      response: {
        200: {
          type: 'object',
          properties: { assets: { type: 'array', items: { type: 'object', properties: { code: STRING, precision: { type: 'integer' }, min_fee: STRING } } } },
        },
      },
    },
    config: { weight: 1 },
  }, async () => ({
    assets: engine().assetList.map((a) => ({ code: a.code, precision: a.precision, min_fee: formatMinor(a.minFee, a.precision) })),
  }));

  app.get('/markets', {
    schema: { response: { 200: { type: 'object', properties: { markets: { type: 'array', items: MARKET_OUT } } } } },
    config: { weight: 1 },
  }, async () => ({ markets: engine().marketList.map(marketOut) }));

  app.get('/fees', {
    schema: { response: { 200: FEES_OUT } },
    config: { weight: 1 },
  }, async () => ({
    markets: engine().marketList.map((m) => {
      const { market, maker_fee, taker_fee, fee_tiers } = marketOut(m);
      return { market, maker_fee, taker_fee, fee_tiers };
    }),
    levels: feeLevelsOut(engine()),
  }));

  app.get<{ Params: { market: string }; Querystring: { limit?: string } }>('/markets/:market/depth', {
    schema: { params: MARKET_PARAM, querystring: { type: 'object', properties: { limit: LIMIT_QUERY } }, response: { 200: DEPTH_OUT } },
    config: { weight: DEPTH_WEIGHT },
  }, async (request) => {
    const scales = scalesOf(engine(), request.params.market);
    const limit = limitOf(request.query.limit, 50, 1_000);
    const book = engine().book(scales.id, limit);
    const level = (l: { price: number; quantity: number; orders: number }) => [formatMinor(l.price, scales.quoteScale), formatMinor(l.quantity, scales.baseScale), l.orders];
    return { market: scales.id, seq: exchange.sequencer.lastSeq, bids: book.bids.map(level), asks: book.asks.map(level) };
  });

  // The book order by order (market by order): which orders make each level and in what order
  // they fill. Whose they are is never shown.
  app.get<{ Params: { market: string }; Querystring: { limit?: string } }>('/markets/:market/book', {
    schema: {
      description: 'Weight 5 for up to 100 orders a side, 25 up to 500, 50 up to 1,000, 250 beyond.',
      params: MARKET_PARAM, querystring: { type: 'object', properties: { limit: LIMIT_QUERY } }, response: { 200: ORDER_BOOK_OUT },
    },
    config: { weight: 5 },
  }, async (request, reply) => {
    const scales = scalesOf(engine(), request.params.market);
    const limit = limitOf(request.query.limit, 100, 5_000);
    if (orderBookWeight(limit) > 5) gateway.chargeSubjects(clientIp(request), null, orderBookWeight(limit) - 5, { request, reply });
    const book = engine().orderBook(scales.id, limit);
    const order = (o: RestingOrderView) => [String(o.orderId), formatMinor(o.price, scales.quoteScale), formatMinor(o.quantity, scales.baseScale)];
    return { market: scales.id, seq: exchange.sequencer.lastSeq, bids: book.bids.map(order), asks: book.asks.map(order) };
  });

  app.get<{ Params: { market: string }; Querystring: PageQuery }>('/markets/:market/trades', {
    schema: { params: MARKET_PARAM, querystring: { type: 'object', additionalProperties: false, properties: PAGE_FIELDS }, response: { 200: TRADES_OUT } },
    config: { weight: 2 },
  }, async (request) => {
    const scales = scalesOf(engine(), request.params.market);
    const page = pageOf(request.query, 100, 1_000);
    await fresh();
    const rows = exchange.projector.trades(scales.id, page);
    return {
      market: scales.id,
      trades: rows.map((t) => ({
        id: String(t.id), price: formatMinor(t.price, scales.quoteScale), quantity: formatMinor(t.quantity, scales.baseScale),
        quote_quantity: formatMinor(t.quote_quantity, scales.quoteScale), taker_side: t.taker_side, time: t.ts,
      })),
      ...pageLinks(rows, page, (t) => t.id),
    };
  });

  app.get('/tickers', {
    schema: { response: { 200: { type: 'object', properties: { tickers: { type: 'array', items: TICKER_OUT } } } } },
    config: { weight: 5 },
  }, async () => {
    await fresh();
    return { tickers: engine().marketList.map((m) => tickerOf(exchange, m.id)) };
  });

  app.get<{ Params: { market: string } }>('/markets/:market/ticker', { schema: { params: MARKET_PARAM, response: { 200: TICKER_OUT } }, config: { weight: 1 } }, async (request) => {
    const scales = scalesOf(engine(), request.params.market);
    await fresh();
    return tickerOf(exchange, scales.id);
  });

  app.get<{ Params: { market: string }; Querystring: { interval?: CandleInterval; from?: string; to?: string; limit?: string } }>('/markets/:market/candles', {
    schema: {
      params: MARKET_PARAM,
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          interval: { type: 'string', enum: CANDLE_INTERVAL_NAMES }, from: { type: 'string', pattern: '^[0-9]{1,16}$' },
          to: { type: 'string', pattern: '^[0-9]{1,16}$' }, limit: LIMIT_QUERY,
        },
      },
      response: {
        200: { type: 'object', properties: { market: STRING, interval: STRING, candles: { type: 'array', items: CANDLE_OUT } } },
      },
    },
    config: { weight: 2 },
  }, async (request) => {
    const scales = scalesOf(engine(), request.params.market);
    const q = request.query;
    const interval = q.interval ?? '1m';
    await fresh();
    const candles = exchange.projector.candles(scales.id, interval, {
      from: q.from === undefined ? undefined : Number(q.from), to: q.to === undefined ? undefined : Number(q.to), limit: limitOf(q.limit, 500, 1_000),
    });
    return { market: scales.id, interval, candles: candles.map((c) => candleOut(exchange, c)) };
  });

  // Private ------------------------------------------------------------------------------

  const restrictionOf = (accountId: number): string => engine().accounts.get(accountId)?.restriction ?? 'none';

  app.get('/account', { preValidation: read, config: { weight: 1 } }, async (request) => {
    const key = request.apiKey!;
    const user = exchange.identity.user(key.userId)!;
    return { user_id: user.id, email: user.email, account: key.account, kyc: user.kyc, level: user.level, permissions: key.permissions, restriction: restrictionOf(key.account) };
  });

  app.get('/accounts', { preValidation: read, config: { weight: 1 } }, async (request) => ({
    accounts: exchange.identity.accountsOf(request.apiKey!.userId).map((a) => ({ account: a.id, label: a.label, main: a.main, created_at: a.createdAt, restriction: restrictionOf(a.id) })),
  }));

  app.get<{ Querystring: { account?: string } }>('/account/fees', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { account: ACCOUNT_QUERY } }, response: { 200: ACCOUNT_FEES_OUT } },
    preValidation: read, config: { weight: 2 },
  }, async (request) => {
    const owner = account(request, request.query.account);
    const user = exchange.identity.user(request.apiKey!.userId)!;
    return {
      account: owner, level: user.level,
      markets: engine().feeRatesOf(owner).map((r) => ({
        market: r.market, maker_fee: feeRateOut(r.makerFeePpm), taker_fee: feeRateOut(r.takerFeePpm),
        volume_30d: formatMinor(r.volume30d, engine().markets.get(r.market)!.quote.precision, true),
      })),
    };
  });

  // What the key and its address may still spend this second, and what each route costs: a bot
  // that paces itself by this never meets a 429.
  app.get('/account/rate-limits', { preValidation: read, config: { weight: 1 } }, async (request) => gateway.budgets(clientIp(request), request.apiKey!));

  app.post<{ Body: { label: string } }>('/accounts', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['label'], properties: { label: { type: 'string', minLength: 1, maxLength: 64 } } } },
    preValidation: trade, config: { weight: 5 },
  }, async (request, reply) => {
    const account = await identityCall(() => exchange.createSubAccount(request.apiKey!.userId, request.body.label));
    void reply.status(201);
    return { account: account.id, label: account.label, main: false, created_at: account.createdAt };
  });

  app.get<{ Querystring: { account?: string } }>('/balances', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { account: ACCOUNT_QUERY } }, response: { 200: BALANCES_OUT } },
    preValidation: read, config: { weight: 2 },
  }, async (request) => {
    // Deposits seen on chain but not yet confirmed: shown, never spendable (not in available or total).
    // Deposits credit the main account, so that is where their pending amounts show.
    const key = request.apiKey!;
    const owner = account(request, request.query.account);
    const pending = owner === exchange.identity.user(key.userId)?.account ? exchange.funding.pending(key.userId) : new Map<string, number>();
    const rows = engine().balances(owner);
    for (const asset of pending.keys()) if (!rows.some((b) => b.asset === asset)) rows.push({ asset, available: 0, reserved: 0, locked: 0 });
    return {
      balances: rows.map((b) => {
        const scale = engine().assets.get(b.asset)!.precision;
        return {
          asset: b.asset, available: formatMinor(b.available, scale), reserved: formatMinor(b.reserved, scale),
          locked: formatMinor(b.locked, scale), total: formatMinor(b.available + b.reserved + b.locked, scale),
          pending: formatMinor(pending.get(b.asset) ?? 0, scale),
        };
      }),
    };
  });

  app.post<{ Body: OrderBody }>('/orders', { schema: { body: ORDER_BODY, response: { 201: ORDER_OUT } }, preValidation: trade, config: { weight: 1 } }, async (request, reply) => {
    gateway.chargeOrders(request.apiKey!, 1);
    const cmd = orderCommand(engine(), account(request, request.body.account), request.body);
    const ack = await exchange.submit(cmd);
    throwIfRejected(ack.events, exchange.engine, cmd);
    void reply.status(201);
    return placedOrderOut(exchange, ack.seq, ack.events, ack.ts);
  });

  app.get<{ Querystring: { market?: string; client_order_id?: string; status?: string; account?: string } & PageQuery }>('/orders', {
    schema: {
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          market: { type: 'string', maxLength: 40 }, client_order_id: { type: 'string', maxLength: 64 },
          status: { type: 'string', enum: ['open', 'all'] }, ...PAGE_FIELDS, account: ACCOUNT_QUERY,
        },
      },
      response: { 200: { type: 'object', properties: { orders: { type: 'array', items: ORDER_OUT }, ...PAGE_LINKS } } },
    },
    preValidation: read, config: { weight: 5 },
  }, async (request) => {
    const owner = account(request, request.query.account);
    const q = request.query;
    if (q.market !== undefined) scalesOf(engine(), q.market);
    if (q.client_order_id !== undefined) {
      const open = engine().openOrderByClientId(owner, q.client_order_id);
      if (open !== undefined) return { orders: [liveOrderOut(exchange, open)] };
      await fresh();
      const row = exchange.projector.orderByClientId(owner, q.client_order_id);
      return { orders: row === undefined ? [] : [rowOrderOut(exchange, row)] };
    }
    return ordersListing(exchange, owner, q, 500);
  });

  app.get<{ Params: { id: string } }>('/orders/:id', { schema: { params: ID_PARAM, response: { 200: ORDER_WITH_FILLS_OUT } }, preValidation: read, config: { weight: 1 } }, async (request) => {
    // An open order nothing has filled has no fills to read: bots polling their orders need not wait for the read model.
    const open = openOrderInScope(exchange, request.apiKey!, Number(request.params.id));
    if (open !== undefined && open.filledQuantity === 0) return { ...liveOrderOut(exchange, open), fills: [] };
    await fresh();
    const owner = orderAccountInScope(exchange, request.apiKey!, Number(request.params.id));
    const order = owner === undefined ? undefined : orderOut(Number(request.params.id), owner);
    if (order === undefined) throw new ApiError(404, 'UNKNOWN_ORDER', 'no such order');
    const fills = exchange.projector.fillsOf(Number(request.params.id));
    const scales = scalesOf(engine(), order.market);
    return {
      ...order,
      fills: fills.map((f) => ({
        trade_id: String(f.trade_id), price: formatMinor(f.price, scales.quoteScale), quantity: formatMinor(f.quantity, scales.baseScale),
        fee: formatMinor(f.fee, f.fee_asset === scales.base ? scales.baseScale : scales.quoteScale), fee_asset: f.fee_asset, liquidity: f.liquidity, time: f.ts,
      })),
    };
  });

  /** Amends an open order the request may act on (found by either id), answering it as it now is. */
  async function amend(key: ApiKeyRecord, current: OrderState | undefined, body: { quantity?: string; price?: string }): Promise<OrderWire | undefined> {
    if (current === undefined) throw new ApiError(404, 'UNKNOWN_ORDER', 'no such open order');
    gateway.chargeOrders(key, 1);
    const { orderId: id, account: owner } = current;
    const scales = scalesOf(engine(), current.market);
    const cmd: AmendOrder = { type: 'amend_order', account: owner, orderId: id };
    if (body.quantity !== undefined) cmd.quantity = decimalIn(body.quantity, scales.baseScale, 'quantity');
    if (body.price !== undefined) cmd.price = decimalIn(body.price, scales.quoteScale, 'price');
    await submit(cmd);
    const amended = engine().openOrder(id);
    if (amended !== undefined && amended.account === owner) return liveOrderOut(exchange, amended);
    await fresh();
    return orderOut(id, owner);
  }

  app.patch<{ Params: { id: string }; Body: { quantity?: string; price?: string } }>('/orders/:id', {
    schema: { params: ID_PARAM, body: AMEND_BODY, response: { 200: ORDER_OUT } }, preValidation: trade, config: { weight: 1 },
  }, async (request) => amend(request.apiKey!, openOrderInScope(exchange, request.apiKey!, Number(request.params.id)), request.body));

  app.delete<{ Params: { id: string } }>('/orders/:id', { schema: { params: ID_PARAM, response: { 200: ORDER_OUT } }, preValidation: trade, config: { weight: 1 } }, async (request) => {
    return cancelOrderFor(exchange, request.apiKey!, Number(request.params.id), account(request));
  });

  // The same by the client's own id, within one account (the key's, or ?account=N): client ids are per account.
  app.patch<{ Params: { client_order_id: string }; Querystring: { account?: string }; Body: { quantity?: string; price?: string } }>('/orders/client/:client_order_id', {
    schema: { params: CLIENT_ID_PARAM, querystring: ACCOUNT_ONLY_QUERY, body: AMEND_BODY, response: { 200: ORDER_OUT } }, preValidation: trade, config: { weight: 1 },
  }, async (request) => amend(request.apiKey!, engine().openOrderByClientId(account(request, request.query.account), request.params.client_order_id), request.body));

  app.delete<{ Params: { client_order_id: string }; Querystring: { account?: string } }>('/orders/client/:client_order_id', {
    schema: { params: CLIENT_ID_PARAM, querystring: ACCOUNT_ONLY_QUERY, response: { 200: ORDER_OUT } }, preValidation: trade, config: { weight: 1 },
  }, async (request) => cancelByClientIdFor(exchange, account(request, request.query.account), request.params.client_order_id));

  app.delete<{ Querystring: { market?: string; account?: string } }>('/orders', {
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: { market: { type: 'string', maxLength: 40 }, account: ACCOUNT_QUERY } },
      response: { 200: { type: 'object', properties: { cancelled: { type: 'array', items: ORDER_OUT } } } },
    },
    preValidation: trade, config: { weight: 5 },
  }, async (request) => {
    const owner = account(request, request.query.account);
    if (request.query.market !== undefined) scalesOf(engine(), request.query.market);
    return { cancelled: await cancelAllFor(exchange, owner, request.query.market) };
  });

  // The dead man's switch: a bot sets it again every few seconds; if the bot dies, its orders go.
  app.post<{ Body: { timeout_ms: number; account?: number } }>('/orders/cancel-after', {
    schema: { body: CANCEL_AFTER_BODY, response: { 200: CANCEL_AFTER_OUT } }, preValidation: trade, config: { weight: 1 },
  }, async (request) => {
    const owner = account(request, request.body.account);
    const ack = await exchange.submit({ type: 'set_cancel_after', account: owner, timeoutMs: request.body.timeout_ms });
    throwIfRejected(ack.events, exchange.engine);
    return cancelAfterOut(owner, ack.events, ack.ts);
  });

  app.get<{ Querystring: { account?: string } }>('/orders/cancel-after', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { account: ACCOUNT_QUERY } }, response: { 200: CANCEL_AFTER_OUT } },
    preValidation: read, config: { weight: 1 },
  }, async (request) => {
    const owner = account(request, request.query.account);
    return { account: owner, trigger_time: engine().cancelAfterOf(owner), current_time: exchange.clock() };
  });

  app.get<{ Querystring: { asset?: string; account?: string } & PageQuery }>('/ledger', {
    schema: {
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { asset: { type: 'string', pattern: '^[A-Z0-9]{1,16}$' }, ...PAGE_FIELDS, account: ACCOUNT_QUERY },
      },
      response: { 200: LEDGER_OUT },
    },
    preValidation: read, config: { weight: 5 },
  }, async (request) => {
    return ledgerListing(exchange, account(request, request.query.account), request.query, 500);
  });

  app.get<{ Querystring: { market?: string; account?: string } & PageQuery }>('/trades', {
    schema: {
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { market: { type: 'string', maxLength: 40 }, ...PAGE_FIELDS, account: ACCOUNT_QUERY },
      },
      response: { 200: FILLS_OUT },
    },
    preValidation: read, config: { weight: 5 },
  }, async (request) => {
    return fillsListing(exchange, account(request, request.query.account), request.query, 500);
  });

}
