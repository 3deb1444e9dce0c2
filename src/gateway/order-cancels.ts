/**
 * Cancels for the native API, REST and socket alike. The answer is each order as it ended, built
 * from the order as the cancel found it (read inside the sequencer, see BeforeApply) and the
 * command's own events: a cancel neither waits for the read model nor queries it.
 */
import type { Exchange } from '../exchange.js';
import type { ApiKeyRecord } from '../identity/store.js';
import { openOrderInScope } from './account-scope.js';
import { throwIfRejected } from './errors.js';
import { endedOrderOut, endOf, orderBeforeEnd } from './wire.js';
import type { OrderBeforeEnd, OrderWire } from './wire.js';

/** Cancels one order; `fallbackAccount` is whose order it is taken to be when it is not open within the key's reach. */
export async function cancelOrderFor(exchange: Exchange, key: ApiKeyRecord, orderId: number, fallbackAccount: number): Promise<OrderWire> {
  // An order out of the key's reach (or not open) is cancelled as the fallback account's, which the engine refuses as unknown.
  const owner = openOrderInScope(exchange, key, orderId)?.account ?? fallbackAccount;
  const ack = await exchange.submit({ type: 'cancel_order', account: owner, orderId }, (engine) => {
    const order = engine.openOrder(orderId);
    return order === undefined ? undefined : orderBeforeEnd(exchange, order);
  });
  throwIfRejected(ack.events, exchange.engine);
  const ended = endOf(ack.events, orderId);
  if (ack.before === undefined || ended === undefined) throw new Error(`the cancel of order ${orderId} was accepted without ending it`);
  return endedOrderOut(exchange, ack.before, ended, ack.ts);
}

/**
 * Cancels an account's open order by the client's own id: what a bot does when its placement got
 * no answer, or when it tracks its orders by its own ids only.
 */
export async function cancelByClientIdFor(exchange: Exchange, account: number, clientOrderId: string): Promise<OrderWire> {
  const ack = await exchange.submit({ type: 'cancel_order', account, clientOrderId }, (engine) => {
    const order = engine.openOrderByClientId(account, clientOrderId);
    return order === undefined ? undefined : orderBeforeEnd(exchange, order);
  });
  throwIfRejected(ack.events, exchange.engine);
  const ended = ack.before === undefined ? undefined : endOf(ack.events, ack.before.order.orderId);
  if (ack.before === undefined || ended === undefined) throw new Error(`the cancel of client order ${clientOrderId} was accepted without ending it`);
  return endedOrderOut(exchange, ack.before, ended, ack.ts);
}

/** Cancels an account's open orders (in one market, or all), answering those it cancelled. */
export async function cancelAllFor(exchange: Exchange, account: number, market: string | undefined): Promise<OrderWire[]> {
  const ack = await exchange.submit({ type: 'cancel_all', account, ...(market === undefined ? {} : { market }) }, (engine) => {
    const open = new Map<number, OrderBeforeEnd>();
    for (const order of engine.openOrdersOf(account, { market })) open.set(order.orderId, orderBeforeEnd(exchange, order));
    return open;
  });
  throwIfRejected(ack.events, exchange.engine);
  const cancelled: OrderWire[] = [];
  for (const event of ack.events) {
    if (event.type !== 'order_cancelled') continue;
    const before = ack.before.get(event.orderId);
    if (before === undefined) throw new Error(`cancel_all ended order ${event.orderId}, which it did not find open`);
    cancelled.push(endedOrderOut(exchange, before, event, ack.ts));
  }
  return cancelled;
}
