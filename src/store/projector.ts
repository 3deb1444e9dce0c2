/**
 * The read model: orders (with their fills) and trades, projected from the engine's events into
 * SQLite. It remembers the last sequence it applied and can always be rebuilt from the journal.
 */
import Database from 'better-sqlite3';
import { statementCache } from './statement-cache.js';
import type { Sql } from './statement-cache.js';
import type { Committed } from '../journal/index.js';
import type { BalanceEvent, EngineEvent, Envelope, OrderStatus, TradeEvent } from '../core/index.js';
import { bucketStart, CANDLE_INTERVAL_NAMES } from '../marketdata/candles.js';
import type { Candle, CandleInterval } from '../marketdata/candles.js';

export interface OrderRow {
  id: number;
  account: number;
  market: string;
  side: string;
  type: string;
  time_in_force: string;
  price: number | null;
  quantity: number | null;
  quote_quantity: number | null;
  stop_price: number | null;
  callback_bps: number | null;
  post_only: number;
  stp: string;
  client_order_id: string | null;
  expire_time: number | null;
  status: OrderStatus;
  reason: string | null;
  filled_quantity: number;
  cum_quote: number;
  avg_price: number;
  created_at: number;
  updated_at: number;
}

export interface FillRow {
  trade_id: number;
  order_id: number;
  account: number;
  market: string;
  side: string;
  price: number;
  quantity: number;
  quote_quantity: number;
  fee: number;
  fee_asset: string;
  liquidity: string;
  ts: number;
}

export interface LedgerRow {
  id: number;
  seq: number;
  ts: number;
  account: number;
  asset: string;
  kind: string;
  available_change: number;
  reserved_change: number;
  locked_change: number;
  available: number;
  reserved: number;
  locked: number;
}

export interface TradeRow {
  id: number;
  market: string;
  price: number;
  quantity: number;
  quote_quantity: number;
  taker_side: string;
  ts: number;
}

/**
 * A page of a listing. By default the newest rows first, below `beforeId`; with `afterId`, the
 * oldest rows first, above it (for a client catching up from the last row it has). `from` and
 * `to` (milliseconds, both included) narrow either.
 */
export interface Page {
  limit: number;
  beforeId?: number;
  afterId?: number;
  from?: number;
  to?: number;
}

/** The tables a listing may narrow by time, and the column that holds each row's time. */
const TIME_COLUMN = { orders: 'created_at', trades: 'ts', ledger: 'ts' } as const;
type TimedTable = keyof typeof TIME_COLUMN;

export class Projector {
  readonly db: Database.Database;
  private readonly statements;
  private readonly applyBatch: (batch: Committed[]) => void;
  private lastSeqValue: number;

  constructor(path: string) {
    this.db = new Database(path);
    this.query = statementCache(this.db);
    this.db.pragma('journal_mode = WAL');
    // The journal is the source of truth; a projection lost to power failure is rebuilt from it.
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS orders (
        id INTEGER PRIMARY KEY, account INTEGER NOT NULL, market TEXT NOT NULL, side TEXT NOT NULL, type TEXT NOT NULL,
        time_in_force TEXT NOT NULL, price INTEGER, quantity INTEGER, quote_quantity INTEGER, stop_price INTEGER,
        callback_bps INTEGER, post_only INTEGER NOT NULL, stp TEXT NOT NULL, client_order_id TEXT, expire_time INTEGER,
        status TEXT NOT NULL, reason TEXT, filled_quantity INTEGER NOT NULL, cum_quote INTEGER NOT NULL,
        avg_price INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS orders_by_account ON orders (account, id);
      -- Most orders carry no client id: a partial index costs them nothing (about 1 µs per order
      -- projected, measured). A read model from before it had a full index by the old name.
      DROP INDEX IF EXISTS orders_by_client_id;
      CREATE INDEX IF NOT EXISTS orders_by_set_client_id ON orders (account, client_order_id) WHERE client_order_id IS NOT NULL;
      CREATE TABLE IF NOT EXISTS fills (
        trade_id INTEGER NOT NULL, order_id INTEGER NOT NULL, account INTEGER NOT NULL, market TEXT NOT NULL,
        side TEXT NOT NULL, price INTEGER NOT NULL, quantity INTEGER NOT NULL, quote_quantity INTEGER NOT NULL,
        fee INTEGER NOT NULL, fee_asset TEXT NOT NULL, liquidity TEXT NOT NULL, ts INTEGER NOT NULL,
        PRIMARY KEY (trade_id, order_id)
      );
      CREATE INDEX IF NOT EXISTS fills_by_account ON fills (account, trade_id);
      CREATE TABLE IF NOT EXISTS trades (
        id INTEGER PRIMARY KEY, market TEXT NOT NULL, price INTEGER NOT NULL, quantity INTEGER NOT NULL,
        quote_quantity INTEGER NOT NULL, taker_side TEXT NOT NULL, ts INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS trades_by_market ON trades (market, id);
      CREATE TABLE IF NOT EXISTS ledger (
        id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, ts INTEGER NOT NULL, account INTEGER NOT NULL, asset TEXT NOT NULL,
        kind TEXT NOT NULL, available_change INTEGER NOT NULL, reserved_change INTEGER NOT NULL, locked_change INTEGER NOT NULL,
        available INTEGER NOT NULL, reserved INTEGER NOT NULL, locked INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS ledger_by_account ON ledger (account, id);
      CREATE TABLE IF NOT EXISTS candles (
        market TEXT NOT NULL, interval TEXT NOT NULL, open_time INTEGER NOT NULL, open INTEGER NOT NULL,
        high INTEGER NOT NULL, low INTEGER NOT NULL, close INTEGER NOT NULL, volume INTEGER NOT NULL,
        quote_volume INTEGER NOT NULL, trades INTEGER NOT NULL, PRIMARY KEY (market, interval, open_time)
      );
    `);
    this.statements = {
      insertOrder: this.db.prepare(`INSERT INTO orders (id, account, market, side, type, time_in_force, price, quantity, quote_quantity,
        stop_price, callback_bps, post_only, stp, client_order_id, expire_time, status, reason, filled_quantity, cum_quote, avg_price,
        created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0, 0, 0, ?, ?)`),
      fill: this.db.prepare('UPDATE orders SET status = ?, filled_quantity = ?, cum_quote = ?, avg_price = ?, updated_at = ? WHERE id = ?'),
      end: this.db.prepare('UPDATE orders SET status = ?, reason = ?, updated_at = ? WHERE id = ?'),
      status: this.db.prepare('UPDATE orders SET status = ?, updated_at = ? WHERE id = ?'),
      amend: this.db.prepare('UPDATE orders SET price = ?, quantity = ?, updated_at = ? WHERE id = ?'),
      insertFill: this.db.prepare('INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      insertTrade: this.db.prepare('INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?)'),
      upsertCandle: this.db.prepare(`INSERT INTO candles VALUES (@market, @interval, @openTime, @open, @high, @low, @close, @volume, @quoteVolume, @trades)
        ON CONFLICT (market, interval, open_time) DO UPDATE SET high = max(high, excluded.high), low = min(low, excluded.low),
        close = excluded.close, volume = volume + excluded.volume, quote_volume = quote_volume + excluded.quote_volume,
        trades = trades + excluded.trades`),
      insertLedger: this.db.prepare(`INSERT INTO ledger (seq, ts, account, asset, kind, available_change, reserved_change, locked_change, available, reserved, locked)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      setSeq: this.db.prepare("INSERT INTO meta (key, value) VALUES ('last_seq', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
    };
    this.applyBatch = this.db.transaction((batch: Committed[]) => {
      const candles = new Map<string, Candle>();
      for (const { envelope, events } of batch) {
        if (envelope.seq <= this.lastSeqValue) continue;
        for (const event of events) {
          if (event.type === 'balance') this.ledgerEntry(event, envelope);
          else this.project(event, envelope.ts);
          if (event.type === 'trade') addToCandles(candles, event, envelope.ts);
        }
        this.lastSeqValue = envelope.seq;
      }
      // One upsert per candle touched by the batch, in the order the candles were first touched.
      for (const candle of candles.values()) this.statements.upsertCandle.run(candle);
      this.statements.setSeq.run(this.lastSeqValue);
    });
    const row = this.db.prepare("SELECT value FROM meta WHERE key = 'last_seq'").get() as { value: number } | undefined;
    this.lastSeqValue = row?.value ?? 0;
    this.loadBalances();
  }

  /** Last projected balance per account and asset, kept in memory: the ledger needs it per event. */
  private readonly balances = new Map<string, { available: number; reserved: number; locked: number }>();

  private loadBalances(): void {
    this.balances.clear();
    // The newest ledger entry of each balance holds the balance after it.
    const rows = this.db.prepare('SELECT account, asset, available, reserved, locked FROM ledger WHERE id IN (SELECT max(id) FROM ledger GROUP BY account, asset)').all();
    for (const row of rows as { account: number; asset: string; available: number; reserved: number; locked: number }[]) {
      this.balances.set(`${row.account}:${row.asset}`, { available: row.available, reserved: row.reserved, locked: row.locked });
    }
  }

  /** Prepared once, reused: preparing costs more than running these small queries. */
  private readonly query: Sql;

  get lastSeq(): number {
    return this.lastSeqValue;
  }

  apply(batch: Committed[]): void {
    if (batch.length > 0) this.applyBatch(batch);
  }

  /** One ledger entry per balance a command changed: the change and the balance after it. */
  private ledgerEntry(event: BalanceEvent, envelope: Envelope): void {
    const s = this.statements;
    const key = `${event.account}:${event.asset}`;
    const before = this.balances.get(key) ?? { available: 0, reserved: 0, locked: 0 };
    const available = event.available - before.available;
    const reserved = event.reserved - before.reserved;
    const locked = event.locked - before.locked;
    if (available === 0 && reserved === 0 && locked === 0) return;
    this.balances.set(key, { available: event.available, reserved: event.reserved, locked: event.locked });
    s.insertLedger.run(envelope.seq, envelope.ts, event.account, event.asset, envelope.cmd.type, available, reserved, locked, event.available, event.reserved, event.locked);
  }

  private project(event: EngineEvent, ts: number): void {
    const s = this.statements;
    switch (event.type) {
      case 'order_accepted':
        // Positional parameters: binding by name costs more on the order-entry path.
        s.insertOrder.run(event.orderId, event.account, event.market, event.side, event.orderType, event.timeInForce, event.price,
          event.quantity, event.quoteQuantity, event.stopPrice, event.callbackBps, event.postOnly ? 1 : 0, event.stp, event.clientOrderId,
          event.expireTime, event.status, ts, ts);
        break;
      case 'order_triggered':
        s.status.run('NEW', ts, event.orderId);
        break;
      case 'order_fill':
        s.fill.run(event.status, event.cumQuantity, event.cumQuote, event.avgPrice, ts, event.orderId);
        s.insertFill.run(event.tradeId, event.orderId, event.account, event.market, event.side, event.price, event.quantity,
          event.quoteQuantity, event.fee, event.feeAsset, event.liquidity, ts);
        break;
      case 'trade':
        s.insertTrade.run(event.tradeId, event.market, event.price, event.quantity, event.quoteQuantity, event.takerSide, ts);
        break;
      case 'order_cancelled':
        s.end.run('CANCELLED', event.reason, ts, event.orderId);
        break;
      case 'order_expired':
        s.end.run('EXPIRED', event.reason, ts, event.orderId);
        break;
      case 'order_amended':
        s.amend.run(event.price, event.quantity, ts, event.orderId);
        break;
      default:
        break;
    }
  }

  order(id: number): OrderRow | undefined {
    return this.query('SELECT * FROM orders WHERE id = ?').get(id) as OrderRow | undefined;
  }

  orderByClientId(account: number, clientOrderId: string): OrderRow | undefined {
    return this.query('SELECT * FROM orders WHERE account = ? AND client_order_id = ? ORDER BY id DESC LIMIT 1').get(account, clientOrderId) as OrderRow | undefined;
  }

  /** An account's orders by id, newest first unless the page starts after an id. */
  orders(account: number, options: { market?: string } & Page): OrderRow[] {
    const { low, high, order } = this.idRange('orders', options);
    return this.query(`SELECT * FROM orders WHERE account = ? AND (? IS NULL OR market = ?) AND id >= ? AND id < ? ORDER BY id ${order} LIMIT ?`)
      .all(account, options.market ?? null, options.market ?? null, low, high, options.limit) as OrderRow[];
  }

  fillsOf(orderId: number): FillRow[] {
    return this.query('SELECT * FROM fills WHERE order_id = ? ORDER BY trade_id').all(orderId) as FillRow[];
  }

  /** An account's fills by trade id (a fill's time is its trade's), newest first unless the page starts after an id. */
  fills(account: number, options: { market?: string } & Page): FillRow[] {
    const { low, high, order } = this.idRange('trades', options);
    return this.query(`SELECT * FROM fills WHERE account = ? AND (? IS NULL OR market = ?) AND trade_id >= ? AND trade_id < ? ORDER BY trade_id ${order} LIMIT ?`)
      .all(account, options.market ?? null, options.market ?? null, low, high, options.limit) as FillRow[];
  }

  /** A market's trades by id, newest first unless the page starts after an id. */
  trades(market: string, options: Page): TradeRow[] {
    const { low, high, order } = this.idRange('trades', options);
    return this.query(`SELECT * FROM trades WHERE market = ? AND id >= ? AND id < ? ORDER BY id ${order} LIMIT ?`)
      .all(market, low, high, options.limit) as TradeRow[];
  }

  candles(market: string, interval: CandleInterval, options: { from?: number; to?: number; limit: number }): Candle[] {
    const rows = this.query(`SELECT market, interval, open_time AS openTime, open, high, low, close, volume, quote_volume AS quoteVolume, trades
      FROM candles WHERE market = ? AND interval = ? AND open_time >= ? AND open_time <= ? ORDER BY open_time DESC LIMIT ?`)
      .all(market, interval, options.from ?? 0, options.to ?? Number.MAX_SAFE_INTEGER, options.limit) as Candle[];
    return rows.reverse();
  }

  /** Open, high, low, volumes and trade count over [from, now], from 1-minute candles. */
  window(market: string, from: number): { open: number; high: number; low: number; volume: number; quoteVolume: number; trades: number } | undefined {
    const row = this.query(`SELECT (SELECT open FROM candles WHERE market = @market AND interval = '1m' AND open_time >= @from ORDER BY open_time LIMIT 1) AS open,
      max(high) AS high, min(low) AS low, sum(volume) AS volume, sum(quote_volume) AS quoteVolume, sum(trades) AS trades
      FROM candles WHERE market = @market AND interval = '1m' AND open_time >= @from`).get({ market, from }) as
      { open: number | null; high: number; low: number; volume: number; quoteVolume: number; trades: number };
    return row.open === null ? undefined : { ...row, open: row.open };
  }

  /** An account's ledger entries by id, newest first unless the page starts after an id. */
  ledger(account: number, options: { asset?: string } & Page): LedgerRow[] {
    const { low, high, order } = this.idRange('ledger', options);
    return this.query(`SELECT * FROM ledger WHERE account = ? AND (? IS NULL OR asset = ?) AND id >= ? AND id < ? ORDER BY id ${order} LIMIT ?`)
      .all(account, options.asset ?? null, options.asset ?? null, low, high, options.limit) as LedgerRow[];
  }

  /**
   * The ids a page may hold, [low, high), and the order to list them in. Times become ids: in each
   * of these tables a row's time never decreases as its id grows (the journal stamps commands with
   * a time that never goes back, and ids are handed out in journal order), so that a time range
   * is an id range, found by bisection on the primary key, and every listing reads one stretch of
   * its (account, id) index however far back it reaches.
   */
  private idRange(table: TimedTable, page: Page): { low: number; high: number; order: 'ASC' | 'DESC' } {
    let low = page.afterId === undefined ? 0 : page.afterId + 1;
    let high = page.beforeId ?? Number.MAX_SAFE_INTEGER;
    if (page.from !== undefined) low = Math.max(low, this.firstIdAtOrAfter(table, page.from));
    if (page.to !== undefined) high = Math.min(high, this.firstIdAtOrAfter(table, page.to + 1));
    return { low, high, order: page.afterId === undefined ? 'DESC' : 'ASC' };
  }

  /** The least id whose row's time is at or after `time` (past the last id when there is none). */
  private firstIdAtOrAfter(table: TimedTable, time: number): number {
    const next = this.query(`SELECT id, ${TIME_COLUMN[table]} AS time FROM ${table} WHERE id >= ? ORDER BY id LIMIT 1`);
    const last = this.query(`SELECT max(id) AS id FROM ${table}`).get() as { id: number | null };
    let low = 0;
    let high = (last.id ?? 0) + 1;
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      const row = next.get(mid) as { id: number; time: number } | undefined;
      if (row === undefined || row.time >= time) high = mid;
      else low = row.id + 1;
    }
    return low;
  }

  /** Empties the read model (before a rebuild from genesis). */
  reset(): void {
    this.db.exec('DELETE FROM orders; DELETE FROM fills; DELETE FROM trades; DELETE FROM candles; DELETE FROM ledger; DELETE FROM meta;');
    this.balances.clear();
    this.lastSeqValue = 0;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function addToCandles(candles: Map<string, Candle>, trade: TradeEvent, ts: number): void {
  for (const interval of CANDLE_INTERVAL_NAMES) {
    const openTime = bucketStart(ts, interval);
    const key = `${trade.market}|${interval}|${openTime}`;
    const candle = candles.get(key);
    if (candle === undefined) {
      candles.set(key, {
        market: trade.market, interval, openTime, open: trade.price, high: trade.price, low: trade.price, close: trade.price,
        volume: trade.quantity, quoteVolume: trade.quoteQuantity, trades: 1,
      });
    } else {
      if (trade.price > candle.high) candle.high = trade.price;
      if (trade.price < candle.low) candle.low = trade.price;
      candle.close = trade.price;
      candle.volume += trade.quantity;
      candle.quoteVolume += trade.quoteQuantity;
      candle.trades += 1;
    }
  }
}
