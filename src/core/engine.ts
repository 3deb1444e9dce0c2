/**
 * The exchange engine: a pure, deterministic state machine.
 *
 *   apply({seq, ts, cmd}) → events
 *
 * Time and ids come from the envelope: an order placed by command `seq` has id `seq`, and
 * Day/GTD orders expire when a command's `ts` reaches their expiry. No clock, randomness or
 * I/O here; the same envelopes in give the same state and the same events out.
 */
import { BPS, EXTERNAL_ACCOUNT, FEE_ACCOUNT, MAX_CANCEL_AFTER_MS, PPM } from './types.js';
import type {
  AccountFeeRates, AmendOrder, AssetTotals, BalanceView, BookLevelView, BookView, CancelAll, CancelMarket, CancelOrder, CancelReason, CollectFees, Command,
  CreateAccount, CreateAsset, CreateMarket, CreateUser, Debit, Deposit, EngineEvent, Envelope, ExpireReason, FeeTier,
  LockFunds, MarketView, OrderAcceptedEvent, OrderBookView, UserHoldings, RestingOrderView, OrderEndedEvent, OrderFillEvent, OrderState, OrderType, OrderView, PlaceOrder, RejectReason,
  SetCancelAfter, SetFeeLevel, SetFees, SetMarketLimits, SetMarketState, SetOpenOrderLimit, SetRestriction, SetUserLevel, SettleFunds, Side, TimeInForce, Transfer,
  UnlockFunds,
} from './types.js';
import {
  Account, Asset, Balance, BUY, DONE, ExpiryHeap, Market, Order, OrderIndex, PENDING, SELL, User, VolumeWindow, WORKING,
} from './state.js';
import type { BookSide } from './state.js';
import { CancelAfterHeap } from './cancel-after.js';
import { compareProducts, floorDiv, mulDivCeil, mulOrOverflow, SAFE_MAX } from './arith.js';
import * as v from './validate.js';
import { hashState, restoreSnapshot, takeSnapshot } from './snapshot.js';
import type { EngineSnapshot } from './snapshot.js';
import { findViolations } from './invariants.js';

const DAY_MS = 86_400_000;

/**
 * A rejection raised inside a handler; turned into an event, with no state changed. Not an
 * Error: rejections are ordinary business outcomes, and capturing a stack trace for each would
 * make a flood of invalid orders expensive.
 */
class Rejection {
  constructor(readonly reason: RejectReason, readonly message: string) {}
}

function reject(reason: RejectReason, message: string = reason): never {
  throw new Rejection(reason, message);
}

/** Why matching of a taker stopped. */
const STOP_FILLED = 0;
const STOP_NO_LIQUIDITY = 1; // book empty or beyond the limit price
const STOP_SELF_TRADE = 2;
const STOP_BUDGET = 3; // a market order cannot pay for (or, sized in quote, does not want) one more lot
const STOP_PRICE_COLLAR = 4; // a market order reached the market's collar around the last price

/**
 * The newest matching rules this build plays (AdoptRules); a journal starts under version 1.
 * 2: before a market's first trade, a market order's collar is set by the best opposite price
 *    when it starts to trade (under 1 such an order had no collar at all).
 */
export const RULES_VERSION = 2;

export interface FeeLevel { makerFeePpm: number; takerFeePpm: number }
export interface Hold { account: Account; asset: Asset; amount: number; state: 'locked' | 'unlocked' | 'settled' }

export class Engine {
  readonly assets = new Map<string, Asset>();
  readonly assetList: Asset[] = [];
  readonly markets = new Map<string, Market>();
  readonly marketList: Market[] = [];
  readonly users = new Map<number, User>();
  readonly accounts = new Map<number, Account>();
  /** Every open order (resting, or waiting for its trigger), by id. */
  readonly orders = new OrderIndex();
  readonly feeLevels = new Map<number, FeeLevel>();
  /** Deposit and transfer keys already applied. */
  readonly usedKeys = new Set<string>();
  readonly holds = new Map<string, Hold>();
  readonly expiry = new ExpiryHeap();
  /** Accounts whose dead man's switch is armed, soonest first. */
  readonly cancelAfter = new CancelAfterHeap();
  readonly external = new Account(EXTERNAL_ACCOUNT, null);
  readonly feeAccount = new Account(FEE_ACCOUNT, null);
  nextTradeId = 1;
  lastSeq = 0;
  lastTs = 0;
  /** The matching rules in force (AdoptRules). */
  rulesVersion = 1;

  // Per-command scratch state.
  private seq = 0;
  private ts = 0;
  private events: EngineEvent[] = [];
  private readonly touched: Balance[] = [];
  private touchedCount = 0;

  constructor() {
    this.accounts.set(EXTERNAL_ACCOUNT, this.external);
    this.accounts.set(FEE_ACCOUNT, this.feeAccount);
  }

  apply(envelope: Envelope): EngineEvent[] {
    const { seq, ts, cmd } = envelope;
    if (!Number.isSafeInteger(seq) || seq <= this.lastSeq) {
      throw new Error(`engine: sequence ${seq} does not follow ${this.lastSeq}`);
    }
    if (!Number.isSafeInteger(ts) || ts < this.lastTs) throw new Error(`engine: time ${ts} goes back from ${this.lastTs}`);
    this.seq = seq;
    this.ts = ts;
    const events: EngineEvent[] = [];
    this.events = events;
    this.fireDue();
    try {
      this.dispatch(cmd);
    } catch (error) {
      if (error instanceof v.InvalidCommand) this.rejectCommand(cmd, 'INVALID_COMMAND', error.message);
      else if (error instanceof Rejection) this.rejectCommand(cmd, error.reason, error.message);
      else throw error;
    }
    this.flushBalances();
    this.lastSeq = seq;
    this.lastTs = ts;
    return events;
  }

  private dispatch(cmd: Command): void {
    if (cmd === null || typeof cmd !== 'object') v.fail('command must be an object');
    switch (cmd.type) {
      case 'place_order': return this.placeOrder(cmd);
      case 'cancel_order': return this.cancelOrder(cmd);
      case 'amend_order': return this.amendOrder(cmd);
      case 'cancel_all': return this.cancelAll(cmd);
      case 'cancel_market': return this.cancelMarket(cmd);
      case 'set_cancel_after': return this.setCancelAfter(cmd);
      case 'deposit': return this.deposit(cmd);
      case 'debit': return this.debit(cmd);
      case 'lock_funds': return this.lockFunds(cmd);
      case 'unlock_funds': return this.unlockFunds(cmd);
      case 'settle_funds': return this.settleFunds(cmd);
      case 'transfer': return this.transfer(cmd);
      case 'collect_fees': return this.collectFees(cmd);
      case 'create_asset': return this.createAsset(cmd);
      case 'create_market': return this.createMarket(cmd);
      case 'set_market_state': return this.setMarketState(cmd);
      case 'set_fees': return this.setFees(cmd);
      case 'set_open_order_limit': return this.setOpenOrderLimit(cmd);
      case 'set_fee_level': return this.setFeeLevel(cmd);
      case 'set_market_limits': return this.setMarketLimits(cmd);
      case 'create_user': return this.createUser(cmd);
      case 'set_user_level': return this.setUserLevel(cmd);
      case 'create_account': return this.createAccount(cmd);
      case 'set_restriction': return this.setRestriction(cmd);
      case 'tick': return;
      case 'adopt_rules': return this.adoptRules(cmd);
      default: v.fail(`unknown command type ${JSON.stringify((cmd as { type?: unknown }).type)}`);
    }
  }

  private adoptRules(cmd: Extract<Command, { type: 'adopt_rules' }>): void {
    const version = v.positiveId(cmd.version, 'version');
    // Not a rejection: a journal that needs rules this build does not have cannot be replayed by it
    // at all, and a replay that carried on under older rules would reach another state.
    if (version > RULES_VERSION) throw new Error(`engine: seq ${this.seq} adopts matching rules version ${version}; this build plays up to ${RULES_VERSION}: run the newer Bourse that wrote this journal`);
    if (version <= this.rulesVersion) v.fail(`rules version ${version} is not newer than the one in force (${this.rulesVersion})`);
    this.rulesVersion = version;
    this.events.push({ type: 'rules_adopted', version });
  }

  private rejectCommand(cmd: Command, reason: RejectReason, message: string): void {
    if (cmd !== null && typeof cmd === 'object' && cmd.type === 'place_order') {
      this.events.push({
        type: 'order_rejected',
        orderId: this.seq,
        account: typeof cmd.account === 'number' ? cmd.account : 0,
        market: typeof cmd.market === 'string' ? cmd.market : '',
        clientOrderId: typeof cmd.clientOrderId === 'string' ? cmd.clientOrderId : null,
        reason,
        message,
      });
      return;
    }
    const type = cmd !== null && typeof cmd === 'object' && typeof cmd.type === 'string' ? cmd.type : 'tick';
    this.events.push({ type: 'command_rejected', command: type, reason, message });
  }

  // ---------------------------------------------------------------------------------------
  // Reference data
  // ---------------------------------------------------------------------------------------

  private createAsset(cmd: CreateAsset): void {
    const code = v.assetCode(cmd.code);
    if (typeof cmd.precision !== 'number' || !Number.isInteger(cmd.precision) || cmd.precision < 0 || cmd.precision > 18) {
      v.fail('precision must be an integer between 0 and 18');
    }
    const minFee = v.optionalAmount(cmd.minFee, 'minFee', 0);
    if (this.assets.has(code)) reject('ALREADY_EXISTS', `asset ${code} exists`);
    const asset = new Asset(this.assetList.length, code, cmd.precision, minFee);
    this.assets.set(code, asset);
    this.assetList.push(asset);
    this.events.push({ type: 'asset_created', code, precision: asset.precision, minFee });
  }

  private createMarket(cmd: CreateMarket): void {
    const id = v.marketId(cmd.market);
    const base = this.assetOrReject(v.assetCode(cmd.base));
    const quote = this.assetOrReject(v.assetCode(cmd.quote));
    if (base === quote) v.fail('base and quote must differ');
    const tick = v.amount(cmd.tick, 'tick');
    const lot = v.amount(cmd.lot, 'lot');
    const scale = 10n ** BigInt(base.precision);
    const unit = (BigInt(tick) * BigInt(lot)) / scale;
    if ((BigInt(tick) * BigInt(lot)) % scale !== 0n || unit > BigInt(SAFE_MAX)) {
      v.fail('tick × lot must be a whole number of quote minor units (tick × lot / 10^base precision), so that every fill is exact');
    }
    const { minQuantity, maxQuantity, minNotional, maxNotional, bandLowBps, bandHighBps, collarBps } = marketLimits(cmd, {
      minQuantity: lot, maxQuantity: SAFE_MAX, minNotional: 0, maxNotional: SAFE_MAX, bandLowBps: 0, bandHighBps: 0, collarBps: 0,
    });
    const makerFeePpm = cmd.makerFeePpm === undefined ? 0 : v.feePpm(cmd.makerFeePpm, 'makerFeePpm');
    const takerFeePpm = cmd.takerFeePpm === undefined ? 0 : v.feePpm(cmd.takerFeePpm, 'takerFeePpm');
    const state = v.oneOf(cmd.state, v.MARKET_STATES, 'state', 'trading');
    const maxOpenOrders = v.optionalAmount(cmd.maxOpenOrders, 'maxOpenOrders', 0);
    if (this.markets.has(id)) reject('ALREADY_EXISTS', `market ${id} exists`);
    const market = new Market(
      this.marketList.length, id, base, quote, tick, lot, minQuantity, maxQuantity, minNotional, maxNotional,
      bandLowBps, bandHighBps, state, makerFeePpm, takerFeePpm, Number(unit),
    );
    market.maxOpenOrders = maxOpenOrders;
    market.collarBps = collarBps;
    this.markets.set(id, market);
    this.marketList.push(market);
    this.events.push({ type: 'market_created', market: this.marketView(market) });
  }

  private setMarketState(cmd: SetMarketState): void {
    const market = this.marketOrReject(cmd.market);
    market.state = v.oneOf(cmd.state, v.MARKET_STATES, 'state');
    this.events.push({ type: 'market_updated', market: this.marketView(market) });
  }

  private setFees(cmd: SetFees): void {
    const market = this.marketOrReject(cmd.market);
    const makerFeePpm = v.feePpm(cmd.makerFeePpm, 'makerFeePpm');
    const takerFeePpm = v.feePpm(cmd.takerFeePpm, 'takerFeePpm');
    const tiers: FeeTier[] = [];
    if (cmd.tiers !== undefined) {
      if (!Array.isArray(cmd.tiers) || cmd.tiers.length > 32) v.fail('tiers must be an array of at most 32 tiers');
      for (const tier of cmd.tiers) {
        const minVolume = v.amount(tier?.minVolume, 'tier.minVolume', true);
        if (tiers.length > 0 && minVolume <= tiers[tiers.length - 1]!.minVolume) v.fail('tiers must ascend by minVolume');
        tiers.push({ minVolume, makerFeePpm: v.feePpm(tier.makerFeePpm, 'tier.makerFeePpm'), takerFeePpm: v.feePpm(tier.takerFeePpm, 'tier.takerFeePpm') });
      }
    }
    market.makerFeePpm = makerFeePpm;
    market.takerFeePpm = takerFeePpm;
    market.tiers = tiers;
    this.events.push({ type: 'market_updated', market: this.marketView(market) });
  }

  /** New order limits, price band and market-order collar (those given); resting orders stay as they are. */
  private setMarketLimits(cmd: SetMarketLimits): void {
    const market = this.marketOrReject(cmd.market);
    const limits = marketLimits(cmd, market);
    market.minQuantity = limits.minQuantity;
    market.maxQuantity = limits.maxQuantity;
    market.minNotional = limits.minNotional;
    market.maxNotional = limits.maxNotional;
    market.bandLowBps = limits.bandLowBps;
    market.bandHighBps = limits.bandHighBps;
    market.collarBps = limits.collarBps;
    this.events.push({ type: 'market_updated', market: this.marketView(market) });
  }

  /** Orders already open above a lowered limit stay; the account places no more until below it. */
  private setOpenOrderLimit(cmd: SetOpenOrderLimit): void {
    const market = this.marketOrReject(cmd.market);
    market.maxOpenOrders = v.amount(cmd.maxOpenOrders, 'maxOpenOrders', true);
    this.events.push({ type: 'market_updated', market: this.marketView(market) });
  }

  private setFeeLevel(cmd: SetFeeLevel): void {
    const level = v.amount(cmd.level, 'level', true);
    const makerFeePpm = v.feePpm(cmd.makerFeePpm, 'makerFeePpm');
    const takerFeePpm = v.feePpm(cmd.takerFeePpm, 'takerFeePpm');
    this.feeLevels.set(level, { makerFeePpm, takerFeePpm });
    this.events.push({ type: 'fee_level_set', level, makerFeePpm, takerFeePpm });
  }

  private createUser(cmd: CreateUser): void {
    const id = v.positiveId(cmd.user, 'user');
    const level = v.optionalAmount(cmd.level, 'level', 0);
    if (this.users.has(id)) reject('ALREADY_EXISTS', `user ${id} exists`);
    this.users.set(id, new User(id, level));
    this.events.push({ type: 'user_created', user: id, level });
  }

  private setUserLevel(cmd: SetUserLevel): void {
    const user = this.users.get(v.positiveId(cmd.user, 'user')) ?? reject('UNKNOWN_USER');
    user.level = v.amount(cmd.level, 'level', true);
    this.events.push({ type: 'user_updated', user: user.id, level: user.level });
  }

  private createAccount(cmd: CreateAccount): void {
    const id = v.positiveId(cmd.account, 'account');
    const user = this.users.get(v.positiveId(cmd.user, 'user')) ?? reject('UNKNOWN_USER');
    if (this.accounts.has(id)) reject('ALREADY_EXISTS', `account ${id} exists`);
    const account = new Account(id, user);
    this.accounts.set(id, account);
    this.events.push({ type: 'account_created', account: id, user: user.id, restriction: account.restriction });
  }

  private setRestriction(cmd: SetRestriction): void {
    const account = this.userAccountOrReject(cmd.account);
    account.restriction = v.oneOf(cmd.restriction, v.RESTRICTIONS, 'restriction');
    this.events.push({ type: 'account_updated', account: account.id, user: account.user!.id, restriction: account.restriction });
  }

  // ---------------------------------------------------------------------------------------
  // Funds
  // ---------------------------------------------------------------------------------------

  /**
   * The asset, amount and key of a movement of funds that applies once per key (a deposit, a
   * debit, a transfer, a fee collection), checked in that order; `what` names it in a refusal.
   */
  private keyedAmount(cmd: { asset: unknown; amount: unknown; key: unknown }, what: string): { asset: Asset; amount: number; key: string } {
    const asset = this.assetOrReject(cmd.asset);
    const amount = v.amount(cmd.amount, 'amount');
    const key = v.key(cmd.key, 'key');
    if (this.usedKeys.has(key)) reject('DUPLICATE_KEY', `${what} ${key} was applied already`);
    return { asset, amount, key };
  }

  private deposit(cmd: Deposit): void {
    const account = this.userAccountOrReject(cmd.account);
    const { asset, amount, key } = this.keyedAmount(cmd, 'deposit');
    const world = this.external.balance(asset);
    if (world.available - amount < -SAFE_MAX) reject('OUT_OF_RANGE', 'total supply of the asset would leave the supported range');
    this.usedKeys.add(key);
    this.moveAvailable(world, account.balance(asset), amount);
    this.events.push({ type: 'deposited', account: account.id, counterparty: EXTERNAL_ACCOUNT, asset: asset.code, amount, key });
  }

  private debit(cmd: Debit): void {
    const account = this.userAccountOrReject(cmd.account);
    const { asset, amount, key } = this.keyedAmount(cmd, 'debit');
    const balance = account.balance(asset);
    if (balance.available < amount) reject('INSUFFICIENT_BALANCE', 'more than the account has available (funds reserved for orders or locked for a withdrawal are not debited)');
    this.usedKeys.add(key);
    this.moveAvailable(balance, this.external.balance(asset), amount);
    this.events.push({ type: 'debited', account: account.id, counterparty: EXTERNAL_ACCOUNT, asset: asset.code, amount, key });
  }

  private lockFunds(cmd: LockFunds): void {
    const account = this.userAccountOrReject(cmd.account);
    const asset = this.assetOrReject(cmd.asset);
    const amount = v.amount(cmd.amount, 'amount');
    const hold = v.key(cmd.hold, 'hold');
    if (this.holds.has(hold)) reject('DUPLICATE_KEY', `hold ${hold} exists`);
    const balance = account.balance(asset);
    if (balance.available < amount) reject('INSUFFICIENT_BALANCE');
    balance.available -= amount;
    balance.locked += amount;
    this.touch(balance);
    this.holds.set(hold, { account, asset, amount, state: 'locked' });
    this.events.push({ type: 'funds_locked', account: account.id, counterparty: account.id, asset: asset.code, amount, key: hold });
  }

  private lockedHold(holdKey: unknown): [string, Hold] {
    const key = v.key(holdKey, 'hold');
    const hold = this.holds.get(key) ?? reject('UNKNOWN_HOLD');
    if (hold.state !== 'locked') reject('DUPLICATE_KEY', `hold ${key} is ${hold.state} already`);
    return [key, hold];
  }

  private unlockFunds(cmd: UnlockFunds): void {
    const [key, hold] = this.lockedHold(cmd.hold);
    const balance = hold.account.balance(hold.asset);
    balance.locked -= hold.amount;
    balance.available += hold.amount;
    this.touch(balance);
    hold.state = 'unlocked';
    this.events.push({ type: 'funds_unlocked', account: hold.account.id, counterparty: hold.account.id, asset: hold.asset.code, amount: hold.amount, key });
  }

  private settleFunds(cmd: SettleFunds): void {
    const [key, hold] = this.lockedHold(cmd.hold);
    const fee = cmd.fee === undefined ? 0 : v.amount(cmd.fee, 'fee', true);
    if (fee > hold.amount) v.fail('fee exceeds the held amount');
    const balance = hold.account.balance(hold.asset);
    balance.locked -= hold.amount;
    this.touch(balance);
    const world = this.external.balance(hold.asset);
    world.available += hold.amount - fee;
    this.touch(world);
    if (fee > 0) {
      const collected = this.feeAccount.balance(hold.asset);
      collected.available += fee;
      this.touch(collected);
    }
    hold.state = 'settled';
    this.events.push({ type: 'funds_settled', account: hold.account.id, counterparty: EXTERNAL_ACCOUNT, asset: hold.asset.code, amount: hold.amount, key, ...(fee > 0 ? { fee } : {}) });
  }

  private transfer(cmd: Transfer): void {
    const from = this.userAccountOrReject(cmd.from);
    const to = this.userAccountOrReject(cmd.to);
    if (from === to) v.fail('cannot transfer to the same account');
    const { asset, amount, key } = this.keyedAmount(cmd, 'transfer');
    const source = from.balance(asset);
    if (source.available < amount) reject('INSUFFICIENT_BALANCE');
    this.usedKeys.add(key);
    this.moveAvailable(source, to.balance(asset), amount);
    this.events.push({ type: 'transferred', account: from.id, counterparty: to.id, asset: asset.code, amount, key });
  }

  private collectFees(cmd: CollectFees): void {
    const to = this.userAccountOrReject(cmd.to);
    const { asset, amount, key } = this.keyedAmount(cmd, 'collection');
    const source = this.feeAccount.balance(asset);
    if (source.available < amount) reject('INSUFFICIENT_BALANCE', 'the fee account holds less than that');
    this.usedKeys.add(key);
    this.moveAvailable(source, to.balance(asset), amount);
    this.events.push({ type: 'transferred', account: FEE_ACCOUNT, counterparty: to.id, asset: asset.code, amount, key });
  }

  private moveAvailable(from: Balance, to: Balance, amount: number): void {
    from.available -= amount;
    this.touch(from);
    to.available += amount;
    this.touch(to);
  }

  // ---------------------------------------------------------------------------------------
  // Orders: entry
  // ---------------------------------------------------------------------------------------

  private placeOrder(cmd: PlaceOrder): void {
    const account = this.userAccountOrReject(cmd.account);
    const market = this.marketOrReject(cmd.market);
    const orderType = v.oneOf(cmd.orderType, v.ORDER_TYPES, 'orderType');
    const side = v.oneOf<Side>(cmd.side, v.SIDES, 'side');
    const stp = v.oneOf(cmd.stp, v.STP_MODES, 'stp', 'cancel_taker');
    const clientOrderId = v.clientOrderId(cmd.clientOrderId);
    const postOnly = v.bool(cmd.postOnly, 'postOnly');
    const priced = orderType === 'limit' || orderType === 'stop_limit' || orderType === 'take_profit_limit';
    const conditional = orderType !== 'limit' && orderType !== 'market';
    const isBuy = side === 'buy';

    let timeInForce: TimeInForce;
    if (priced) {
      timeInForce = v.oneOf(cmd.timeInForce, v.TIME_IN_FORCES, 'timeInForce', 'GTC');
    } else {
      if (cmd.timeInForce !== undefined && cmd.timeInForce !== 'IOC') v.fail('market orders are IOC');
      timeInForce = 'IOC';
    }
    if (postOnly && (!priced || timeInForce === 'IOC' || timeInForce === 'FOK')) {
      v.fail('postOnly needs a limit order that may rest (GTC, DAY or GTD)');
    }
    let expireAt = 0;
    if (timeInForce === 'GTD') {
      if (typeof cmd.expireTime !== 'number' || !Number.isSafeInteger(cmd.expireTime)) v.fail('GTD needs expireTime');
      if (cmd.expireTime <= this.ts) reject('INVALID_EXPIRE_TIME', 'expireTime must be in the future');
      expireAt = cmd.expireTime;
    } else if (cmd.expireTime !== undefined) {
      v.fail('expireTime is only for GTD orders');
    } else if (timeInForce === 'DAY') {
      expireAt = (Math.floor(this.ts / DAY_MS) + 1) * DAY_MS;
    }

    // Sizes and prices, in minor units on the way in.
    let priceTicks = 0;
    if (priced) {
      const price = v.amount(cmd.price, 'price');
      if (price % market.tick !== 0) reject('TICK_SIZE', `price must be a multiple of the tick ${market.tick}`);
      priceTicks = price / market.tick;
    } else if (cmd.price !== undefined) {
      v.fail(`${orderType} orders take no price`);
    }
    let stopTicks = 0;
    let callbackBps = 0;
    if (orderType === 'trailing_stop') {
      callbackBps = v.amount(cmd.callbackBps, 'callbackBps');
      if (callbackBps >= BPS) v.fail('callbackBps must be below 10000');
      if (cmd.stopPrice !== undefined) v.fail('trailing stops take callbackBps, not stopPrice');
    } else if (conditional) {
      const stopPrice = v.amount(cmd.stopPrice, 'stopPrice');
      if (stopPrice % market.tick !== 0) reject('TICK_SIZE', `stopPrice must be a multiple of the tick ${market.tick}`);
      stopTicks = stopPrice / market.tick;
    } else if (cmd.stopPrice !== undefined || cmd.callbackBps !== undefined) {
      v.fail(`${orderType} orders take no stopPrice or callbackBps`);
    }

    let quantityLots = 0;
    let quoteQuantity = 0;
    const byQuote = cmd.quoteQuantity !== undefined;
    if (byQuote) {
      if (priced) v.fail('quoteQuantity is for market orders');
      if (cmd.quantity !== undefined) v.fail('give quantity or quoteQuantity, not both');
      if (conditional && !isBuy) v.fail('conditional sell orders are sized by quantity');
      quoteQuantity = v.amount(cmd.quoteQuantity, 'quoteQuantity');
      if (quoteQuantity < market.minNotional) reject('NOTIONAL_TOO_SMALL');
      if (quoteQuantity > market.maxNotional) reject('NOTIONAL_TOO_LARGE');
    } else {
      const quantity = v.amount(cmd.quantity, 'quantity');
      if (quantity % market.lot !== 0) reject('LOT_SIZE', `quantity must be a multiple of the lot ${market.lot}`);
      if (quantity < market.minQuantity) reject('QUANTITY_TOO_SMALL');
      if (quantity > market.maxQuantity) reject('QUANTITY_TOO_LARGE');
      quantityLots = quantity / market.lot;
    }
    let notional = 0;
    if (priced) {
      notional = mulOrOverflow(mulOrOverflow(priceTicks, quantityLots), market.unitNotional);
      if (notional < 0 || priceTicks * quantityLots < 0) reject('OUT_OF_RANGE', 'price × quantity is beyond the supported range');
      if (notional < market.minNotional) reject('NOTIONAL_TOO_SMALL');
      if (notional > market.maxNotional) reject('NOTIONAL_TOO_LARGE');
    }

    // Market and account permissions.
    this.checkMarketOpen(market);
    if (market.state === 'post_only' && !priced) reject('MARKET_POST_ONLY', 'the market accepts only limit orders that add liquidity');
    const restriction = account.restriction;
    if (restriction === 'no_trading' || (restriction === 'buy_only' && !isBuy) || (restriction === 'sell_only' && isBuy)) {
      reject('DIRECTION_RESTRICTED');
    }
    // Orders that cannot stay open (market, IOC, FOK) are not limited, so that an account at its
    // limit can still trade out of a position.
    const mayStayOpen = conditional || (priced && timeInForce !== 'IOC' && timeInForce !== 'FOK');
    if (mayStayOpen && market.maxOpenOrders > 0 && (account.openInMarket[market.index] ?? 0) >= market.maxOpenOrders) {
      reject('TOO_MANY_OPEN_ORDERS', `at most ${market.maxOpenOrders} open orders per account in ${market.id}`);
    }
    if (clientOrderId !== null && account.openByClientId.has(clientOrderId)) reject('DUPLICATE_CLIENT_ORDER_ID');
    if (priced) this.checkBand(market, priceTicks);

    const order = new Order(this.seq, account, market, isBuy ? BUY : SELL, orderType, timeInForce, stp, clientOrderId);
    order.priceTicks = priceTicks;
    order.quantityLots = quantityLots;
    order.leavesLots = quantityLots;
    order.byQuote = byQuote;
    order.quoteQuantity = quoteQuantity;
    order.quoteLeft = quoteQuantity;
    order.stopTicks = stopTicks;
    order.callbackBps = callbackBps;
    order.isMarket = !priced;
    order.postOnly = postOnly || market.state === 'post_only';
    order.expireAt = expireAt;
    order.priority = this.seq;

    // What the order holds while it is open.
    const payAsset = isBuy ? market.quote : market.base;
    const payBalance = account.balance(payAsset);
    let reserve: number;
    if (priced) reserve = isBuy ? notional : quantityLots * market.lot;
    else if (byQuote) reserve = isBuy ? quoteQuantity : (conditional ? 0 : payBalance.available);
    else reserve = isBuy ? (conditional ? 0 : payBalance.available) : quantityLots * market.lot;
    if (reserve > payBalance.available) reject('INSUFFICIENT_BALANCE');
    if (!conditional) {
      if (!priced && reserve === 0) reject('INSUFFICIENT_BALANCE');
      if (priced && order.postOnly && this.wouldTake(order)) reject('POST_ONLY_WOULD_TAKE');
      if (priced && timeInForce === 'FOK' && this.fillableLots(order) < quantityLots) reject('FOK_CANNOT_FILL');
    }

    if (conditional) order.state = PENDING;
    this.reserve(order, reserve);
    this.open(order);
    this.events.push(this.acceptedEvent(order));
    if (conditional) {
      this.arm(order);
    } else {
      this.execute(order);
    }
    this.runTriggers(market);
  }

  private checkMarketOpen(market: Market): void {
    if (market.state === 'halted') reject('MARKET_HALTED');
    if (market.state === 'cancel_only') reject('MARKET_CANCEL_ONLY');
  }

  private checkBand(market: Market, priceTicks: number): void {
    const last = market.lastPriceTicks;
    if (last === 0) return;
    if (market.bandLowBps > 0 && compareProducts(priceTicks, BPS, last, market.bandLowBps) < 0) reject('PRICE_BELOW_BAND');
    if (market.bandHighBps > 0 && compareProducts(priceTicks, BPS, last, market.bandHighBps) > 0) reject('PRICE_ABOVE_BAND');
  }

  /** Registers an accepted order as open for its account (ids, client ids). */
  private open(order: Order): void {
    this.orders.set(order.id, order);
    order.account.addOpen(order);
    if (order.clientOrderId !== null) order.account.openByClientId.set(order.clientOrderId, order);
    if (order.expireAt > 0) this.expiry.push(order);
  }

  private reserve(order: Order, amount: number): void {
    if (amount === 0) return;
    const balance = this.payBalance(order);
    balance.available -= amount;
    balance.reserved += amount;
    order.reserved += amount;
    this.touch(balance);
  }

  private payBalance(order: Order): Balance {
    const market = order.market;
    return order.account.balance(order.side === BUY ? market.quote : market.base);
  }

  /** Whether a limit order at its price would trade with the opposite side right now. */
  private wouldTake(order: Order): boolean {
    const best = this.opposite(order).best();
    return best !== undefined && this.crosses(order, best.priceTicks);
  }

  private opposite(order: Order): BookSide {
    return order.side === BUY ? order.market.asks : order.market.bids;
  }

  private crosses(order: Order, makerTicks: number): boolean {
    return order.side === BUY ? makerTicks <= order.priceTicks : makerTicks >= order.priceTicks;
  }

  /**
   * How much of a limit order could fill now: opposite liquidity at acceptable prices, up to the
   * first order of the same user whose self-trade prevention would stop the taker.
   */
  private fillableLots(order: Order): number {
    let lots = 0;
    const user = order.account.user;
    for (const level of this.opposite(order).levelsBestFirst()) {
      if (!this.crosses(order, level.priceTicks)) break;
      for (let maker = level.head; maker !== null; maker = maker.next) {
        if (maker.account.user === user) {
          if (order.stp === 'cancel_maker') continue;
          return lots;
        }
        lots += maker.leavesLots;
        if (lots >= order.leavesLots) return lots;
      }
    }
    return lots;
  }

  // ---------------------------------------------------------------------------------------
  // Orders: execution
  // ---------------------------------------------------------------------------------------

  /** Runs a live order as a taker, then rests, expires or closes what is left. */
  private execute(order: Order): void {
    const stop = this.match(order);
    if (order.isMarket) {
      this.closeMarketOrder(order, stop);
      return;
    }
    if (stop === STOP_SELF_TRADE) {
      this.end(order, 'order_cancelled', 'SELF_TRADE');
    } else if (order.leavesLots === 0) {
      this.finish(order);
    } else if (order.timeInForce === 'IOC' || order.timeInForce === 'FOK') {
      this.end(order, 'order_expired', 'IOC');
    } else {
      (order.side === BUY ? order.market.bids : order.market.asks).append(order);
    }
  }

  private closeMarketOrder(order: Order, stop: number): void {
    if (stop === STOP_SELF_TRADE) {
      this.end(order, 'order_cancelled', 'SELF_TRADE');
    } else if (order.byQuote ? order.quoteLeft === 0 : order.leavesLots === 0) {
      this.finish(order);
    } else if (stop === STOP_NO_LIQUIDITY) {
      this.end(order, 'order_expired', 'NO_LIQUIDITY');
    } else if (stop === STOP_PRICE_COLLAR) {
      this.end(order, 'order_expired', 'PRICE_COLLAR');
    } else if (order.byQuote && order.filledLots > 0 && !this.stoppedByFunds(order)) {
      // Sized in quote: done once what is left cannot buy (or sell for) one more lot.
      this.markLastFillFilled(order);
      this.finish(order);
    } else {
      this.end(order, 'order_cancelled', 'INSUFFICIENT_BALANCE');
    }
  }

  /** For a quote-sized sell: whether it stopped because the account ran out of base. */
  private stoppedByFunds(order: Order): boolean {
    if (order.side === BUY) return false;
    return order.reserved < order.market.lot;
  }

  private markLastFillFilled(order: Order): void {
    const events = this.events;
    for (let i = events.length - 1; i >= 0; i--) {
      const event = events[i]!;
      if (event.type === 'order_fill' && event.orderId === order.id) {
        (event as OrderFillEvent).status = 'FILLED';
        return;
      }
    }
  }

  /** Matches a taker against the opposite side until it is done or something stops it. */
  private match(taker: Order): number {
    const book = this.opposite(taker);
    const user = taker.account.user;
    const market = taker.market;
    // A market order's collar is set by the last price when it starts to trade, not by its own
    // fills; before the market's first trade (rules 2), by the best opposite price then.
    const collarFrom = !taker.isMarket || market.collarBps === 0 ? 0
      : market.lastPriceTicks > 0 || this.rulesVersion < 2 ? market.lastPriceTicks : book.best()?.priceTicks ?? 0;
    const collarBps = taker.side === BUY ? BPS + market.collarBps : BPS - market.collarBps;
    for (;;) {
      const level = book.best();
      if (level === undefined) return STOP_NO_LIQUIDITY;
      const priceTicks = level.priceTicks;
      if (!taker.isMarket && !this.crosses(taker, priceTicks)) return STOP_NO_LIQUIDITY;
      if (collarFrom > 0) {
        const side = compareProducts(priceTicks, BPS, collarFrom, collarBps);
        if (taker.side === BUY ? side > 0 : side < 0) return STOP_PRICE_COLLAR;
      }
      let maker = level.head;
      while (maker !== null) {
        const next = maker.next;
        if (maker.account.user === user) {
          const stp = taker.byQuote && taker.stp === 'decrement' ? 'cancel_taker' : taker.stp;
          if (stp === 'cancel_taker') return STOP_SELF_TRADE;
          if (stp === 'cancel_maker') {
            this.cancelResting(maker, 'SELF_TRADE');
          } else if (stp === 'cancel_both') {
            this.cancelResting(maker, 'SELF_TRADE');
            return STOP_SELF_TRADE;
          } else if (this.decrement(taker, maker)) {
            return STOP_SELF_TRADE;
          }
          maker = next;
          continue;
        }
        const cap = this.takerCapLots(taker, priceTicks);
        if (cap === 0) return STOP_BUDGET;
        const lots = maker.leavesLots < cap ? maker.leavesLots : cap;
        this.fill(taker, maker, priceTicks, lots);
        const takerDone = !taker.byQuote && taker.leavesLots === 0;
        if (maker.leavesLots > 0) return takerDone ? STOP_FILLED : STOP_BUDGET;
        book.remove(maker);
        this.finish(maker);
        if (takerDone) return STOP_FILLED;
        maker = next;
      }
    }
  }

  /** The most lots a taker may take at a price: its leaves, and for market orders its budget. */
  private takerCapLots(taker: Order, priceTicks: number): number {
    if (!taker.isMarket) return taker.leavesLots;
    const market = taker.market;
    const lotQuote = priceTicks * market.unitNotional;
    if (taker.side === BUY) {
      const affordable = floorDiv(taker.reserved, lotQuote);
      return taker.byQuote ? affordable : Math.min(affordable, taker.leavesLots);
    }
    if (!taker.byQuote) return taker.leavesLots;
    return Math.min(floorDiv(taker.quoteLeft, lotQuote), floorDiv(taker.reserved, market.lot));
  }

  /**
   * Self-trade prevention by decrement: both orders shrink by the overlap and no trade happens.
   * Returns true when the taker has nothing left.
   */
  private decrement(taker: Order, maker: Order): boolean {
    // No money moves, so the taker's budget does not limit the overlap.
    const lots = Math.min(maker.leavesLots, taker.leavesLots);
    this.shrink(maker, lots);
    if (maker.leavesLots === 0) {
      this.opposite(taker).remove(maker);
      this.end(maker, 'order_cancelled', 'SELF_TRADE', lots);
    } else {
      this.emitAmended(maker, true);
    }
    this.shrink(taker, lots);
    return taker.leavesLots === 0;
  }

  /** Takes lots off an order's leaves, its level and its reservation. */
  private shrink(order: Order, lots: number): void {
    order.leavesLots -= lots;
    order.quantityLots -= lots;
    if (order.level !== null) order.level.totalLots -= lots;
    const release = order.side === BUY
      ? (order.isMarket ? 0 : lots * order.priceTicks * order.market.unitNotional)
      : lots * order.market.lot;
    if (release > 0) this.release(order, release);
  }

  private release(order: Order, amount: number): void {
    const balance = this.payBalance(order);
    balance.reserved -= amount;
    balance.available += amount;
    order.reserved -= amount;
    this.touch(balance);
  }

  private fill(taker: Order, maker: Order, priceTicks: number, lots: number): void {
    const market = taker.market;
    const quantity = lots * market.lot;
    const quote = priceTicks * lots * market.unitNotional;
    const takerIsBuyer = taker.side === BUY;
    const buyer = takerIsBuyer ? taker : maker;
    const seller = takerIsBuyer ? maker : taker;
    const buyerUser = buyer.account.user!;
    const sellerUser = seller.account.user!;
    const buyerRate = this.feeRate(buyerUser, market, !takerIsBuyer);
    const sellerRate = this.feeRate(sellerUser, market, takerIsBuyer);
    const buyerFee = this.fee(quantity, buyerRate, market.base.minFee);
    const sellerFee = this.fee(quote, sellerRate, market.quote.minFee);

    // Buyer pays quote out of what its order holds; a limit buy that trades below its price
    // gets the difference back.
    const buyerQuote = buyer.account.balance(market.quote);
    const buyerHeld = buyer.isMarket ? quote : buyer.priceTicks * lots * market.unitNotional;
    buyerQuote.reserved -= buyerHeld;
    buyerQuote.available += buyerHeld - quote;
    buyer.reserved -= buyerHeld;
    this.touch(buyerQuote);
    const buyerBase = buyer.account.balance(market.base);
    buyerBase.available += quantity - buyerFee;
    this.touch(buyerBase);

    const sellerBase = seller.account.balance(market.base);
    sellerBase.reserved -= quantity;
    seller.reserved -= quantity;
    this.touch(sellerBase);
    const sellerQuote = seller.account.balance(market.quote);
    sellerQuote.available += quote - sellerFee;
    this.touch(sellerQuote);

    if (buyerFee > 0) {
      const feeBase = this.feeAccount.balance(market.base);
      feeBase.available += buyerFee;
      this.touch(feeBase);
    }
    if (sellerFee > 0) {
      const feeQuote = this.feeAccount.balance(market.quote);
      feeQuote.available += sellerFee;
      this.touch(feeQuote);
    }

    this.progress(taker, lots, quote);
    this.progress(maker, lots, quote);
    if (maker.level !== null) maker.level.totalLots -= lots;
    market.lastPriceTicks = priceTicks;
    if (market.tiers.length > 0) {
      this.addVolume(buyerUser, market, quote);
      this.addVolume(sellerUser, market, quote);
    }

    const tradeId = this.nextTradeId++;
    const price = priceTicks * market.tick;
    const takerFee = takerIsBuyer ? buyerFee : sellerFee;
    const makerFee = takerIsBuyer ? sellerFee : buyerFee;
    this.events.push({
      type: 'trade', tradeId, market: market.id, price, quantity, quoteQuantity: quote,
      takerSide: takerIsBuyer ? 'buy' : 'sell', takerOrderId: taker.id, makerOrderId: maker.id,
      takerAccount: taker.account.id, makerAccount: maker.account.id, takerFee, makerFee, buyerFee, sellerFee,
    });
    this.events.push(this.fillEvent(taker, tradeId, price, quantity, quote, takerFee, 'taker'));
    this.events.push(this.fillEvent(maker, tradeId, price, quantity, quote, makerFee, 'maker'));
  }

  private progress(order: Order, lots: number, quote: number): void {
    order.filledLots += lots;
    order.cumQuote += quote;
    if (order.byQuote) order.quoteLeft -= quote;
    else order.leavesLots -= lots;
  }

  private fillEvent(
    order: Order, tradeId: number, price: number, quantity: number, quote: number, fee: number, liquidity: 'maker' | 'taker',
  ): OrderFillEvent {
    const market = order.market;
    const done = order.byQuote ? order.quoteLeft === 0 : order.leavesLots === 0;
    return {
      type: 'order_fill', orderId: order.id, account: order.account.id, market: market.id,
      side: order.side === BUY ? 'buy' : 'sell', tradeId, price, quantity, quoteQuantity: quote, fee,
      feeAsset: order.side === BUY ? market.base.code : market.quote.code, liquidity,
      cumQuantity: order.filledLots * market.lot, leavesQuantity: order.leavesLots * market.lot,
      cumQuote: order.cumQuote, avgPrice: this.avgPrice(order), status: done ? 'FILLED' : 'PARTIALLY_FILLED',
    };
  }

  /** Average fill price in quote minor units per whole base unit, rounded down. */
  private avgPrice(order: Order): number {
    if (order.filledLots === 0) return 0;
    const market = order.market;
    // cumQuote = Σ priceTicks × lots × unit, so Σ priceTicks × lots = cumQuote / unit exactly.
    const tickLots = order.cumQuote / market.unitNotional;
    const whole = floorDiv(tickLots, order.filledLots);
    const rest = tickLots - whole * order.filledLots;
    const restTicks = rest * market.tick;
    const fraction = Number.isSafeInteger(restTicks)
      ? floorDiv(restTicks, order.filledLots)
      : Number((BigInt(rest) * BigInt(market.tick)) / BigInt(order.filledLots));
    return whole * market.tick + fraction;
  }

  private feeRate(user: User, market: Market, maker: boolean): number {
    let rate = maker ? market.makerFeePpm : market.takerFeePpm;
    if (market.tiers.length > 0) {
      const volume = user.volumes.get(market.index)?.total(this.ts) ?? 0;
      for (const tier of market.tiers) {
        if (volume < tier.minVolume) break;
        const tierRate = maker ? tier.makerFeePpm : tier.takerFeePpm;
        if (tierRate < rate) rate = tierRate;
      }
    }
    if (this.feeLevels.size > 0) {
      const level = this.feeLevels.get(user.level);
      if (level !== undefined) {
        const levelRate = maker ? level.makerFeePpm : level.takerFeePpm;
        if (levelRate < rate) rate = levelRate;
      }
    }
    return rate;
  }

  /** Fee on a received amount: rounded up (at most one minor unit in the exchange's favour), at least the asset's minimum, never more than received. */
  private fee(received: number, ratePpm: number, minFee: number): number {
    if (ratePpm === 0 || received === 0) return 0;
    let fee = mulDivCeil(received, ratePpm, PPM);
    if (fee < minFee) fee = minFee;
    return fee > received ? received : fee;
  }

  private addVolume(user: User, market: Market, quote: number): void {
    let window = user.volumes.get(market.index);
    if (window === undefined) {
      window = new VolumeWindow();
      user.volumes.set(market.index, window);
    }
    window.add(this.ts, quote);
  }

  // ---------------------------------------------------------------------------------------
  // Orders: conditional
  // ---------------------------------------------------------------------------------------

  private arm(order: Order): void {
    order.state = PENDING;
    const triggers = order.market.triggers;
    if (order.orderType === 'trailing_stop') {
      order.extremeTicks = order.market.lastPriceTicks;
      triggers.trailing.push(order);
      return;
    }
    triggers.add(order, this.firesOnRise(order));
  }

  /** Stops fire against the order's side (buy stops on a rise), take-profits with it. */
  private firesOnRise(order: Order): boolean {
    const isStop = order.orderType === 'stop_limit' || order.orderType === 'stop_market';
    return isStop ? order.side === BUY : order.side === SELL;
  }

  /** Fires every conditional order whose trigger the last price has reached, one at a time. */
  private runTriggers(market: Market): void {
    const triggers = market.triggers;
    if (triggers.size === 0) return;
    for (;;) {
      const last = market.lastPriceTicks;
      if (last === 0 || market.state !== 'trading') return;
      let next: Order | undefined;
      if ((triggers.rising.peek()?.stopTicks ?? Infinity) <= last) next = triggers.rising.shift();
      else if ((triggers.falling.peek()?.stopTicks ?? -Infinity) >= last) next = triggers.falling.shift();
      else next = triggers.trailing.take(last);
      if (next === undefined) return;
      this.fire(next, last);
    }
  }

  private fire(order: Order, last: number): void {
    order.state = WORKING;
    order.priority = this.seq;
    this.events.push({ type: 'order_triggered', orderId: order.id, account: order.account.id, market: order.market.id, lastPrice: last * order.market.tick });
    if (order.isMarket) {
      if (order.side === BUY && !order.byQuote) {
        // Sized in base with no price known in advance: it may spend what is available now.
        this.reserve(order, this.payBalance(order).available);
      }
      if (order.reserved === 0) {
        this.end(order, 'order_cancelled', 'INSUFFICIENT_BALANCE');
        return;
      }
      this.execute(order);
      return;
    }
    if (order.postOnly && this.wouldTake(order)) {
      this.end(order, 'order_cancelled', 'POST_ONLY_WOULD_TAKE');
    } else if (order.timeInForce === 'FOK' && this.fillableLots(order) < order.leavesLots) {
      this.end(order, 'order_cancelled', 'FOK_CANNOT_FILL');
    } else {
      this.execute(order);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Orders: cancel, amend, expire
  // ---------------------------------------------------------------------------------------

  private findOpenOrder(account: Account, orderId: unknown, clientId: unknown): Order {
    if (orderId !== undefined) {
      const order = this.orders.get(v.positiveId(orderId, 'orderId'));
      // Another account's order is reported as unknown: ids must not reveal what others hold.
      if (order === undefined || order.account !== account) reject('UNKNOWN_ORDER');
      return order;
    }
    const clientOrderId = v.clientOrderId(clientId);
    if (clientOrderId === null) v.fail('give orderId or clientOrderId');
    return account.openByClientId.get(clientOrderId) ?? reject('UNKNOWN_ORDER');
  }

  private cancelOrder(cmd: CancelOrder): void {
    const account = this.userAccountOrReject(cmd.account);
    const order = this.findOpenOrder(account, cmd.orderId, cmd.clientOrderId);
    if (order.market.state === 'halted') reject('MARKET_HALTED');
    this.cancelOpen(order, 'USER');
  }

  private cancelAll(cmd: CancelAll): void {
    const account = this.userAccountOrReject(cmd.account);
    const market = cmd.market === undefined ? null : this.marketOrReject(cmd.market);
    if (cmd.cause !== undefined && cmd.cause !== 'disconnect' && cmd.cause !== 'operator') v.fail('cause must be "disconnect" or "operator" when given');
    if (market !== null && market.state === 'halted') reject('MARKET_HALTED');
    this.cancelOpenOf(account, market, cmd.cause === 'disconnect' ? 'DISCONNECT' : cmd.cause === 'operator' ? 'OPERATOR' : 'USER');
  }

  /** Cancels the account's open orders (in `market`, or all), oldest first; a halted market's stay. */
  private cancelOpenOf(account: Account, market: Market | null, reason: CancelReason): void {
    for (const order of account.openOrdersById()) {
      if (market !== null && order.market !== market) continue;
      if (order.market.state === 'halted') continue;
      this.cancelOpen(order, reason);
    }
  }

  private setCancelAfter(cmd: SetCancelAfter): void {
    const account = this.userAccountOrReject(cmd.account);
    const timeout = cmd.timeoutMs;
    if (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout < 0 || timeout > MAX_CANCEL_AFTER_MS) {
      v.fail(`timeoutMs must be a whole number of milliseconds from 0 (off) to ${MAX_CANCEL_AFTER_MS}`);
    }
    const at = timeout === 0 ? 0 : this.ts + timeout;
    this.cancelAfter.set(account, at);
    this.events.push({ type: 'cancel_after_set', account: account.id, triggerTime: at === 0 ? null : at });
  }

  private cancelMarket(cmd: CancelMarket): void {
    const market = this.marketOrReject(cmd.market);
    const ids: number[] = [];
    for (const order of this.orders.values()) if (order.market === market) ids.push(order.id);
    ids.sort((a, b) => a - b);
    for (const id of ids) this.cancelOpen(this.orders.get(id)!, 'OPERATOR');
  }

  private cancelOpen(order: Order, reason: CancelReason): void {
    if (order.state === PENDING) order.market.triggers.remove(order);
    this.cancelResting(order, reason);
  }

  private cancelResting(order: Order, reason: CancelReason): void {
    if (order.level !== null) (order.side === BUY ? order.market.bids : order.market.asks).remove(order);
    this.end(order, 'order_cancelled', reason);
  }

  private amendOrder(cmd: AmendOrder): void {
    const account = this.userAccountOrReject(cmd.account);
    const order = this.findOpenOrder(account, cmd.orderId, cmd.clientOrderId);
    const market = order.market;
    this.checkMarketOpen(market);
    if (order.level === null) reject('ORDER_NOT_AMENDABLE', 'only resting limit orders can be amended');
    let quantityLots = order.filledLots + order.leavesLots;
    if (cmd.quantity !== undefined) {
      const quantity = v.amount(cmd.quantity, 'quantity');
      if (quantity % market.lot !== 0) reject('LOT_SIZE');
      quantityLots = quantity / market.lot;
      if (quantity > market.maxQuantity) reject('QUANTITY_TOO_LARGE');
      if (quantityLots <= order.filledLots || quantity < market.minQuantity) reject('QUANTITY_TOO_SMALL');
    }
    let priceTicks = order.priceTicks;
    if (cmd.price !== undefined) {
      const price = v.amount(cmd.price, 'price');
      if (price % market.tick !== 0) reject('TICK_SIZE');
      priceTicks = price / market.tick;
    }
    if (cmd.quantity === undefined && cmd.price === undefined) v.fail('give quantity or price');
    const notional = mulOrOverflow(mulOrOverflow(priceTicks, quantityLots), market.unitNotional);
    if (notional < 0) reject('OUT_OF_RANGE');
    if (notional < market.minNotional) reject('NOTIONAL_TOO_SMALL');
    if (notional > market.maxNotional) reject('NOTIONAL_TOO_LARGE');
    const priceChanged = priceTicks !== order.priceTicks;
    if (priceChanged) this.checkBand(market, priceTicks);
    const leavesLots = quantityLots - order.filledLots;
    const newReserve = order.side === BUY ? leavesLots * priceTicks * market.unitNotional : leavesLots * market.lot;
    const delta = newReserve - order.reserved;
    if (delta > this.payBalance(order).available) reject('INSUFFICIENT_BALANCE');
    if (priceChanged && order.postOnly) {
      const best = this.opposite(order).best();
      if (best !== undefined && (order.side === BUY ? best.priceTicks <= priceTicks : best.priceTicks >= priceTicks)) {
        reject('POST_ONLY_WOULD_TAKE');
      }
    }

    const book = order.side === BUY ? market.bids : market.asks;
    if (!priceChanged && leavesLots <= order.leavesLots) {
      order.level.totalLots -= order.leavesLots - leavesLots;
      order.leavesLots = leavesLots;
      order.quantityLots = quantityLots;
      if (delta < 0) this.release(order, -delta);
      this.emitAmended(order, true);
      return;
    }
    book.remove(order);
    order.priceTicks = priceTicks;
    order.leavesLots = leavesLots;
    order.quantityLots = quantityLots;
    order.priority = this.seq;
    if (delta > 0) this.reserve(order, delta);
    else if (delta < 0) this.release(order, -delta);
    this.emitAmended(order, false);
    this.execute(order);
    this.runTriggers(market);
  }

  private emitAmended(order: Order, priorityKept: boolean): void {
    const market = order.market;
    this.events.push({
      type: 'order_amended', orderId: order.id, account: order.account.id, market: market.id,
      price: order.priceTicks * market.tick, quantity: order.quantityLots * market.lot,
      leavesQuantity: order.leavesLots * market.lot, priorityKept,
    });
  }

  /**
   * Expires Day/GTD orders and fires dead man's switches whose time the current command has
   * reached, earliest first (at the same millisecond, expiries first).
   */
  private fireDue(): void {
    const ts = this.ts;
    for (;;) {
      const account = this.cancelAfter.peek();
      if (account === undefined || account.cancelAllAt > ts) {
        this.expireDue(ts);
        return;
      }
      const at = account.cancelAllAt;
      this.expireDue(at);
      this.cancelAfter.set(account, 0);
      this.events.push({ type: 'cancel_after_triggered', account: account.id, triggerTime: at });
      this.cancelOpenOf(account, null, 'CANCEL_AFTER');
    }
  }

  /** Expires every Day/GTD order whose expiry is at or before `until`. */
  private expireDue(until: number): void {
    const expiry = this.expiry;
    for (;;) {
      const top = expiry.peek();
      if (top === undefined || top.expireAt > until) return;
      expiry.pop();
      if (top.state === DONE) continue;
      if (top.state === PENDING) top.market.triggers.remove(top);
      if (top.level !== null) (top.side === BUY ? top.market.bids : top.market.asks).remove(top);
      this.end(top, 'order_expired', 'EXPIRE_TIME');
    }
  }

  /** Closes an order that leaves with quantity unfilled, emitting why. */
  private end(order: Order, type: OrderEndedEvent['type'], reason: CancelReason | ExpireReason, cancelledLots?: number): void {
    const market = order.market;
    const cancelled = cancelledLots ?? order.leavesLots;
    this.finish(order);
    this.events.push({
      type, orderId: order.id, account: order.account.id, market: market.id, reason,
      cancelledQuantity: cancelled * market.lot, cumQuantity: order.filledLots * market.lot,
      cumQuote: order.cumQuote, avgPrice: this.avgPrice(order),
    });
  }

  /** Removes a closed order from the open sets and returns what it still holds. */
  private finish(order: Order): void {
    order.state = DONE;
    if (order.reserved > 0) this.release(order, order.reserved);
    this.orders.delete(order.id);
    order.account.removeOpen(order);
    if (order.clientOrderId !== null) order.account.openByClientId.delete(order.clientOrderId);
  }

  // ---------------------------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------------------------

  private touch(balance: Balance): void {
    if (balance.touchedAt !== this.seq) {
      balance.touchedAt = this.seq;
      // Slots are reused rather than the array truncated, which would free its backing store.
      this.touched[this.touchedCount++] = balance;
    }
  }

  private flushBalances(): void {
    const touched = this.touched;
    for (let i = 0; i < this.touchedCount; i++) {
      const b = touched[i]!;
      this.events.push({ type: 'balance', account: b.account.id, asset: b.asset.code, available: b.available, reserved: b.reserved, locked: b.locked });
    }
    this.touchedCount = 0;
  }

  private assetOrReject(code: unknown): Asset {
    if (typeof code !== 'string') v.fail('asset must be a string');
    return this.assets.get(code) ?? reject('UNKNOWN_ASSET', `unknown asset ${code}`);
  }

  private marketOrReject(id: unknown): Market {
    if (typeof id !== 'string') v.fail('market must be a string');
    return this.markets.get(id) ?? reject('UNKNOWN_MARKET', `unknown market ${id}`);
  }

  private userAccountOrReject(id: unknown): Account {
    const account = this.accounts.get(v.positiveId(id, 'account'));
    if (account === undefined || account.user === null) reject('UNKNOWN_ACCOUNT');
    return account;
  }

  // ---------------------------------------------------------------------------------------
  // Whole-state operations
  // ---------------------------------------------------------------------------------------

  /** Throws when any invariant of DESIGN.md §3 is broken: trading on corrupt state is worse than stopping. */
  checkInvariants(): void {
    const problems = findViolations(this);
    if (problems.length > 0) throw new Error(`engine invariants broken after seq ${this.lastSeq}:\n${problems.join('\n')}`);
  }

  /** SHA-256 (hex) over a canonical encoding of the whole state. */
  stateHash(): string {
    return hashState(this);
  }

  snapshot(): EngineSnapshot {
    return takeSnapshot(this);
  }

  static restore(snapshot: EngineSnapshot): Engine {
    return restoreSnapshot(snapshot);
  }

  // ---------------------------------------------------------------------------------------
  // Views (for tests, projections and the gateways; never mutate)
  // ---------------------------------------------------------------------------------------

  marketView(market: Market): MarketView {
    return {
      market: market.id, base: market.base.code, quote: market.quote.code, tick: market.tick, lot: market.lot,
      minQuantity: market.minQuantity, maxQuantity: market.maxQuantity, minNotional: market.minNotional,
      maxNotional: market.maxNotional, makerFeePpm: market.makerFeePpm, takerFeePpm: market.takerFeePpm,
      tiers: market.tiers.map((t) => ({ ...t })), state: market.state, bandLowBps: market.bandLowBps,
      bandHighBps: market.bandHighBps, maxOpenOrders: market.maxOpenOrders, collarBps: market.collarBps, lastPrice: market.lastPriceTicks === 0 ? null : market.lastPriceTicks * market.tick,
    };
  }

  orderView(order: Order): OrderView {
    return this.describe(order, {});
  }

  private acceptedEvent(order: Order): OrderAcceptedEvent {
    return this.describe(order, { type: 'order_accepted' }) as OrderAcceptedEvent;
  }

  /**
   * Writes an order's view into `target` (one object, no copies: an order's view is built for
   * every placement and every order in a response).
   */
  private describe<T extends object>(order: Order, target: T): T & OrderView {
    const market = order.market;
    const priced = !order.isMarket;
    let status: OrderView['status'];
    if (order.state === PENDING) status = 'PENDING_TRIGGER';
    else if (order.state === DONE) status = order.byQuote || order.leavesLots === 0 ? 'FILLED' : 'CANCELLED';
    else status = order.filledLots > 0 ? 'PARTIALLY_FILLED' : 'NEW';
    const view = target as T & OrderView;
    view.orderId = order.id;
    view.account = order.account.id;
    view.market = market.id;
    view.side = order.side === BUY ? 'buy' : 'sell';
    view.orderType = order.orderType as OrderType;
    view.timeInForce = order.timeInForce;
    view.price = priced ? order.priceTicks * market.tick : null;
    view.quantity = order.byQuote ? null : order.quantityLots * market.lot;
    view.quoteQuantity = order.byQuote ? order.quoteQuantity : null;
    view.stopPrice = order.stopTicks > 0 ? order.stopTicks * market.tick : null;
    view.callbackBps = order.orderType === 'trailing_stop' ? order.callbackBps : null;
    view.postOnly = order.postOnly;
    view.stp = order.stp;
    view.clientOrderId = order.clientOrderId;
    view.expireTime = order.expireAt > 0 ? order.expireAt : null;
    view.status = status;
    return view;
  }

  /** When the account's dead man's switch fires (epoch ms), or null when it is not armed. */
  cancelAfterOf(accountId: number): number | null {
    const at = this.accounts.get(accountId)?.cancelAllAt ?? 0;
    return at === 0 ? null : at;
  }

  /**
   * The earliest time at which a command would expire an order or fire a switch (epoch ms), or
   * null when nothing waits on time. May be early (an expiry of an order that already ended),
   * never late: a host that sends a tick once this has passed keeps every deadline.
   */
  nextDueAt(): number | null {
    const order = this.expiry.peek();
    const account = this.cancelAfter.peek();
    if (order === undefined) return account === undefined ? null : account.cancelAllAt;
    return account === undefined ? order.expireAt : Math.min(order.expireAt, account.cancelAllAt);
  }

  /** An open order by id, or undefined when it is not open. */
  openOrder(id: number): OrderState | undefined {
    const order = this.orders.get(id);
    return order === undefined ? undefined : this.orderState(order);
  }

  /**
   * Open orders of an account, newest first: optionally only those of one market and with ids
   * below `beforeId`, and at most `limit` of them. It walks the account's list from the newest,
   * so a page costs what it skips and returns, not what the account holds.
   */
  openOrdersOf(accountId: number, options: { market?: string; beforeId?: number; limit?: number } = {}): OrderState[] {
    const orders: OrderState[] = [];
    const account = this.accounts.get(accountId);
    if (account === undefined) return orders;
    const { market, beforeId, limit = Infinity } = options;
    for (let o = account.openHead; o !== null && orders.length < limit; o = o.accountNext) {
      if ((beforeId === undefined || o.id < beforeId) && (market === undefined || o.market.id === market)) orders.push(this.orderState(o));
    }
    return orders;
  }

  /**
   * The fee rates the account's user pays in each market now (parts per million): the market's
   * rate, lowered by the volume tier the user's 30-day volume there reaches and by the user's
   * level, whichever is lowest, as trades are charged. Volume counts only while the market has tiers.
   */
  feeRatesOf(accountId: number): AccountFeeRates[] {
    const user = this.accounts.get(accountId)?.user ?? null;
    if (user === null) return [];
    return this.marketList.map((market) => ({
      market: market.id,
      makerFeePpm: this.feeRate(user, market, true),
      takerFeePpm: this.feeRate(user, market, false),
      volume30d: user.volumes.get(market.index)?.total(this.ts) ?? 0,
    }));
  }

  /**
   * Per asset, what the exchange owes its users (available, reserved for orders, locked for
   * withdrawals), the fees it has collected, and what has come in from outside net of what went
   * out (deposits less withdrawals). Double entry: users' total plus fees equals that net inflow.
   */
  ledgerTotals(): AssetTotals[] {
    // Sums of many balances can pass 2^53: counted in bigint.
    const totals: AssetTotals[] = this.assetList.map((asset) => ({ asset: asset.code, available: 0n, reserved: 0n, locked: 0n, fees: 0n, netInflow: 0n }));
    const whole = (balance: Balance): bigint => BigInt(balance.available) + BigInt(balance.reserved) + BigInt(balance.locked);
    for (const account of this.accounts.values()) {
      if (account.user === null) continue;
      for (const balance of account.balances) {
        if (balance === undefined) continue;
        const row = totals[balance.asset.index]!;
        row.available += BigInt(balance.available);
        row.reserved += BigInt(balance.reserved);
        row.locked += BigInt(balance.locked);
      }
    }
    for (const balance of this.feeAccount.balances) if (balance !== undefined) totals[balance.asset.index]!.fees += whole(balance);
    for (const balance of this.external.balances) if (balance !== undefined) totals[balance.asset.index]!.netInflow -= whole(balance);
    return totals;
  }

  /** An open order of an account by its client order id. */
  openOrderByClientId(accountId: number, clientOrderId: string): OrderState | undefined {
    const order = this.accounts.get(accountId)?.openByClientId.get(clientOrderId);
    return order === undefined ? undefined : this.orderState(order);
  }

  private orderState(order: Order): OrderState {
    const market = order.market;
    return this.describe(order, {
      filledQuantity: order.filledLots * market.lot,
      leavesQuantity: order.leavesLots * market.lot,
      cumQuote: order.cumQuote,
      avgPrice: this.avgPrice(order),
    });
  }

  balances(accountId: number): BalanceView[] {
    const account = this.accounts.get(accountId);
    if (account === undefined) return [];
    const views: BalanceView[] = [];
    for (const balance of account.balances) {
      if (balance === undefined) continue;
      views.push({ asset: balance.asset.code, available: balance.available, reserved: balance.reserved, locked: balance.locked });
    }
    return views;
  }

  balance(accountId: number, asset: string): BalanceView {
    const view = this.balances(accountId).find((b) => b.asset === asset);
    return view ?? { asset, available: 0, reserved: 0, locked: 0 };
  }

  book(marketId: string, depth = Infinity): BookView {
    const market = this.markets.get(marketId);
    if (market === undefined) return { market: marketId, bids: [], asks: [] };
    const side = (book: BookSide): BookLevelView[] => {
      const levels: BookLevelView[] = [];
      for (const level of book.levelsBestFirst()) {
        if (levels.length >= depth) break;
        levels.push({ price: level.priceTicks * market.tick, quantity: level.totalLots * market.lot, orders: level.count });
      }
      return levels;
    };
    return { market: marketId, bids: side(market.bids), asks: side(market.asks) };
  }

  /** What every user holds, in the assets named (in that order); see UserHoldings. */
  userHoldings(assetCodes: readonly string[]): UserHoldings {
    const width = assetCodes.length;
    const column = new Array<number>(this.assetList.length).fill(-1);
    for (const [k, code] of assetCodes.entries()) {
      const asset = this.assets.get(code);
      if (asset !== undefined) column[asset.index] = k;
    }
    const rowOf = new Map<number, number>();
    const users: number[] = [];
    const sums: number[] = [];
    for (const account of this.accounts.values()) {
      if (account.user === null) continue;
      let row = rowOf.get(account.user.id);
      if (row === undefined) {
        row = users.length;
        rowOf.set(account.user.id, row);
        users.push(account.user.id);
        for (let k = 0; k < width; k++) sums.push(0);
      }
      for (const balance of account.balances) {
        if (balance === undefined) continue;
        const k = column[balance.asset.index]!;
        if (k < 0) continue;
        sums[row * width + k]! += balance.available + balance.reserved + balance.locked;
      }
    }
    return { seq: this.lastSeq, users: Float64Array.from(users), sums: Float64Array.from(sums) };
  }

  /**
   * The book order by order: each side best price first and, within a price, in time priority;
   * at most `perSide` orders a side.
   */
  orderBook(marketId: string, perSide = Infinity): OrderBookView {
    const market = this.markets.get(marketId);
    if (market === undefined) return { market: marketId, bids: [], asks: [] };
    const side = (book: BookSide): RestingOrderView[] => {
      const orders: RestingOrderView[] = [];
      for (const level of book.levelsBestFirst()) {
        for (let o = level.head; o !== null; o = o.next) {
          if (orders.length >= perSide) return orders;
          orders.push(this.restingView(o));
        }
      }
      return orders;
    };
    return { market: marketId, bids: side(market.bids), asks: side(market.asks) };
  }

  /** An order resting in its book, or undefined (unknown, done, or waiting for its trigger). */
  restingOrder(id: number): RestingOrderView | undefined {
    const order = this.orders.get(id);
    return order === undefined || order.level === null ? undefined : this.restingView(order);
  }

  /** The ids of the orders resting at a price, the last queued first. */
  *queuedLastFirst(marketId: string, side: Side, price: number): Iterable<number> {
    const market = this.markets.get(marketId);
    if (market === undefined || price % market.tick !== 0) return;
    const level = (side === 'buy' ? market.bids : market.asks).levels.get(price / market.tick);
    for (let o = level?.tail ?? null; o !== null; o = o.prev) yield o.id;
  }

  private restingView(order: Order): RestingOrderView {
    const market = order.market;
    return {
      orderId: order.id, market: market.id, side: order.side === BUY ? 'buy' : 'sell',
      price: order.priceTicks * market.tick, quantity: order.leavesLots * market.lot, priority: order.priority,
    };
  }
}

type MarketLimits = Required<Omit<SetMarketLimits, 'type' | 'market'>>;

/** A market's order limits and band from a command, each defaulting to `current`; checked as a whole. */
function marketLimits(cmd: Partial<MarketLimits>, current: MarketLimits): MarketLimits {
  const limits: MarketLimits = {
    minQuantity: v.optionalAmount(cmd.minQuantity, 'minQuantity', current.minQuantity),
    maxQuantity: v.optionalAmount(cmd.maxQuantity, 'maxQuantity', current.maxQuantity),
    minNotional: v.optionalAmount(cmd.minNotional, 'minNotional', current.minNotional),
    maxNotional: v.optionalAmount(cmd.maxNotional, 'maxNotional', current.maxNotional),
    bandLowBps: v.optionalAmount(cmd.bandLowBps, 'bandLowBps', current.bandLowBps),
    bandHighBps: v.optionalAmount(cmd.bandHighBps, 'bandHighBps', current.bandHighBps),
    collarBps: v.optionalAmount(cmd.collarBps, 'collarBps', current.collarBps),
  };
  if (limits.collarBps > BPS) v.fail('collarBps must be at most 10000');
  if (limits.minQuantity > limits.maxQuantity || limits.minNotional > limits.maxNotional) v.fail('minimum above maximum');
  if (limits.bandLowBps > BPS || (limits.bandHighBps !== 0 && limits.bandHighBps < BPS)) {
    v.fail('bandLowBps must be at most 10000 and bandHighBps 0 or at least 10000');
  }
  return limits;
}
