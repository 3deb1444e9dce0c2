/**
 * The demo market maker: two simulated traders that keep the demo books and tape alive, so
 * that a newcomer sees a living exchange. They trade through the same sequencer as everyone
 * (no shortcut into the engine): a maker quotes a ladder around a drifting reference price,
 * and a taker now and then crosses the spread.
 */
import { randomBytes } from 'node:crypto';
import type { Command, Market } from '../core/index.js';
import type { Exchange } from '../exchange.js';
import { parseMinor } from '../money/index.js';

export interface MarketMakerOptions {
  intervalMs: number;
  /**
   * The maker moves its price and quotes its ladder anew every this many intervals (and at the
   * start); the taker may trade at every one. Each new ladder is a cancel and 2 × levels orders
   * per market, which the journal keeps for good: quoting every second, the demo wrote about
   * 2 GB a day.
   */
  requoteEvery: number;
  levels: number;
  /** Chance per market and interval that the taker trades. */
  takeProbability: number;
}

const DEFAULT_OPTIONS: MarketMakerOptions = { intervalMs: 1_000, requoteEvery: 5, levels: 6, takeProbability: 0.5 };

/** Reference prices in whole quote units per whole base unit, as decimal strings. */
const REFERENCE: Record<string, string> = { 'BTC-USDT': '65000', 'ETH-USDT': '3200', 'ETH-BTC': '0.049', 'BTC-EUR': '60000' };
const FUNDS: Record<string, string> = { BTC: '1000', ETH: '20000', USDT: '100000000', EUR: '50000000' };
/**
 * What the first level of a side is worth, in the quote asset; level n quotes about n times as
 * much. Six levels then hold some 40,000 USDT a side on BTC-USDT: enough that a newcomer's first
 * market order fills instead of emptying the book.
 */
const LEVEL_NOTIONAL: Record<string, string> = { 'BTC-USDT': '2000', 'ETH-USDT': '1000', 'ETH-BTC': '0.03', 'BTC-EUR': '2000' };

export class DemoMarketMaker {
  private timer: NodeJS.Timeout | null = null;
  private makerAccount = 0;
  private takerAccount = 0;
  private readonly reference = new Map<string, number>();
  private running = false;
  private ticks = 0;

  /**
   * `onError` hears what stopped the demo from starting or from quoting once (a full disk, say):
   * the exchange goes on serving without it.
   */
  constructor(
    private readonly exchange: Exchange,
    private readonly onError: (error: unknown) => void,
    private readonly options: MarketMakerOptions = DEFAULT_OPTIONS,
  ) {}

  /** Funds the two traders and starts quoting; gives up (telling onError) if they cannot be set up. */
  async start(): Promise<void> {
    try {
      this.makerAccount = await this.trader('market-maker@demo.bourse');
      this.takerAccount = await this.trader('market-taker@demo.bourse');
    } catch (error) {
      this.onError(error);
      return;
    }
    for (const market of this.exchange.engine.marketList) {
      const reference = REFERENCE[market.id];
      if (reference === undefined) continue;
      const minor = Number(parseMinor(reference, market.quote.precision));
      this.reference.set(market.id, market.lastPriceTicks > 0 ? market.lastPriceTicks * market.tick : minor);
    }
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    this.timer.unref();
    await this.tick();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private async trader(email: string): Promise<number> {
    const existing = this.exchange.identity.userByEmail(email);
    const user = existing ?? (await this.exchange.createUser(email, randomBytes(24).toString('hex')));
    for (const asset of this.exchange.engine.assetList) {
      const amount = FUNDS[asset.code];
      if (amount === undefined) continue;
      // The key makes funding happen once, however often the demo starts.
      await this.exchange.submit({ type: 'deposit', account: user.account, asset: asset.code, amount: Number(parseMinor(amount, asset.precision)), key: `demo-funding:${email}:${asset.code}` });
    }
    return user.account;
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const requote = this.ticks % this.options.requoteEvery === 0;
    this.ticks += 1;
    try {
      for (const market of this.exchange.engine.marketList) {
        const reference = this.reference.get(market.id);
        if (reference === undefined || market.state !== 'trading') continue;
        const next = requote ? this.drift(market, reference) : reference;
        this.reference.set(market.id, next);
        const commands: Command[] = requote ? [{ type: 'cancel_all', account: this.makerAccount, market: market.id }] : [];
        for (let level = 1; requote && level <= this.options.levels; level++) {
          const offset = Math.max(market.tick, Math.round((next * level) / 2_000 / market.tick) * market.tick);
          const quantity = this.levelQuantity(market, next, level);
          commands.push({ type: 'place_order', account: this.makerAccount, market: market.id, side: 'buy', orderType: 'limit', price: this.onTick(market, next - offset), quantity, stp: 'cancel_maker' });
          commands.push({ type: 'place_order', account: this.makerAccount, market: market.id, side: 'sell', orderType: 'limit', price: this.onTick(market, next + offset), quantity, stp: 'cancel_maker' });
        }
        if (Math.random() < this.options.takeProbability) {
          commands.push({ type: 'place_order', account: this.takerAccount, market: market.id, side: Math.random() < 0.5 ? 'buy' : 'sell', orderType: 'market', quantity: this.quantity(market, next) });
        }
        await Promise.all(commands.map((cmd) => this.exchange.submit(cmd).catch(() => undefined)));
      }
    } catch (error) {
      this.onError(error);
    } finally {
      this.running = false;
    }
  }

  /** A random walk of at most 0.1 % a step. */
  private drift(market: Market, reference: number): number {
    const step = Math.round((reference * (Math.random() - 0.5)) / 500);
    return this.onTick(market, Math.max(market.tick * 100, reference + step));
  }

  private onTick(market: Market, price: number): number {
    return Math.max(market.tick, Math.round(price / market.tick) * market.tick);
  }

  /** One to five times the smallest quantity that meets the market's minimum notional. */
  private quantity(market: Market, price: number): number {
    return this.minimumLots(market, price) * (1 + Math.floor(Math.random() * 5)) * market.lot;
  }

  /** Level n of the ladder: 0.5 to 1.5 times n × LEVEL_NOTIONAL, within the market's limits. */
  private levelQuantity(market: Market, price: number, level: number): number {
    const notional = LEVEL_NOTIONAL[market.id];
    if (notional === undefined) return this.quantity(market, price);
    const quarters = BigInt(level * (2 + Math.floor(Math.random() * 5)));
    const lots = Number(lotsFor(parseMinor(notional, market.quote.precision) * quarters, 4n * BigInt(price), market));
    // Rounding the maximum notional up may overshoot it by a lot; one lot less stays within it.
    const maxLots = Math.min(Math.floor(market.maxQuantity / market.lot), Number(lotsFor(BigInt(market.maxNotional), BigInt(price), market)) - 1);
    return Math.max(Math.min(lots, maxLots), this.minimumLots(market, price)) * market.lot;
  }

  private minimumLots(market: Market, price: number): number {
    const byNotional = Number(lotsFor(BigInt(market.minNotional), BigInt(price), market));
    return Math.max(1, byNotional, Math.ceil(market.minQuantity / market.lot));
  }
}

/** ⌈notional / price⌉ in lots, in integers: notional × 10^basePrecision / (price × lot), rounded up. */
function lotsFor(notional: bigint, price: bigint, market: Market): bigint {
  const numerator = notional * 10n ** BigInt(market.base.precision);
  const denominator = price * BigInt(market.lot);
  return (numerator + denominator - 1n) / denominator;
}
