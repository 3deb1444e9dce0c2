/**
 * The configuration file of `bourse start --config FILE` (JSON). Every field is optional; the
 * defaults below are what runs without a file. Amounts are decimal strings, fees fractions
 * ("0.001" = 0.1 %), price bands fractions of the last price ("0.4" … "2.5").
 */
import { readFileSync } from 'node:fs';
import { configProblems } from './config-schema.js';
import type { Command, CreateMarket, Engine, FeeTier } from './core/index.js';
import { formatMinor, parseMinor } from './money/index.js';
import { DEFAULT_FUNDING } from './funding/config.js';
import { LOOPBACK } from './identity/ip.js';
import { DEFAULT_SESSIONS } from './identity/store.js';
import { DEFAULT_RATE_BANS } from './identity/rate-bans.js';
import { DEFAULT_MAIL } from './mail/mailer.js';
import type { FundingConfig } from './funding/config.js';

export interface AssetConfig { code: string; precision: number; minFee?: string }
/** From `minVolume` (the user's 30-day volume in the market, in its quote asset) these rates apply, when lower. */
export interface FeeTierConfig { minVolume: string; makerFee: string; takerFee: string }
export interface MarketConfig {
  base: string; quote: string; tick: string; lot: string;
  minQuantity?: string; maxQuantity?: string; minNotional?: string; maxNotional?: string;
  makerFee?: string; takerFee?: string; bandLow?: string; bandHigh?: string;
  /** How far from the last price a market order may trade, a fraction ("0.05" = 5 %). */
  collar?: string;
  /** Open orders one account may have in the market (default DEFAULT_MAX_OPEN_ORDERS; 0: no limit). */
  maxOpenOrders?: number;
  /** Volume tiers, ascending by minVolume. */
  feeTiers?: FeeTierConfig[];
}
/** Users at `level` (set with `bourse admin user kyc`) pay these rates in every market, when lower. */
export interface FeeLevelConfig { level: number; makerFee: string; takerFee: string }
export interface Config {
  server: { host: string; port: number; bodyLimitBytes: number; keyWeightPerSecond: number; ipWeightPerSecond: number; ordersPerSecondPerUser: number; wsMessagesPerSecond: number; wsDepthIntervalMs: number; wsSocketsPerAddress: number; connectionsPerAddress: number; rateBanAfter: number; rateBanMs: number; rateBanMaxMs: number; rateBanExempt: string[]; requestTimeoutMs: number; trustProxy: string[]; adminAllow: string[] };
  /** sessionTtlMs and sessionIdleMs: how long a web session lasts at most, and unused. */
  auth: { recvWindowDefaultMs: number; recvWindowMaxMs: number; failuresBeforeLockout: number; lockoutMs: number; sessionTtlMs: number; sessionIdleMs: number };
  /** writerThread: fsync batches on a journal writer thread, overlapping the engine thread's work. */
  journal: { snapshotEvery: number; writerThread: boolean };
  /** Deposits and withdrawals per asset (see src/funding/config.ts). */
  funding: FundingConfig;
  /** dir: where `bourse admin backup` writes, each backup a folder of its own (default DATA/backups). */
  backups: { dir?: string };
  /** open: anyone may sign up by mail (POST /api/v1/auth/signup); false: only the operator creates users. */
  registration: { open: boolean };
  /** Mail to users: an SMTP server (password from BOURSE_SMTP_PASSWORD), or without one .eml files in DATA/outbox. */
  mail: { from: string; venueName: string; linkBase?: string; smtp?: { host: string; port: number; secure?: boolean; requireTls?: boolean; user?: string } };
  /** Created on start when missing (existing ones are left as they are, whatever the file says now). */
  assets: AssetConfig[];
  markets: MarketConfig[];
  feeLevels: FeeLevelConfig[];
}

/**
 * Each open order holds memory on the engine thread, so markets limit them per account unless
 * told otherwise (as Binance's MAX_NUM_ORDERS and Coinbase's 500 per product do).
 */
export const DEFAULT_MAX_OPEN_ORDERS = 500;

export const DEFAULT_CONFIG: Config = {
  server: { host: '127.0.0.1', port: 8080, bodyLimitBytes: 65_536, keyWeightPerSecond: 1_000, ipWeightPerSecond: 2_000, ordersPerSecondPerUser: 2_000, wsMessagesPerSecond: 2_000, wsDepthIntervalMs: 10, wsSocketsPerAddress: 200, connectionsPerAddress: 500, rateBanAfter: DEFAULT_RATE_BANS.ignoredRefusalsBeforeBan, rateBanMs: DEFAULT_RATE_BANS.banMs, rateBanMaxMs: DEFAULT_RATE_BANS.banMaxMs, rateBanExempt: LOOPBACK, requestTimeoutMs: 30_000, trustProxy: [], adminAllow: LOOPBACK },
  auth: { recvWindowDefaultMs: 5_000, recvWindowMaxMs: 60_000, failuresBeforeLockout: 10, lockoutMs: 300_000, sessionTtlMs: DEFAULT_SESSIONS.ttlMs, sessionIdleMs: DEFAULT_SESSIONS.idleMs },
  journal: { snapshotEvery: 100_000, writerThread: true },
  funding: DEFAULT_FUNDING,
  backups: {},
  registration: { open: true },
  mail: { ...DEFAULT_MAIL },
  assets: [],
  markets: [],
  feeLevels: [],
};

/** The demo venue (`--demo`). Each market's tick × lot is a whole number of quote minor units. */
export const DEMO_VENUE: Pick<Config, 'assets' | 'markets' | 'feeLevels'> = {
  assets: [
    { code: 'BTC', precision: 8 }, { code: 'ETH', precision: 8 }, { code: 'USDT', precision: 6 }, { code: 'EUR', precision: 2 },
    // Funding only (no market yet): tag and memo assets, and a SPEI-paid currency.
    { code: 'XRP', precision: 6 }, { code: 'XLM', precision: 7 }, { code: 'XEM', precision: 6 }, { code: 'MXN', precision: 2 },
  ],
  markets: [
    {
      base: 'BTC', quote: 'USDT', tick: '0.01', lot: '0.0001', minNotional: '1', makerFee: '0.001', takerFee: '0.002', bandLow: '0.4', bandHigh: '2.5', collar: '0.05',
      feeTiers: [{ minVolume: '100000', makerFee: '0.0008', takerFee: '0.0016' }, { minVolume: '1000000', makerFee: '0.0005', takerFee: '0.001' }],
    },
    { base: 'ETH', quote: 'USDT', tick: '0.01', lot: '0.0001', minNotional: '1', makerFee: '0.001', takerFee: '0.002', bandLow: '0.4', bandHigh: '2.5', collar: '0.05' },
    { base: 'ETH', quote: 'BTC', tick: '0.00001', lot: '0.001', minNotional: '0.0001', makerFee: '0.001', takerFee: '0.002' },
    // With cent-precision euros, a finer tick × lot could not fill exactly.
    { base: 'BTC', quote: 'EUR', tick: '1', lot: '0.01', minNotional: '10', makerFee: '0.0015', takerFee: '0.0025' },
  ],
  feeLevels: [{ level: 1, makerFee: '0.0008', takerFee: '0.0015' }, { level: 2, makerFee: '0', takerFee: '0.001' }],
};

export function loadConfig(path: string | undefined): Config {
  if (path === undefined) return structuredClone(DEFAULT_CONFIG);
  let file: Partial<Config>;
  try {
    file = JSON.parse(readFileSync(path, 'utf8')) as Partial<Config>;
  } catch (error) {
    throw new Error(`cannot read config ${path}: ${(error as Error).message}`);
  }
  const problems = configProblems(file);
  if (problems.length > 0) throw new Error(`config ${path}: ${problems.join('; ')}`);
  return {
    server: { ...DEFAULT_CONFIG.server, ...file.server },
    auth: { ...DEFAULT_CONFIG.auth, ...file.auth },
    journal: { ...DEFAULT_CONFIG.journal, ...file.journal },
    funding: { ...DEFAULT_CONFIG.funding, ...file.funding },
    backups: { ...file.backups },
    registration: { ...DEFAULT_CONFIG.registration, ...file.registration },
    mail: { ...DEFAULT_CONFIG.mail, ...file.mail },
    assets: file.assets ?? [],
    markets: file.markets ?? [],
    feeLevels: file.feeLevels ?? [],
  };
}

/** Commands that create the configured assets, markets and fee levels the engine does not have yet. */
export function venueCommands(venue: Pick<Config, 'assets' | 'markets'> & Partial<Pick<Config, 'feeLevels'>>, engine: Engine): Command[] {
  const commands: Command[] = [];
  const precision = new Map<string, number>(engine.assetList.map((a) => [a.code, a.precision]));
  for (const asset of venue.assets) {
    if (!precision.has(asset.code)) {
      commands.push({ type: 'create_asset', code: asset.code, precision: asset.precision, minFee: asset.minFee === undefined ? 0 : minor(asset.minFee, asset.precision, `${asset.code}.minFee`) });
      precision.set(asset.code, asset.precision);
    }
  }
  for (const m of venue.markets) {
    const id = `${m.base}-${m.quote}`;
    if (engine.markets.has(id)) continue;
    const { create, tiers } = marketCommands(m, precision);
    commands.push(create);
    if (tiers.length > 0) commands.push({ type: 'set_fees', market: id, makerFeePpm: create.makerFeePpm ?? 0, takerFeePpm: create.takerFeePpm ?? 0, tiers });
  }
  for (const level of venue.feeLevels ?? []) {
    if (engine.feeLevels.has(level.level)) continue;
    commands.push({ type: 'set_fee_level', level: level.level, ...levelFees(level) });
  }
  return commands;
}

/**
 * Where the config says otherwise than the venue it starts: the config creates assets, markets
 * and fee levels, and the admin API changes them after, so an edited config changes nothing that
 * exists. Each line names the setting, both values and the command that changes it.
 */
export function configDrift(venue: Pick<Config, 'assets' | 'markets'> & Partial<Pick<Config, 'feeLevels'>>, engine: Engine): string[] {
  const drift: string[] = [];
  const precision = new Map<string, number>(engine.assetList.map((a) => [a.code, a.precision]));
  for (const asset of venue.assets) {
    const live = precision.get(asset.code);
    if (live !== undefined && live !== asset.precision) drift.push(`${asset.code}.precision: ${asset.precision} in the config, ${live} in the venue (a precision never changes)`);
  }
  for (const m of venue.markets) {
    const id = `${m.base}-${m.quote}`;
    const market = engine.markets.get(id);
    if (market === undefined) continue;
    const view = engine.marketView(market);
    const { create, tiers } = marketCommands(m, precision);
    const differs = (field: string, configured: number | undefined, live: number, scale: number, change: string): void => {
      if (configured !== undefined && configured !== live) drift.push(`${id}.${field}: ${formatMinor(configured, scale)} in the config, ${formatMinor(live, scale)} in the venue (${change})`);
    };
    const [bp, qp] = [precision.get(m.base)!, precision.get(m.quote)!];
    differs('tick', create.tick, view.tick, qp, 'a tick never changes');
    differs('lot', create.lot, view.lot, bp, 'a lot never changes');
    const limit = `bourse admin market limit --market ${id}`;
    differs('minQuantity', create.minQuantity, view.minQuantity, bp, limit);
    differs('maxQuantity', create.maxQuantity, view.maxQuantity, bp, limit);
    differs('minNotional', create.minNotional, view.minNotional, qp, limit);
    differs('maxNotional', create.maxNotional, view.maxNotional, qp, limit);
    differs('bandLow', create.bandLowBps, view.bandLowBps, 4, limit);
    differs('bandHigh', create.bandHighBps, view.bandHighBps, 4, limit);
    differs('collar', create.collarBps, view.collarBps, 4, limit);
    if (create.maxOpenOrders !== view.maxOpenOrders) drift.push(`${id}.maxOpenOrders: ${String(create.maxOpenOrders)} in the config, ${String(view.maxOpenOrders)} in the venue (${limit})`);
    const fees = `bourse admin fees set --market ${id}`;
    differs('makerFee', create.makerFeePpm, view.makerFeePpm, 6, fees);
    differs('takerFee', create.takerFeePpm, view.takerFeePpm, 6, fees);
    if (m.feeTiers !== undefined && JSON.stringify(tiers) !== JSON.stringify(view.tiers)) drift.push(`${id}.feeTiers: ${tiers.length} tiers in the config, ${view.tiers.length} in the venue, or other rates (${fees} --tiers)`);
  }
  for (const level of venue.feeLevels ?? []) {
    const live = engine.feeLevels.get(level.level);
    if (live === undefined) continue;
    const { makerFeePpm, takerFeePpm } = levelFees(level);
    if (makerFeePpm !== live.makerFeePpm || takerFeePpm !== live.takerFeePpm) {
      drift.push(`feeLevels level ${level.level}: maker ${formatMinor(makerFeePpm, 6)} / taker ${formatMinor(takerFeePpm, 6)} in the config, ${formatMinor(live.makerFeePpm, 6)} / ${formatMinor(live.takerFeePpm, 6)} in the venue (bourse admin fees level --level ${level.level})`);
    }
  }
  return drift;
}

/** The configured market as the engine's create command, and its fee tiers. */
function marketCommands(m: Config['markets'][number], precision: ReadonlyMap<string, number>): { create: CreateMarket; tiers: FeeTier[] } {
  const id = `${m.base}-${m.quote}`;
  const bp = precision.get(m.base);
  const qp = precision.get(m.quote);
  if (bp === undefined || qp === undefined) throw new Error(`market ${id}: configure its assets first`);
  const create: CreateMarket = { type: 'create_market', market: id, base: m.base, quote: m.quote, tick: minor(m.tick, qp, `${id}.tick`), lot: minor(m.lot, bp, `${id}.lot`) };
  if (m.minQuantity !== undefined) create.minQuantity = minor(m.minQuantity, bp, `${id}.minQuantity`);
  if (m.maxQuantity !== undefined) create.maxQuantity = minor(m.maxQuantity, bp, `${id}.maxQuantity`);
  if (m.minNotional !== undefined) create.minNotional = minor(m.minNotional, qp, `${id}.minNotional`);
  if (m.maxNotional !== undefined) create.maxNotional = minor(m.maxNotional, qp, `${id}.maxNotional`);
  if (m.makerFee !== undefined) create.makerFeePpm = minor(m.makerFee, 6, `${id}.makerFee`);
  if (m.takerFee !== undefined) create.takerFeePpm = minor(m.takerFee, 6, `${id}.takerFee`);
  if (m.bandLow !== undefined) create.bandLowBps = minor(m.bandLow, 4, `${id}.bandLow`);
  if (m.bandHigh !== undefined) create.bandHighBps = minor(m.bandHigh, 4, `${id}.bandHigh`);
  if (m.collar !== undefined) create.collarBps = minor(m.collar, 4, `${id}.collar`);
  create.maxOpenOrders = m.maxOpenOrders ?? DEFAULT_MAX_OPEN_ORDERS;
  const tiers = (m.feeTiers ?? []).map((t, i) => ({
    minVolume: minor(t.minVolume, qp, `${id}.feeTiers[${i}].minVolume`),
    makerFeePpm: minor(t.makerFee, 6, `${id}.feeTiers[${i}].makerFee`),
    takerFeePpm: minor(t.takerFee, 6, `${id}.feeTiers[${i}].takerFee`),
  }));
  return { create, tiers };
}

function levelFees(level: NonNullable<Config['feeLevels']>[number]): { makerFeePpm: number; takerFeePpm: number } {
  return { makerFeePpm: minor(level.makerFee, 6, `feeLevels level ${level.level}.makerFee`), takerFeePpm: minor(level.takerFee, 6, `feeLevels level ${level.level}.takerFee`) };
}

function minor(text: string, scale: number, field: string): number {
  return Number(parseMinor(text, scale, { field }));
}
