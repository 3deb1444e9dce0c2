/**
 * An account's whole history as a CSV file (GET /api/v1/exports/{trades|ledger|orders}): what a
 * trader hands to a tax adviser or a spreadsheet. The rows are the listings' own (GET /trades,
 * /ledger, /orders?status=all), oldest first, read a page at a time and streamed, so that a long
 * history costs neither memory nor one long stall of the event loop.
 */
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Exchange } from '../exchange.js';
import { actingAccount } from './account-scope.js';
import { fillsListing, ledgerListing, ordersListing } from './account-listings.js';
import { csvHeader, csvLine } from './csv.js';
import { ApiError } from './errors.js';
import { PAGE_FIELDS } from './paging.js';
import type { Gateway } from './server.js';

const PAGE_ROWS = 1_000;

export type ExportKind = 'trades' | 'ledger' | 'orders';

/** Each export's columns: the fields of its listing's objects, in their order. */
const EXPORT_FIELDS: Record<ExportKind, readonly string[]> = {
  trades: ['trade_id', 'order_id', 'market', 'side', 'price', 'quantity', 'quote_quantity', 'fee', 'fee_asset', 'liquidity', 'time'],
  ledger: ['id', 'seq', 'time', 'asset', 'kind', 'available_change', 'reserved_change', 'locked_change', 'available', 'reserved', 'locked'],
  orders: [
    'id', 'account', 'client_order_id', 'market', 'side', 'type', 'time_in_force', 'price', 'quantity', 'quote_quantity', 'stop_price',
    'callback_rate', 'post_only', 'stp', 'expire_time', 'status', 'reason', 'filled_quantity', 'remaining_quantity', 'cumulative_quote',
    'average_price', 'created_at', 'updated_at',
  ],
};

export interface ExportQuery { market?: string; asset?: string; from?: string; to?: string; account?: string }

/** One page of the listing behind an export, oldest first after `after`. */
type PageReader = (after: string) => Promise<{ rows: Record<string, unknown>[]; next: string | null }>;

function pageReader(exchange: Exchange, kind: ExportKind, account: number, query: ExportQuery): PageReader {
  const page = { from: query.from, to: query.to, limit: String(PAGE_ROWS) };
  if (kind === 'ledger') {
    return async (after) => {
      const listed = await ledgerListing(exchange, account, { ...page, asset: query.asset, after }, PAGE_ROWS);
      return { rows: listed.entries as Record<string, unknown>[], next: listed.next_after };
    };
  }
  if (kind === 'trades') {
    return async (after) => {
      const listed = await fillsListing(exchange, account, { ...page, market: query.market, after }, PAGE_ROWS);
      return { rows: listed.trades as Record<string, unknown>[], next: listed.next_after };
    };
  }
  return async (after) => {
    const listed = await ordersListing(exchange, account, { ...page, market: query.market, status: 'all', after }, PAGE_ROWS);
    return { rows: listed.orders as Record<string, unknown>[], next: listed.next_after };
  };
}

/** The query fields of an export, for its schema (`extra`: what names the account). */
export function exportQuerySchema(extra: Record<string, unknown> = {}, required: string[] = []): Record<string, unknown> {
  return {
    type: 'object', additionalProperties: false, required,
    properties: {
      market: { type: 'string', maxLength: 40, description: 'trades and orders: one market only' },
      asset: { type: 'string', pattern: '^[A-Z0-9]{1,16}$', description: 'ledger: one asset only' },
      from: PAGE_FIELDS.from, to: PAGE_FIELDS.to, account: { type: 'string', pattern: '^[0-9]{1,16}$' }, ...extra,
    },
  };
}

export const EXPORT_KIND_PARAM = { type: 'object', required: ['kind'], properties: { kind: { type: 'string', enum: ['trades', 'ledger', 'orders'] } } } as const;

/** Answers with the account's export as a CSV file, streamed; bad input is refused before the answer starts. */
export async function sendExport(reply: FastifyReply, exchange: Exchange, kind: ExportKind, account: number, query: ExportQuery): Promise<FastifyReply> {
  if (kind === 'ledger' ? query.market !== undefined : query.asset !== undefined) {
    throw new ApiError(400, 'INVALID_REQUEST', kind === 'ledger' ? 'the ledger is narrowed by asset, not market' : `${kind} are narrowed by market, not asset`);
  }
  const readPage = pageReader(exchange, kind, account, query);
  // The first page before the answer starts, so that a bad market or range is still a 4xx.
  const first = await readPage('0');
  const fields = EXPORT_FIELDS[kind];
  async function* lines(): AsyncGenerator<string> {
    let page = first;
    yield csvHeader(fields);
    for (;;) {
      yield page.rows.map((row) => csvLine(fields, row)).join('');
      if (page.next === null) return;
      await nextTurn();
      page = await readPage(page.next);
    }
  }
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="bourse-${kind}-${account}.csv"`)
    .send(Readable.from(lines()));
}

export async function registerExportRoutes(app: FastifyInstance, exchange: Exchange, gateway: Gateway): Promise<void> {
  const read = gateway.authenticate('read');
  app.get<{ Params: { kind: ExportKind }; Querystring: ExportQuery }>('/exports/:kind', {
    schema: {
      description: "The account's fills, ledger or order history as CSV, oldest first: the fields of GET /trades, /ledger or /orders?status=all, times in ISO 8601 (UTC).",
      params: EXPORT_KIND_PARAM, querystring: exportQuerySchema(),
    },
    preValidation: read, config: { weight: 50 },
  }, async (request, reply) => sendExport(reply, exchange, request.params.kind, actingAccount(exchange, request.apiKey!, request.query.account), request.query));
}
