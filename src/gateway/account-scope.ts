/**
 * Which accounts an API key acts on. A key is bound to one account, which requests act on unless
 * they name another (`account` in an order, `?account=` on a listing). A key bound to the user's
 * main account may name any of the user's accounts, as one BlockTrade key trades every portfolio;
 * a key bound to a sub-account acts on that account alone, so that a bot's key never reaches the
 * rest of the user's funds.
 */
import type { OrderState } from '../core/index.js';
import type { Exchange } from '../exchange.js';
import type { ApiKeyRecord } from '../identity/store.js';
import { ApiError } from './errors.js';
import { idFrom } from './ids.js';

export function mayActOn(exchange: Exchange, key: ApiKeyRecord, account: number): boolean {
  if (account === key.account) return true;
  if (exchange.identity.user(key.userId)?.account !== key.account) return false;
  return exchange.identity.accountsOf(key.userId).some((a) => a.id === account);
}

/**
 * The account a request acts on: the one it names (a number in a body, digits in a query), else
 * the key's. Naming one outside the key's reach is refused the same way whether or not it exists.
 */
export function actingAccount(exchange: Exchange, key: ApiKeyRecord, named: unknown): number {
  if (named === undefined) return key.account;
  const account = idFrom(named);
  if (account === undefined || !Number.isSafeInteger(account) || account <= 0) {
    throw new ApiError(400, 'INVALID_REQUEST', 'account must be an account id');
  }
  if (!mayActOn(exchange, key, account)) throw new ApiError(403, 'ACCOUNT_NOT_ALLOWED', `this key may not act on account ${account}`);
  return account;
}

/**
 * The account holding order `orderId` when the key may act on it (open orders from the engine,
 * others from the read model); undefined otherwise, so that another user's order looks absent.
 */
export function orderAccountInScope(exchange: Exchange, key: ApiKeyRecord, orderId: number): number | undefined {
  const account = exchange.engine.openOrder(orderId)?.account ?? exchange.projector.order(orderId)?.account;
  return account !== undefined && mayActOn(exchange, key, account) ? account : undefined;
}

/** Order `orderId` while it is open and the key may act on its account; undefined otherwise (as if absent). */
export function openOrderInScope(exchange: Exchange, key: ApiKeyRecord, orderId: number): OrderState | undefined {
  const open = exchange.engine.openOrder(orderId);
  return open !== undefined && mayActOn(exchange, key, open.account) ? open : undefined;
}
