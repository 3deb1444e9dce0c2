/**
 * A deliberately naive reference engine for model-based testing.
 *
 * Written apart from src/core and kept obvious rather than fast: orders live in one array,
 * each book is found by filtering and sorting that array, every amount is a bigint, and
 * conditional orders are found by scanning. It implements the same specification for one
 * market with fixed maker/taker fees (no tiers or levels; those have unit tests), and must
 * produce the same events, balances and books as the real engine.
 */
import type { Command, EngineEvent, Envelope, OrderView, PlaceOrder, StpMode, TimeInForce } from '../../src/core/index.js';

const BPS = 10_000n;
const PPM = 1_000_000n;
const DAY = 86_400_000;

export interface NaiveMarket {
  id: string;
  base: string;
  quote: string;
  basePrecision: number;
  tick: bigint;
  lot: bigint;
  minQuantity: bigint;
  makerFeePpm: bigint;
  takerFeePpm: bigint;
  quoteMinFee: bigint;
  baseMinFee: bigint;
  /** Open orders per account (0: no limit). */
  maxOpenOrders: number;
  /** How far from the last price a market order may trade, in basis points (0 or absent: no collar). */
  collarBps?: bigint;
}

interface NaiveOrder {
  id: number;
  account: number;
  user: number;
  side: 'buy' | 'sell';
  orderType: PlaceOrder['orderType'];
  tif: TimeInForce;
  stp: StpMode;
  clientOrderId: string | null;
  price: bigint; // minor units, 0 for market
  quantity: bigint; // minor units (current total, decrement may lower it)
  leaves: bigint;
  filled: bigint;
  cumQuote: bigint;
  quoteQuantity: bigint;
  quoteLeft: bigint;
  byQuote: boolean;
  reserved: bigint;
  stopPrice: bigint;
  callbackBps: bigint;
  extreme: bigint;
  isMarket: boolean;
  postOnly: boolean;
  expireAt: number;
  pending: boolean;
  resting: boolean;
  queueStamp: number;
}

class Reject extends Error {
  constructor(readonly reason: string) { super(reason); }
}

export class NaiveEngine {
  balances = new Map<string, { available: bigint; reserved: bigint; locked: bigint }>();
  orders: NaiveOrder[] = [];
  users = new Map<number, number>(); // account → user
  usedKeys = new Set<string>();
  last = 0n;
  /** Matching rules in force: from 2, a market order before the first trade is collared around the best opposite price. */
  rules = 1;
  tradeId = 1;
  stamp = 0;
  seq = 0;
  ts = 0;
  out: EngineEvent[] = [];
  changed: string[] = [];
  /** account → when its dead man's switch fires. */
  switches = new Map<number, number>();

  constructor(readonly m: NaiveMarket) {}

  addAccount(account: number, user: number): void {
    this.users.set(account, user);
  }

  bal(account: number, asset: string): { available: bigint; reserved: bigint; locked: bigint } {
    const key = `${account}|${asset}`;
    let b = this.balances.get(key);
    if (!b) { b = { available: 0n, reserved: 0n, locked: 0n }; this.balances.set(key, b); }
    if (!this.changed.includes(key)) this.changed.push(key);
    return b;
  }

  apply(env: Envelope): EngineEvent[] {
    this.seq = env.seq;
    this.ts = env.ts;
    this.out = [];
    this.changed = [];
    this.expire();
    try {
      this.run(env.cmd);
    } catch (e) {
      if (!(e instanceof Reject)) throw e;
      const cmd = env.cmd;
      if (cmd.type === 'place_order') {
        this.out.push({ type: 'order_rejected', orderId: this.seq, account: cmd.account, market: cmd.market, clientOrderId: cmd.clientOrderId ?? null, reason: e.reason as never, message: '' });
      } else {
        this.out.push({ type: 'command_rejected', command: cmd.type, reason: e.reason as never, message: '' });
      }
    }
    for (const key of this.changed) {
      const [account, asset] = key.split('|');
      const b = this.balances.get(key)!;
      this.out.push({ type: 'balance', account: Number(account), asset: asset!, available: Number(b.available), reserved: Number(b.reserved), locked: Number(b.locked) });
    }
    return this.out;
  }

  private run(cmd: Command): void {
    switch (cmd.type) {
      case 'deposit': {
        if (this.usedKeys.has(cmd.key)) throw new Reject('DUPLICATE_KEY');
        this.usedKeys.add(cmd.key);
        this.bal(-1, cmd.asset).available -= BigInt(cmd.amount);
        this.bal(cmd.account, cmd.asset).available += BigInt(cmd.amount);
        this.out.push({ type: 'deposited', account: cmd.account, counterparty: -1, asset: cmd.asset, amount: cmd.amount, key: cmd.key });
        return;
      }
      case 'debit': {
        if (this.usedKeys.has(cmd.key)) throw new Reject('DUPLICATE_KEY');
        if ((this.balances.get(`${cmd.account}|${cmd.asset}`)?.available ?? 0n) < BigInt(cmd.amount)) throw new Reject('INSUFFICIENT_BALANCE');
        this.usedKeys.add(cmd.key);
        this.bal(cmd.account, cmd.asset).available -= BigInt(cmd.amount);
        this.bal(-1, cmd.asset).available += BigInt(cmd.amount);
        this.out.push({ type: 'debited', account: cmd.account, counterparty: -1, asset: cmd.asset, amount: cmd.amount, key: cmd.key });
        return;
      }
      case 'place_order': return this.place(cmd);
      case 'cancel_order': {
        const o = this.find(cmd.account, cmd.orderId, cmd.clientOrderId);
        this.close(o, 'order_cancelled', 'USER');
        return;
      }
      case 'cancel_all': {
        this.cancelAllOf(cmd.account, cmd.cause === 'disconnect' ? 'DISCONNECT' : cmd.cause === 'operator' ? 'OPERATOR' : 'USER');
        return;
      }
      case 'set_cancel_after': {
        if (!Number.isSafeInteger(cmd.timeoutMs) || cmd.timeoutMs < 0 || cmd.timeoutMs > 86_400_000) throw new Reject('INVALID_COMMAND');
        if (cmd.timeoutMs === 0) this.switches.delete(cmd.account);
        else this.switches.set(cmd.account, this.ts + cmd.timeoutMs);
        this.out.push({ type: 'cancel_after_set', account: cmd.account, triggerTime: cmd.timeoutMs === 0 ? null : this.ts + cmd.timeoutMs });
        return;
      }
      case 'amend_order': return this.amend(cmd);
      case 'tick': return;
      case 'adopt_rules': {
        if (!Number.isSafeInteger(cmd.version) || cmd.version <= this.rules || cmd.version > 2) throw new Reject('INVALID_COMMAND');
        this.rules = cmd.version;
        this.out.push({ type: 'rules_adopted', version: cmd.version });
        return;
      }
      default: throw new Error(`naive engine does not model ${cmd.type}`);
    }
  }

  private open(): NaiveOrder[] {
    return this.orders.filter((o) => o.pending || o.resting);
  }

  private find(account: number, id?: number, clientOrderId?: string): NaiveOrder {
    const o = this.open().find((x) => x.account === account && (id !== undefined ? x.id === id : x.clientOrderId === clientOrderId));
    if (!o) throw new Reject('UNKNOWN_ORDER');
    return o;
  }

  /** The opposite side of an order, best first, then by time of queueing. */
  private book(side: 'buy' | 'sell'): NaiveOrder[] {
    const list = this.orders.filter((o) => o.resting && o.side === side);
    return list.sort((a, b) => {
      if (a.price !== b.price) return side === 'buy' ? (a.price > b.price ? -1 : 1) : (a.price < b.price ? -1 : 1);
      return a.queueStamp - b.queueStamp;
    });
  }

  private payAsset(o: NaiveOrder): string {
    return o.side === 'buy' ? this.m.quote : this.m.base;
  }

  private notional(price: bigint, quantity: bigint): bigint {
    return (price * quantity) / 10n ** BigInt(this.m.basePrecision);
  }

  private cancelAllOf(account: number, reason: string): void {
    for (const o of this.open().filter((x) => x.account === account).sort((a, b) => a.id - b.id)) this.close(o, 'order_cancelled', reason);
  }

  /** Switches fire in time order (then by account), after the expiries at or before their time. */
  private expire(): void {
    for (;;) {
      const due = [...this.switches].filter(([, at]) => at <= this.ts).sort((a, b) => a[1] - b[1] || a[0] - b[0])[0];
      if (due === undefined) return this.expireUntil(this.ts);
      const [account, at] = due;
      this.expireUntil(at);
      this.switches.delete(account);
      this.out.push({ type: 'cancel_after_triggered', account, triggerTime: at });
      this.cancelAllOf(account, 'CANCEL_AFTER');
    }
  }

  private expireUntil(until: number): void {
    const due = this.open().filter((o) => o.expireAt > 0 && o.expireAt <= until)
      .sort((a, b) => (a.expireAt !== b.expireAt ? a.expireAt - b.expireAt : a.id - b.id));
    for (const o of due) this.close(o, 'order_expired', 'EXPIRE_TIME');
  }

  private place(c: PlaceOrder): void {
    const m = this.m;
    if (!this.users.has(c.account)) throw new Reject('UNKNOWN_ACCOUNT');
    if (c.market !== m.id) throw new Reject('UNKNOWN_MARKET');
    const priced = c.orderType === 'limit' || c.orderType === 'stop_limit' || c.orderType === 'take_profit_limit';
    const conditional = c.orderType !== 'limit' && c.orderType !== 'market';
    const tif: TimeInForce = priced ? (c.timeInForce ?? 'GTC') : 'IOC';
    let expireAt = 0;
    if (tif === 'GTD') {
      if (c.expireTime! <= this.ts) throw new Reject('INVALID_EXPIRE_TIME');
      expireAt = c.expireTime!;
    } else if (tif === 'DAY') {
      expireAt = (Math.floor(this.ts / DAY) + 1) * DAY;
    }
    const price = BigInt(c.price ?? 0);
    if (priced && price % m.tick !== 0n) throw new Reject('TICK_SIZE');
    const stopPrice = BigInt(c.stopPrice ?? 0);
    if (conditional && c.orderType !== 'trailing_stop' && stopPrice % m.tick !== 0n) throw new Reject('TICK_SIZE');
    const byQuote = c.quoteQuantity !== undefined;
    const quantity = BigInt(c.quantity ?? 0);
    if (!byQuote) {
      if (quantity % m.lot !== 0n) throw new Reject('LOT_SIZE');
      if (quantity < m.minQuantity) throw new Reject('QUANTITY_TOO_SMALL');
    }
    const notional = priced ? this.notional(price, quantity) : 0n;
    const restricted = false;
    if (restricted) throw new Reject('DIRECTION_RESTRICTED');
    const staysOpen = conditional || (priced && tif !== 'IOC' && tif !== 'FOK');
    if (staysOpen && m.maxOpenOrders > 0 && this.open().filter((o) => o.account === c.account).length >= m.maxOpenOrders) {
      throw new Reject('TOO_MANY_OPEN_ORDERS');
    }
    if (c.clientOrderId !== undefined && this.open().some((o) => o.account === c.account && o.clientOrderId === c.clientOrderId)) {
      throw new Reject('DUPLICATE_CLIENT_ORDER_ID');
    }
    const o: NaiveOrder = {
      id: this.seq, account: c.account, user: this.users.get(c.account)!, side: c.side, orderType: c.orderType, tif,
      stp: c.stp ?? 'cancel_taker', clientOrderId: c.clientOrderId ?? null, price, quantity, leaves: quantity, filled: 0n,
      cumQuote: 0n, quoteQuantity: BigInt(c.quoteQuantity ?? 0), quoteLeft: BigInt(c.quoteQuantity ?? 0), byQuote,
      reserved: 0n, stopPrice, callbackBps: BigInt(c.callbackBps ?? 0), extreme: 0n, isMarket: !priced,
      postOnly: c.postOnly ?? false, expireAt, pending: false, resting: false, queueStamp: 0,
    };
    const available = this.peek(c.account, this.payAsset(o));
    let reserve: bigint;
    if (priced) reserve = c.side === 'buy' ? notional : quantity;
    else if (byQuote) reserve = c.side === 'buy' ? o.quoteQuantity : (conditional ? 0n : available);
    else reserve = c.side === 'buy' ? (conditional ? 0n : available) : quantity;
    if (reserve > available) throw new Reject('INSUFFICIENT_BALANCE');
    if (!conditional) {
      if (!priced && reserve === 0n) throw new Reject('INSUFFICIENT_BALANCE');
      if (priced && o.postOnly && this.takes(o)) throw new Reject('POST_ONLY_WOULD_TAKE');
      if (priced && tif === 'FOK' && this.fillable(o) < quantity) throw new Reject('FOK_CANNOT_FILL');
    }
    this.hold(o, reserve);
    this.orders.push(o);
    this.out.push({ type: 'order_accepted', ...this.view(o, conditional ? 'PENDING_TRIGGER' : 'NEW') });
    if (conditional) {
      o.pending = true;
      if (c.orderType === 'trailing_stop') o.extreme = this.last;
    } else {
      this.execute(o);
    }
    this.triggers();
  }

  private peek(account: number, asset: string): bigint {
    return this.balances.get(`${account}|${asset}`)?.available ?? 0n;
  }

  private view(o: NaiveOrder, status: OrderView['status']): OrderView {
    return {
      orderId: o.id, account: o.account, market: this.m.id, side: o.side, orderType: o.orderType, timeInForce: o.tif,
      price: o.isMarket ? null : Number(o.price), quantity: o.byQuote ? null : Number(o.quantity),
      quoteQuantity: o.byQuote ? Number(o.quoteQuantity) : null, stopPrice: o.stopPrice > 0n ? Number(o.stopPrice) : null,
      callbackBps: o.orderType === 'trailing_stop' ? Number(o.callbackBps) : null, postOnly: o.postOnly, stp: o.stp,
      clientOrderId: o.clientOrderId, expireTime: o.expireAt > 0 ? o.expireAt : null, status,
    };
  }

  private hold(o: NaiveOrder, amount: bigint): void {
    if (amount === 0n) return;
    const b = this.bal(o.account, this.payAsset(o));
    b.available -= amount;
    b.reserved += amount;
    o.reserved += amount;
  }

  private unhold(o: NaiveOrder, amount: bigint): void {
    if (amount === 0n) return;
    const b = this.bal(o.account, this.payAsset(o));
    b.available += amount;
    b.reserved -= amount;
    o.reserved -= amount;
  }

  private crosses(o: NaiveOrder, makerPrice: bigint): boolean {
    return o.side === 'buy' ? makerPrice <= o.price : makerPrice >= o.price;
  }

  private takes(o: NaiveOrder): boolean {
    const best = this.book(o.side === 'buy' ? 'sell' : 'buy')[0];
    return best !== undefined && this.crosses(o, best.price);
  }

  private fillable(o: NaiveOrder): bigint {
    let total = 0n;
    for (const maker of this.book(o.side === 'buy' ? 'sell' : 'buy')) {
      if (!this.crosses(o, maker.price)) break;
      if (maker.user === o.user) {
        if (o.stp === 'cancel_maker') continue;
        return total;
      }
      total += maker.leaves;
      if (total >= o.leaves) return total;
    }
    return total;
  }

  /** How much base the taker may take at a price; 0 means its money or target is used up. */
  private cap(t: NaiveOrder, price: bigint): bigint {
    if (!t.isMarket) return t.leaves;
    const lotCost = this.notional(price, this.m.lot);
    if (t.side === 'buy') {
      const lots = t.reserved / lotCost;
      return t.byQuote ? lots * this.m.lot : (lots * this.m.lot < t.leaves ? lots * this.m.lot : t.leaves);
    }
    if (!t.byQuote) return t.leaves;
    const byTarget = t.quoteLeft / lotCost;
    const byFunds = t.reserved / this.m.lot;
    return (byTarget < byFunds ? byTarget : byFunds) * this.m.lot;
  }

  /** Returns 'filled' | 'none' (no liquidity) | 'self' | 'budget' | 'collar'. */
  private match(t: NaiveOrder): string {
    const collar = this.m.collarBps ?? 0n;
    const opposite = this.book(t.side === 'buy' ? 'sell' : 'buy');
    const from = !t.isMarket || collar === 0n ? 0n : this.last > 0n || this.rules < 2 ? this.last : opposite[0]?.price ?? 0n;
    for (;;) {
      const makers = this.book(t.side === 'buy' ? 'sell' : 'buy');
      const maker = makers[0];
      if (!maker) return 'none';
      if (!t.isMarket && !this.crosses(t, maker.price)) return 'none';
      if (from > 0n && (t.side === 'buy' ? maker.price * BPS > from * (BPS + collar) : maker.price * BPS < from * (BPS - collar))) return 'collar';
      if (maker.user === t.user) {
        const stp = t.byQuote && t.stp === 'decrement' ? 'cancel_taker' : t.stp;
        if (stp === 'cancel_taker') return 'self';
        if (stp === 'cancel_maker') { this.close(maker, 'order_cancelled', 'SELF_TRADE'); continue; }
        if (stp === 'cancel_both') { this.close(maker, 'order_cancelled', 'SELF_TRADE'); return 'self'; }
        const q = maker.leaves < t.leaves ? maker.leaves : t.leaves;
        this.reduce(maker, q);
        if (maker.leaves === 0n) this.close(maker, 'order_cancelled', 'SELF_TRADE', q);
        else this.out.push({ type: 'order_amended', orderId: maker.id, account: maker.account, market: this.m.id, price: Number(maker.price), quantity: Number(maker.quantity), leavesQuantity: Number(maker.leaves), priorityKept: true });
        this.reduce(t, q);
        if (t.leaves === 0n) return 'self';
        continue;
      }
      const cap = this.cap(t, maker.price);
      if (cap === 0n) return 'budget';
      const q = maker.leaves < cap ? maker.leaves : cap;
      this.trade(t, maker, maker.price, q);
      if (maker.leaves === 0n) this.finish(maker);
      if (!t.byQuote && t.leaves === 0n) return 'filled';
    }
  }

  private reduce(o: NaiveOrder, q: bigint): void {
    o.leaves -= q;
    o.quantity -= q;
    if (o.side === 'sell') this.unhold(o, q);
    else if (!o.isMarket) this.unhold(o, this.notional(o.price, q));
  }

  private fee(amount: bigint, rate: bigint, min: bigint): bigint {
    if (rate === 0n || amount === 0n) return 0n;
    let f = (amount * rate + PPM - 1n) / PPM;
    if (f < min) f = min;
    return f > amount ? amount : f;
  }

  private trade(t: NaiveOrder, mk: NaiveOrder, price: bigint, q: bigint): void {
    const m = this.m;
    const quote = this.notional(price, q);
    const buyer = t.side === 'buy' ? t : mk;
    const seller = t.side === 'buy' ? mk : t;
    const buyerFee = this.fee(q, buyer === t ? m.takerFeePpm : m.makerFeePpm, m.baseMinFee);
    const sellerFee = this.fee(quote, seller === t ? m.takerFeePpm : m.makerFeePpm, m.quoteMinFee);
    const held = buyer.isMarket ? quote : this.notional(buyer.price, q);
    const bq = this.bal(buyer.account, m.quote);
    bq.reserved -= held;
    bq.available += held - quote;
    buyer.reserved -= held;
    this.bal(buyer.account, m.base).available += q - buyerFee;
    this.bal(seller.account, m.base).reserved -= q;
    seller.reserved -= q;
    this.bal(seller.account, m.quote).available += quote - sellerFee;
    if (buyerFee > 0n) this.bal(-2, m.base).available += buyerFee;
    if (sellerFee > 0n) this.bal(-2, m.quote).available += sellerFee;
    for (const o of [t, mk]) {
      o.filled += q;
      o.cumQuote += quote;
      if (o.byQuote) o.quoteLeft -= quote;
      else o.leaves -= q;
    }
    this.last = price;
    const id = this.tradeId++;
    const takerFee = t === buyer ? buyerFee : sellerFee;
    const makerFee = t === buyer ? sellerFee : buyerFee;
    this.out.push({
      type: 'trade', tradeId: id, market: m.id, price: Number(price), quantity: Number(q), quoteQuantity: Number(quote),
      takerSide: t.side, takerOrderId: t.id, makerOrderId: mk.id, takerAccount: t.account, makerAccount: mk.account,
      takerFee: Number(takerFee), makerFee: Number(makerFee), buyerFee: Number(buyerFee), sellerFee: Number(sellerFee),
    });
    for (const [o, fee, liquidity] of [[t, takerFee, 'taker'], [mk, makerFee, 'maker']] as const) {
      const done = o.byQuote ? o.quoteLeft === 0n : o.leaves === 0n;
      this.out.push({
        type: 'order_fill', orderId: o.id, account: o.account, market: m.id, side: o.side, tradeId: id, price: Number(price),
        quantity: Number(q), quoteQuantity: Number(quote), fee: Number(fee), feeAsset: o.side === 'buy' ? m.base : m.quote,
        liquidity, cumQuantity: Number(o.filled), leavesQuantity: Number(o.leaves), cumQuote: Number(o.cumQuote),
        avgPrice: Number(this.avg(o)), status: done ? 'FILLED' : 'PARTIALLY_FILLED',
      });
    }
  }

  private avg(o: NaiveOrder): bigint {
    return o.filled === 0n ? 0n : (o.cumQuote * 10n ** BigInt(this.m.basePrecision)) / o.filled;
  }

  private execute(o: NaiveOrder): void {
    const stop = this.match(o);
    if (o.isMarket) {
      if (stop === 'self') this.close(o, 'order_cancelled', 'SELF_TRADE');
      else if (o.byQuote ? o.quoteLeft === 0n : o.leaves === 0n) this.finish(o);
      else if (stop === 'none') this.close(o, 'order_expired', 'NO_LIQUIDITY');
      else if (stop === 'collar') this.close(o, 'order_expired', 'PRICE_COLLAR');
      else if (o.byQuote && o.filled > 0n && !(o.side === 'sell' && o.reserved < this.m.lot)) {
        const fills = this.out.filter((e) => e.type === 'order_fill' && e.orderId === o.id);
        (fills[fills.length - 1] as { status: string }).status = 'FILLED';
        this.finish(o);
      } else this.close(o, 'order_cancelled', 'INSUFFICIENT_BALANCE');
      return;
    }
    if (stop === 'self') this.close(o, 'order_cancelled', 'SELF_TRADE');
    else if (o.leaves === 0n) this.finish(o);
    else if (o.tif === 'IOC' || o.tif === 'FOK') this.close(o, 'order_expired', 'IOC');
    else { o.resting = true; o.queueStamp = ++this.stamp; }
  }

  private finish(o: NaiveOrder): void {
    o.resting = false;
    o.pending = false;
    this.unhold(o, o.reserved);
    this.orders = this.orders.filter((x) => x !== o);
  }

  private close(o: NaiveOrder, type: 'order_cancelled' | 'order_expired', reason: string, cancelled?: bigint): void {
    const leaves = cancelled ?? o.leaves;
    this.finish(o);
    this.out.push({
      type, orderId: o.id, account: o.account, market: this.m.id, reason: reason as never, cancelledQuantity: Number(leaves),
      cumQuantity: Number(o.filled), cumQuote: Number(o.cumQuote), avgPrice: Number(this.avg(o)),
    });
  }

  private risesTo(o: NaiveOrder): boolean {
    const stop = o.orderType === 'stop_limit' || o.orderType === 'stop_market';
    return stop ? o.side === 'buy' : o.side === 'sell';
  }

  private triggers(): void {
    for (;;) {
      if (this.last === 0n) return;
      const last = this.last;
      const pending = this.orders.filter((o) => o.pending);
      const rising = pending.filter((o) => o.orderType !== 'trailing_stop' && this.risesTo(o) && o.stopPrice <= last)
        .sort((a, b) => (a.stopPrice !== b.stopPrice ? (a.stopPrice < b.stopPrice ? -1 : 1) : a.id - b.id));
      const falling = pending.filter((o) => o.orderType !== 'trailing_stop' && !this.risesTo(o) && o.stopPrice >= last)
        .sort((a, b) => (a.stopPrice !== b.stopPrice ? (a.stopPrice > b.stopPrice ? -1 : 1) : a.id - b.id));
      let next = rising[0] ?? falling[0];
      if (!next) {
        for (const o of pending.filter((x) => x.orderType === 'trailing_stop').sort((a, b) => a.id - b.id)) {
          if (o.extreme === 0n) o.extreme = last;
          if (o.side === 'sell') {
            if (last > o.extreme) o.extreme = last;
            if (last * BPS <= o.extreme * (BPS - o.callbackBps)) { next = o; break; }
          } else {
            if (last < o.extreme) o.extreme = last;
            if (last * BPS >= o.extreme * (BPS + o.callbackBps)) { next = o; break; }
          }
        }
      }
      if (!next) return;
      this.fire(next, last);
    }
  }

  private fire(o: NaiveOrder, last: bigint): void {
    o.pending = false;
    this.out.push({ type: 'order_triggered', orderId: o.id, account: o.account, market: this.m.id, lastPrice: Number(last) });
    if (o.isMarket) {
      if (o.side === 'buy' && !o.byQuote) this.hold(o, this.peek(o.account, this.m.quote));
      if (o.reserved === 0n) { this.close(o, 'order_cancelled', 'INSUFFICIENT_BALANCE'); return; }
      this.execute(o);
      return;
    }
    if (o.postOnly && this.takes(o)) this.close(o, 'order_cancelled', 'POST_ONLY_WOULD_TAKE');
    else if (o.tif === 'FOK' && this.fillable(o) < o.leaves) this.close(o, 'order_cancelled', 'FOK_CANNOT_FILL');
    else this.execute(o);
  }

  private amend(c: Extract<Command, { type: 'amend_order' }>): void {
    const m = this.m;
    const o = this.find(c.account, c.orderId, c.clientOrderId);
    if (!o.resting) throw new Reject('ORDER_NOT_AMENDABLE');
    let total = o.filled + o.leaves;
    if (c.quantity !== undefined) {
      const q = BigInt(c.quantity);
      if (q % m.lot !== 0n) throw new Reject('LOT_SIZE');
      total = q;
      if (q <= o.filled || q < m.minQuantity) throw new Reject('QUANTITY_TOO_SMALL');
    }
    let price = o.price;
    if (c.price !== undefined) {
      price = BigInt(c.price);
      if (price % m.tick !== 0n) throw new Reject('TICK_SIZE');
    }
    const leaves = total - o.filled;
    const need = o.side === 'buy' ? this.notional(price, leaves) : leaves;
    const delta = need - o.reserved;
    if (delta > this.peek(o.account, this.payAsset(o))) throw new Reject('INSUFFICIENT_BALANCE');
    const moved = price !== o.price;
    if (moved && o.postOnly) {
      const best = this.book(o.side === 'buy' ? 'sell' : 'buy')[0];
      if (best && (o.side === 'buy' ? best.price <= price : best.price >= price)) throw new Reject('POST_ONLY_WOULD_TAKE');
    }
    const event = (kept: boolean): EngineEvent => ({
      type: 'order_amended', orderId: o.id, account: o.account, market: m.id, price: Number(o.price),
      quantity: Number(o.quantity), leavesQuantity: Number(o.leaves), priorityKept: kept,
    });
    if (!moved && leaves <= o.leaves) {
      o.leaves = leaves;
      o.quantity = total;
      if (delta < 0n) this.unhold(o, -delta);
      this.out.push(event(true));
      return;
    }
    o.resting = false;
    o.price = price;
    o.leaves = leaves;
    o.quantity = total;
    if (delta > 0n) this.hold(o, delta);
    else if (delta < 0n) this.unhold(o, -delta);
    this.out.push(event(false));
    this.execute(o);
    this.triggers();
  }

  /** Book by price level, best first, as the real engine reports it. */
  levels(side: 'buy' | 'sell'): { price: number; quantity: number; orders: number }[] {
    const levels: { price: number; quantity: number; orders: number }[] = [];
    for (const o of this.book(side)) {
      const top = levels[levels.length - 1];
      if (top && top.price === Number(o.price)) { top.quantity += Number(o.leaves); top.orders += 1; }
      else levels.push({ price: Number(o.price), quantity: Number(o.leaves), orders: 1 });
    }
    return levels;
  }
}
