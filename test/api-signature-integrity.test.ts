/**
 * Signature integrity, exhaustively: a signed request altered in any one byte on its way to the
 * server (method, path, query, body, timestamp, key or signature) is refused and changes nothing;
 * so are other spellings of the same request, which a signature over the raw request must not
 * cover. Each altered request carries a signature made for the original a moment before it is
 * sent, so that it reaches the signature check inside its receive window, as a request changed
 * in flight would.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { connect } from 'node:net';
import type { Credentials } from './support/api-client.js';
import { Venue } from './support/venue.js';

let venue: Venue;
let alice: Credentials & { account: number };

before(async () => {
  // No lockout and no budget in the way: every altered request must be judged on its own.
  venue = await Venue.start({
    auth: { failuresBeforeLockout: 1_000_000 },
    server: { keyWeightPerSecond: 1_000_000, ipWeightPerSecond: 1_000_000 },
  });
  alice = await venue.trader('alice@example.com', { USDT: '100000', BTC: '2' });
});

after(async () => {
  await venue.stop();
});

interface Parts { method: string; path: string; body: string; timestamp: string; key: string; signature: string }
type Part = keyof Parts;

const HEX = '0123456789abcdef';

/**
 * The byte at `index` replaced by another of its kind (a digit by a digit, a letter by a letter of
 * the same case, hex by hex), so that the altered request stays well formed wherever it can and
 * only the signature stands in its way.
 */
function alterAt(text: string, index: number, hex: boolean): string {
  const c = text[index]!;
  let replacement: string;
  if (hex && HEX.includes(c)) replacement = HEX[(HEX.indexOf(c) + 1) % 16]!;
  else if (c >= '0' && c <= '9') replacement = String((Number(c) + 1) % 10);
  else if (c >= 'a' && c <= 'z') replacement = c === 'z' ? 'a' : String.fromCharCode(c.charCodeAt(0) + 1);
  else if (c >= 'A' && c <= 'Z') replacement = c === 'Z' ? 'A' : String.fromCharCode(c.charCodeAt(0) + 1);
  else replacement = c === '_' ? '-' : '_';
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

function signFor(parts: Omit<Parts, 'signature' | 'timestamp'>): Parts {
  const timestamp = String(Date.now());
  const signature = createHmac('sha256', alice.secret).update(`${timestamp}${parts.method}${parts.path}${parts.body}`).digest('hex');
  return { ...parts, timestamp, signature };
}

/**
 * Sends the request byte for byte as given, over a socket of its own: an HTTP client would
 * normalize some alterations (a request target without its leading slash, say) before sending.
 */
function send(parts: Parts): Promise<{ status: number; body: any }> {
  const { port } = new URL(venue.url);
  const body = Buffer.from(parts.body, 'utf8');
  const head = [
    `${parts.method} ${parts.path} HTTP/1.1`, `host: 127.0.0.1:${port}`, 'connection: close',
    `x-bourse-key: ${parts.key}`, `x-bourse-timestamp: ${parts.timestamp}`, `x-bourse-signature: ${parts.signature}`,
    ...(body.length > 0 ? ['content-type: application/json', `content-length: ${body.length}`] : []),
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
      const payload = text.slice(text.indexOf('\r\n\r\n') + 4);
      resolve({ status, body: payload.startsWith('{') ? JSON.parse(payload) : null });
    });
    // Written, not ended: a client that half-closes may be hung up on before a slower answer.
    socket.write(Buffer.concat([Buffer.from(`${head}\r\n\r\n`, "latin1"), body]));
  });
}

/**
 * What may refuse a request altered in `part`: the check that sees the alteration first. A bare
 * 400 is Node's HTTP parser refusing a request line that is no longer HTTP.
 */
const REFUSALS: Record<Part, RegExp> = {
  method: /^400$|^404 NOT_FOUND$/,
  path: /^400$|^404 NOT_FOUND$|^401 INVALID_SIGNATURE$|^400 INVALID_REQUEST$/,
  body: /^401 INVALID_SIGNATURE$|^400 (INVALID_JSON|INVALID_REQUEST)$/,
  timestamp: /^401 (INVALID_SIGNATURE|STALE_REQUEST)$/,
  key: /^401 INVALID_KEY$/,
  signature: /^401 INVALID_SIGNATURE$/,
};

/**
 * Sends every one-byte alteration of `original` (the path includes its query) and returns how
 * each was refused, by part: "status code". None may be accepted.
 */
async function everyAlteration(original: Omit<Parts, 'signature' | 'timestamp'>): Promise<Map<Part, Map<string, number>>> {
  const refusals = new Map<Part, Map<string, number>>();
  const parts: Part[] = ['method', 'path', 'body', 'timestamp', 'key', 'signature'];
  for (const part of parts) {
    const tally = new Map<string, number>();
    refusals.set(part, tally);
    const length = signFor(original)[part].length;
    for (let index = 0; index < length; index++) {
      const signed = signFor(original);
      const altered = { ...signed, [part]: alterAt(signed[part], index, part === 'signature') };
      const response = await send(altered);
      const outcome = `${response.status} ${response.body?.error?.code ?? ''}`.trim();
      assert.ok(response.status >= 400 && response.status < 500, `${part}[${index}] altered (${JSON.stringify(altered[part])}) was answered ${outcome}`);
      assert.match(outcome, REFUSALS[part], `${part}[${index}] altered (${JSON.stringify(altered[part])})`);
      tally.set(outcome, (tally.get(outcome) ?? 0) + 1);
    }
  }
  return refusals;
}

async function state(): Promise<unknown> {
  const [balances, orders, history] = await Promise.all([
    venue.signed(alice, 'GET', '/api/v1/balances'),
    venue.signed(alice, 'GET', '/api/v1/orders'),
    venue.signed(alice, 'GET', '/api/v1/orders?status=all'),
  ]);
  return { balances: balances.body, orders: orders.body, history: history.body };
}

test('an order altered in any one byte of its method, path, body, timestamp, key or signature is refused and places nothing', async () => {
  const body = JSON.stringify({ market: 'BTC-USDT', side: 'buy', type: 'limit', price: '30000.00', quantity: '0.0100', client_order_id: 'integrity-1' });
  const original = { method: 'POST', path: '/api/v1/orders', body, key: alice.key };
  const before = await state();
  const refusals = await everyAlteration(original);
  assert.deepEqual(await state(), before);
  // Every alteration of the body that kept it valid JSON met the signature check, and most did.
  assert.ok((refusals.get('body')!.get('401 INVALID_SIGNATURE') ?? 0) > body.length / 2, JSON.stringify([...refusals.get('body')!]));
  // The original itself, signed afresh, is accepted: the refusals above were the alterations'.
  const placed = await send(signFor(original));
  assert.equal(placed.status, 201);
  assert.equal(placed.body.client_order_id, 'integrity-1');
});

test('a listing altered in any one byte of its query is refused', async () => {
  const original = { method: 'GET', path: '/api/v1/orders?market=BTC-USDT&limit=5', body: '', key: alice.key };
  const refusals = await everyAlteration(original);
  assert.ok((refusals.get('path')!.get('401 INVALID_SIGNATURE') ?? 0) >= 'market=BTC-USDT&limit=5'.length / 2, JSON.stringify([...refusals.get('path')!]));
  assert.equal((await send(signFor(original))).status, 200);
});

test('a cancel-all altered in any one byte is refused and the orders stay open', async () => {
  const resting = await venue.signed(alice, 'POST', '/api/v1/orders', { market: 'BTC-USDT', side: 'buy', type: 'limit', price: '29000.00', quantity: '0.0100', client_order_id: 'integrity-rest' });
  assert.equal(resting.status, 201);
  const original = { method: 'DELETE', path: '/api/v1/orders?market=BTC-USDT', body: '', key: alice.key };
  const before = await state();
  await everyAlteration(original);
  assert.deepEqual(await state(), before);
  const cancelled = await send(signFor(original));
  assert.equal(cancelled.status, 200);
  assert.equal((await venue.signed(alice, 'GET', '/api/v1/orders?market=BTC-USDT')).body.orders.length, 0);
});

test('other spellings of a signed request are refused: parameters reordered, repeated or percent-encoded, digits in full width', async () => {
  const path = '/api/v1/orders?market=BTC-USDT&limit=5';
  const respell = async (sentPath: string, extra: Partial<Parts> = {}): Promise<string> => {
    const signed = signFor({ method: 'GET', path, body: '', key: alice.key });
    const response = await send({ ...signed, path: sentPath, ...extra });
    return `${response.status} ${response.body?.error?.code ?? ''}`;
  };
  assert.equal(await respell('/api/v1/orders?limit=5&market=BTC-USDT'), '401 INVALID_SIGNATURE');
  assert.equal(await respell('/api/v1/orders?market=BTC-USDT&limit=5&limit=5'), '401 INVALID_SIGNATURE');
  assert.equal(await respell('/api/v1/orders?market=BTC%2DUSDT&limit=5'), '401 INVALID_SIGNATURE');
  assert.equal(await respell('/api/v1/orders?market=BTC-USDT&limit=%35'), '401 INVALID_SIGNATURE');
  // Routed as /orders once decoded, but signed as sent.
  assert.equal(await respell('/api/v1/%6Frders?market=BTC-USDT&limit=5'), '401 INVALID_SIGNATURE');
  // A timestamp in full-width digits (sent as its UTF-8 bytes): not milliseconds, whatever it reads as.
  const fullWidth = Buffer.from(String(Date.now()).replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d))), 'utf8').toString('latin1');
  assert.equal(await respell(path, { timestamp: fullWidth }), '401 INVALID_TIMESTAMP');

  // Signed correctly, full-width digits in an amount are still not an amount: 400, no order.
  const body = JSON.stringify({ market: 'BTC-USDT', side: 'buy', type: 'limit', price: '３００００.００', quantity: '0.0100', client_order_id: 'integrity-wide' });
  const refused = await send(signFor({ method: 'POST', path: '/api/v1/orders', body, key: alice.key }));
  assert.equal(refused.status, 400);
  assert.equal((await venue.signed(alice, 'GET', '/api/v1/orders?client_order_id=integrity-wide')).body.orders.length, 0);
});
