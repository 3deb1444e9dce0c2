/**
 * Rows as CSV (RFC 4180) for people and their spreadsheets: fields quoted when they hold a
 * comma, a quote or a line break; times as ISO 8601 in UTC; null as an empty field.
 */

/** The wire objects' fields that hold a time in milliseconds since the epoch. */
const TIME_FIELDS = new Set(['time', 'created_at', 'updated_at', 'expire_time']);

const DECIMAL = /^-?[0-9]+(\.[0-9]+)?$/;

function field(name: string, value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = TIME_FIELDS.has(name) && typeof value === 'number' ? new Date(value).toISOString() : String(value);
  // A spreadsheet runs a field that starts like a formula: text a user chose (a client order id)
  // must stay text. Numbers, negative ones included, stay numbers.
  if (/^[=+\-@\t\r]/.test(text) && !DECIMAL.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The header line of objects with these fields. */
export function csvHeader(fields: readonly string[]): string {
  return `${fields.join(',')}\r\n`;
}

/** One object's line, its fields in the header's order. */
export function csvLine(fields: readonly string[], row: Record<string, unknown>): string {
  return `${fields.map((name) => field(name, row[name])).join(',')}\r\n`;
}
