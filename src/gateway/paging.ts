/**
 * How the history listings (order history, fills, the ledger, a market's trades) page: newest
 * first below `before` by default, or oldest first above `after` for a client catching up from the
 * last row it holds, either narrowed to a time range by `from` and `to`.
 */
import type { Page } from '../store/projector.js';
import { ApiError } from './errors.js';
import { NULLABLE_STRING } from './wire.js';

export const LIMIT_QUERY = { type: 'string', pattern: '^[0-9]{1,4}$' } as const;
const ID = { type: 'string', pattern: '^[0-9]{1,16}$' } as const;
const TIME = { type: 'string', pattern: '^[0-9]{1,16}$' } as const;

/** The query fields of a history listing, for its schema. */
export const PAGE_FIELDS = {
  limit: LIMIT_QUERY,
  before: { ...ID, description: 'rows with lower ids, newest first (the default order)' },
  after: { ...ID, description: 'rows with higher ids, oldest first (0: from the very first)' },
  from: { ...TIME, description: 'rows at or after this time (milliseconds since the epoch)' },
  to: { ...TIME, description: 'rows at or before this time (milliseconds since the epoch)' },
} as const;

/** The links of a history listing's answer, for its schema. */
export const PAGE_LINKS = {
  next_before: { ...NULLABLE_STRING, description: 'newest-first pages: pass as `before` for the next page; null on the last' },
  next_after: { ...NULLABLE_STRING, description: 'oldest-first pages (`after`): pass as `after` for the next page; null on the last' },
} as const;

export interface PageQuery { limit?: string; before?: string; after?: string; from?: string; to?: string }

export function limitOf(text: string | undefined, fallback: number, max: number): number {
  const limit = text === undefined ? fallback : Number(text);
  if (limit < 1 || limit > max) throw new ApiError(400, 'INVALID_REQUEST', `limit must be 1..${max}`);
  return limit;
}

const numberOf = (text: string | undefined): number | undefined => (text === undefined ? undefined : Number(text));

/** The page a listing's query asks for; contradictions are refused. */
export function pageOf(query: PageQuery, fallback: number, max: number): Page {
  const page: Page = {
    limit: limitOf(query.limit, fallback, max),
    beforeId: numberOf(query.before), afterId: numberOf(query.after),
    from: numberOf(query.from), to: numberOf(query.to),
  };
  if (page.beforeId !== undefined && page.afterId !== undefined) {
    throw new ApiError(400, 'INVALID_REQUEST', 'before and after cannot be combined: before pages newest first, after oldest first');
  }
  if (page.from !== undefined && page.to !== undefined && page.from > page.to) {
    throw new ApiError(400, 'INVALID_REQUEST', 'from must not be later than to');
  }
  return page;
}

/** Whether the query names any of the history paging fields beyond `before` and `limit`. */
export function pagesByTimeOrAfter(query: PageQuery): boolean {
  return query.after !== undefined || query.from !== undefined || query.to !== undefined;
}

/** Where the next page starts, in the direction this one went; null once this one was the last. */
export function pageLinks<T>(rows: readonly T[], page: Page, idOf: (row: T) => number): { next_before: string | null; next_after: string | null } {
  const next = rows.length === page.limit ? String(idOf(rows[rows.length - 1]!)) : null;
  return page.afterId === undefined ? { next_before: next, next_after: null } : { next_before: null, next_after: next };
}
