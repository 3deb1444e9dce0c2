/**
 * An account's orders, fills and ledger, a page at a time: what its owner reads through the
 * native API and support through the admin API, written once for both.
 */
import type { Exchange } from '../exchange.js';
import { ApiError } from './errors.js';
import { pageLinks, pageOf, pagesByTimeOrAfter } from './paging.js';
import type { PageQuery } from './paging.js';
import { fillOut, ledgerEntryOut, liveOrderOut, rowOrderOut, scalesOf } from './wire.js';

type Links = ReturnType<typeof pageLinks>;

/** The market a listing names, as the engine spells it (an unknown one is a 404). */
function marketOf(exchange: Exchange, market: string | undefined): string | undefined {
  return market === undefined ? undefined : scalesOf(exchange.engine, market).id;
}

/** Open orders (the engine's, without waiting for the read model) or, with status=all, the history. */
export async function ordersListing(exchange: Exchange, account: number, query: { market?: string; status?: string } & PageQuery, limitMax: number): Promise<{ orders: unknown[] } & Links> {
  const market = marketOf(exchange, query.market);
  const page = pageOf(query, 100, limitMax);
  if ((query.status ?? 'open') === 'open') {
    if (pagesByTimeOrAfter(query)) throw new ApiError(400, 'INVALID_REQUEST', 'after, from and to page through order history: add status=all');
    const open = exchange.engine.openOrdersOf(account, { market, beforeId: page.beforeId, limit: page.limit });
    return { orders: open.map((o) => liveOrderOut(exchange, o)), ...pageLinks(open, page, (o) => o.orderId) };
  }
  await exchange.readModelCaughtUp();
  const rows = exchange.projector.orders(account, { market, ...page });
  return { orders: rows.map((r) => rowOrderOut(exchange, r)), ...pageLinks(rows, page, (r) => r.id) };
}

export async function fillsListing(exchange: Exchange, account: number, query: { market?: string } & PageQuery, limitMax: number): Promise<{ trades: unknown[] } & Links> {
  const market = marketOf(exchange, query.market);
  const page = pageOf(query, 100, limitMax);
  await exchange.readModelCaughtUp();
  const rows = exchange.projector.fills(account, { market, ...page });
  return { trades: rows.map((f) => fillOut(exchange.engine, f)), ...pageLinks(rows, page, (f) => f.trade_id) };
}

export async function ledgerListing(exchange: Exchange, account: number, query: { asset?: string } & PageQuery, limitMax: number): Promise<{ entries: unknown[] } & Links> {
  const page = pageOf(query, 100, limitMax);
  await exchange.readModelCaughtUp();
  const rows = exchange.projector.ledger(account, { asset: query.asset, ...page });
  return { entries: rows.map((r) => ledgerEntryOut(exchange.engine, r)), ...pageLinks(rows, page, (r) => r.id) };
}
