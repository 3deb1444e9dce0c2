import { test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from './support/api-client.js';
import type { Credentials } from './support/api-client.js';
import { Venue } from './support/venue.js';

/** RFC 4180, as a spreadsheet reads it: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i++; }
    else field += c;
  }
  assert.equal(field + row.join(''), '', 'the file ends with a line break');
  return rows;
}

/** Every row of a JSON listing, oldest first, paging with `after` as a bot would. */
async function everyRow(venue: Venue, who: Credentials, path: string, key: string): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  let after = '0';
  for (;;) {
    const page = await venue.signed(who, 'GET', `${path}${path.includes('?') ? '&' : '?'}after=${after}&limit=500`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    rows.push(...page.body[key]);
    if (page.body.next_after === null) return rows;
    after = page.body.next_after;
  }
}

/** A listing's row as its export writes it: times in ISO 8601, null empty, everything else as text. */
function asCsv(fields: string[], row: Record<string, unknown>): string[] {
  return fields.map((name) => {
    const value = row[name];
    if (value === null) return '';
    if (['time', 'created_at', 'updated_at', 'expire_time'].includes(name)) return new Date(value as number).toISOString();
    return String(value);
  });
}

test('an account\'s fills, ledger and order history export as CSV: every row of the listings, oldest first, across many pages, with their fields and times in ISO 8601', async () => {
  const venue = await Venue.start({ checkInvariantsEvery: 0 });
  try {
    // Three makers rest 400 sells each (a market holds 500 open orders an account), in batches;
    // then one buy takes them all: 1,200 fills for the taker.
    const makers = [];
    for (let m = 0; m < 3; m++) {
      const maker = await venue.trader(`export-maker-${m}@example.com`, { BTC: '10' });
      makers.push(maker);
      for (let batch = 0; batch < 20; batch++) {
        const orders = Array.from({ length: 20 }, (_, i) => ({ market: 'BTC-USDT', side: 'sell', type: 'limit', price: (40_000 + m * 400 + batch * 20 + i).toFixed(2), quantity: '0.0010' }));
        const placed = await venue.signed(maker, 'POST', '/api/v1/orders/batch', { orders });
        assert.equal(placed.status, 200, JSON.stringify(placed.body));
      }
    }
    const maker = makers[0]!;
    const taker = await venue.trader('export-taker@example.com', { USDT: '100000000' });
    const sweep = await venue.signed(taker, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '41200.00', quantity: '1.2000', client_order_id: '=SUM(A1:A9),"x"' });
    assert.equal(sweep.status, 201, JSON.stringify(sweep.body));
    assert.equal(sweep.body.status, 'FILLED');

    for (const [who, kind, listing, key] of [
      [taker, 'trades', '/api/v1/trades', 'trades'], [maker, 'trades', '/api/v1/trades', 'trades'],
      [maker, 'ledger', '/api/v1/ledger', 'entries'], [maker, 'orders', '/api/v1/orders?status=all', 'orders'], [taker, 'orders', '/api/v1/orders?status=all', 'orders'],
    ] as const) {
      const exported = await venue.signed(who, 'GET', `/api/v1/exports/${kind}`);
      assert.equal(exported.status, 200);
      assert.match(exported.headers.get('content-type') ?? '', /^text\/csv/);
      assert.match(exported.headers.get('content-disposition') ?? '', new RegExp(`attachment; filename="bourse-${kind}-\\d+\\.csv"`));
      const [header, ...lines] = parseCsv(exported.body);
      const rows = await everyRow(venue, who, listing, key);
      assert.deepEqual(header, Object.keys(rows[0]!), `${kind}: the columns are the listing's fields`);
      assert.equal(lines.length, rows.length, `${kind}: every row`);
      if (kind === 'trades' && who === taker) assert.ok(rows.length > 1_000, 'more rows than one page of the export');
      const expected = rows.map((row) => asCsv(header!, row));
      if (kind === 'orders' && who === taker) {
        // A client order id that a spreadsheet would run as a formula stays text; its comma and quotes survive.
        assert.equal(lines[0]![header!.indexOf('client_order_id')], `'=SUM(A1:A9),"x"`);
        expected[0]![header!.indexOf('client_order_id')] = `'=SUM(A1:A9),"x"`;
      }
      assert.deepEqual(lines, expected, `${kind}: the same values as the listing`);
    }

    // Narrowed by market or asset and by time, like the listings.
    const entries = await everyRow(venue, maker, '/api/v1/ledger', 'entries');
    const middle = entries[Math.floor(entries.length / 2)]!.time as number;
    const ledgerBtc = parseCsv((await venue.signed(maker, 'GET', `/api/v1/exports/ledger?asset=BTC&from=${middle}`)).body).slice(1);
    assert.ok(ledgerBtc.length > 0);
    assert.deepEqual(ledgerBtc.map((line) => line[0]), entries.filter((e) => e.asset === 'BTC' && (e.time as number) >= middle).map((e) => e.id));
    const otherMarket = parseCsv((await venue.signed(taker, 'GET', '/api/v1/exports/trades?market=ETH-USDT')).body);
    assert.equal(otherMarket.length, 1, 'a header and no rows');
  } finally {
    await venue.stop();
  }
});

test('an export refuses what its listing would, in the API\'s error format, before any CSV is sent', async () => {
  const venue = await Venue.start();
  try {
    const trader = await venue.trader('export-refused@example.com', { USDT: '1000' });
    const other = await venue.trader('export-other@example.com', { USDT: '1000' });
    const cases: [string, number, string][] = [
      ['/api/v1/exports/trades?market=NOPE-USDT', 404, 'UNKNOWN_MARKET'],
      ['/api/v1/exports/ledger?market=BTC-USDT', 400, 'INVALID_REQUEST'],
      ['/api/v1/exports/trades?asset=BTC', 400, 'INVALID_REQUEST'],
      ['/api/v1/exports/trades?from=2000&to=1000', 400, 'INVALID_REQUEST'],
      ['/api/v1/exports/balances', 400, 'INVALID_REQUEST'],
      [`/api/v1/exports/ledger?account=${other.account}`, 403, ''],
    ];
    for (const [path, status, code] of cases) {
      const answer = await venue.signed(trader, 'GET', path);
      assert.equal(answer.status, status, `${path}: ${JSON.stringify(answer.body)}`);
      assert.match(answer.headers.get('content-type') ?? '', /json/);
      if (code !== '') assert.equal(answer.body.error.code, code);
    }
    const unsigned = await call(venue.url, 'GET', '/api/v1/exports/trades');
    assert.equal(unsigned.status, 401);
  } finally {
    await venue.stop();
  }
});
