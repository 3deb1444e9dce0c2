/**
 * The socket under generated input: well-formed and malformed messages of every op, fields of
 * the wrong type, prototype keys, deep nesting, binary and oversized frames. Every message gets
 * exactly one answer that its op allows (never INTERNAL), a socket is closed only for a frame that
 * breaks the protocol (and only that socket), and the engine's invariants hold throughout (checked
 * after every command). Clients that reset mid-upgrade do not bring the server down either.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import fc from 'fast-check';
import { SocketClient } from './support/ws-client.js';
import { Venue } from './support/venue.js';

const OPS = ['ping', 'subscribe', 'unsubscribe', 'auth', 'place', 'cancel', 'cancel_after', 'amend', 'junk'];
const CHANNELS = ['depth', 'trades', 'ticker', 'candles', 'orders', 'balances', 'fills', 'funding', 'nope'];
const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];

const scalar = fc.oneof(
  fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
  fc.constantFrom(...PROTOTYPE_KEYS, 'BTC-USDT', 'ETH-BTC', '1m', '1w', '7m', 'buy', 'limit', '0.0100', '30000.00', '1e5', 'NaN', '１２３', '9'.repeat(40)),
);
const value = fc.oneof({ weight: 5, arbitrary: scalar }, { weight: 1, arbitrary: fc.array(scalar, { maxLength: 5 }) }, { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), scalar, { maxKeys: 4 }) });
const order = fc.dictionary(
  fc.constantFrom('market', 'side', 'type', 'price', 'quantity', 'quote_quantity', 'stop_price', 'callback_rate', 'time_in_force', 'post_only', 'client_order_id', 'account', 'junk'),
  value,
);
/** Orders that pass validation unless a generated field spoils them. */
const plausibleOrder = fc.tuple(
  fc.record({
    market: fc.constantFrom('BTC-USDT', 'ETH-BTC'), side: fc.constantFrom('buy', 'sell'), type: fc.constantFrom('limit', 'market'),
    price: fc.constantFrom('30000.00', '65000.00', '0.0500'), quantity: fc.constantFrom('0.0100', '0.0001', '1.0000'),
  }),
  fc.oneof(fc.constant({}), order),
).map(([base, spoilers]) => ({ ...base, ...spoilers }));
const message = fc.record({
  op: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...OPS) }, { weight: 1, arbitrary: value }),
  id: fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.constant(null), value),
  channel: fc.oneof(fc.constantFrom(...CHANNELS), value),
  market: fc.oneof(fc.constantFrom('BTC-USDT', 'ETH-BTC', 'NOPE-X'), value),
  interval: fc.oneof(fc.constantFrom('1m', '4h', '7m', ...PROTOTYPE_KEYS), value),
  order: fc.oneof({ weight: 3, arbitrary: plausibleOrder }, { weight: 2, arbitrary: order }, { weight: 1, arbitrary: value }),
  order_id: fc.oneof(fc.integer(), fc.constantFrom('1', '2', '007', ' 3', '1e3', '-1'), value, fc.constantFrom(...PROTOTYPE_KEYS).map((k) => ({ [k]: 0 }))),
  timeout_ms: fc.oneof(fc.integer({ min: -10, max: 100_000_000 }), value),
  key: value, timestamp: value, signature: value, account: value, cancel_on_disconnect: value,
}, { requiredKeys: ['op'] });
/** A frame as sent: a message, or text that is not one. */
const frame = fc.oneof(
  { weight: 8, arbitrary: message.map((m) => JSON.stringify(m)) },
  { weight: 1, arbitrary: fc.constantFrom('{"op":', '[]', '"ping"', '42', 'null', '{"op":"ping","__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}},"op":"ping"}', '') },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3_000 }).map((depth) => `{"op":"place","order":${'['.repeat(depth)}${']'.repeat(depth)}}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 100 }) },
  // Orders the engine takes, so that the run also goes past validation into the book.
  { weight: 1, arbitrary: fc.record({ id: fc.nat(), side: fc.constantFrom('buy', 'sell') }).map(({ id, side }) => JSON.stringify({ op: 'place', id, order: { market: 'BTC-USDT', side, type: 'limit', price: side === 'buy' ? '30000.00' : '90000.00', quantity: '0.0100' } })) },
  // Subscriptions the server takes (the record above made none in one run of 600).
  { weight: 1, arbitrary: fc.record({ channel: fc.constantFrom('depth', 'trades', 'ticker'), market: fc.constantFrom('BTC-USDT', 'ETH-BTC') }).map(({ channel, market }) => JSON.stringify({ op: 'subscribe', channel, market })) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTOTYPE_KEYS).map((interval) => JSON.stringify({ op: 'subscribe', channel: 'candles', market: 'BTC-USDT', interval })) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTOTYPE_KEYS).map((op) => JSON.stringify({ op, channel: 'depth', market: 'BTC-USDT' })) },
);

/** The answers each op may get besides an error. */
const SUCCESS: Record<string, string> = { ping: 'pong', subscribe: 'subscribed', unsubscribe: 'unsubscribed', auth: 'authenticated', place: 'placed', cancel: 'cancelled', cancel_after: 'cancel_after' };
const VALID_CHANNEL = /^(orders|balances|fills|funding|(depth|trades|ticker):(BTC-USDT|ETH-USDT|ETH-BTC|BTC-EUR)|candles:(BTC-USDT|ETH-USDT|ETH-BTC|BTC-EUR):(1m|3m|5m|15m|30m|1h|2h|4h|6h|12h|1d|1w))$/;

test('generated socket messages each get one answer their op allows, never an internal error, and leave the engine sound', async () => {
  const venue = await Venue.start({ server: { ws: { messagesPerSecond: 1_000_000, subscriptionsMax: 10_000 }, keyWeightPerSecond: 1_000_000, ipWeightPerSecond: 1_000_000 } });
  try {
    const trader = await venue.trader('wsfuzz@example.com', { USDT: '100000', BTC: '2' });
    const signedIn = await SocketClient.connect(venue.url);
    await signedIn.login(trader);
    const anonymous = await SocketClient.connect(venue.url);
    const answers = new Map<string, number>();
    /** Sends one frame and checks its one answer; tallies it as "op → event or error code". */
    const exchangeOne = async (client: SocketClient, text: string): Promise<void> => {
      client.socket.send(text);
      const answer = await client.next((m) => typeof m.event === 'string');
      let parsed: unknown;
      try { parsed = JSON.parse(text); } catch { parsed = undefined; }
      const op = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { op?: unknown }).op : undefined;
      const known = typeof op === 'string' && Object.hasOwn(SUCCESS, op) ? op : undefined;
      const where = `${text.slice(0, 300)} → ${JSON.stringify(answer).slice(0, 300)}`;
      if (answer.event === 'error') {
        assert.equal(typeof answer.error.code, 'string', where);
        assert.equal(typeof answer.error.message, 'string', where);
        assert.notEqual(answer.error.code, 'INTERNAL', where);
      } else {
        assert.equal(known === undefined ? undefined : SUCCESS[known], answer.event, where);
        if (answer.event === 'subscribed' || answer.event === 'unsubscribed') assert.match(answer.channel, VALID_CHANNEL, where);
        if (answer.event === 'authenticated') assert.fail(`generated credentials were accepted: ${where}`);
      }
      const tally = `${known ?? 'other'} → ${answer.event === 'error' ? answer.error.code : answer.event}`;
      answers.set(tally, (answers.get(tally) ?? 0) + 1);
      assert.equal(client.closed, null, where);
      // Data the subscriptions bring is not an answer: drop it so that it cannot be mistaken for one.
      client.messages.length = 0;
    };
    // Cases found by earlier runs, on both sockets every time; then generated ones.
    const found = [
      '{"op":"subscribe","channel":"candles","market":"BTC-USDT","interval":"__proto__"}',
      '{"op":"subscribe","channel":"candles","market":"BTC-USDT","interval":"toString"}',
      '{"op":"cancel","order_id":{"toString":0}}',
      '{"op":"cancel","order_id":{"valueOf":1}}',
    ];
    for (const text of found) for (const client of [signedIn, anonymous]) await exchangeOne(client, text);
    await fc.assert(
      fc.asyncProperty(frame, fc.boolean(), (text, authenticated) => exchangeOne(authenticated ? signedIn : anonymous, text)),
      { numRuns: 600 },
    );
    // The run reached past the parsers: orders were placed and subscriptions made.
    assert.ok([...answers.keys()].some((k) => k === 'place → placed'), JSON.stringify([...answers]));
    assert.ok([...answers.keys()].some((k) => k === 'subscribe → subscribed'), JSON.stringify([...answers]));
    venue.exchange.engine.checkInvariants();
    assert.equal(venue.exchange.sequencer.failed, null);

    // Frames that break the protocol close that socket with the fitting code, and only that one;
    // the server goes on serving the others.
    const violations: [string, number, (socket: SocketClient) => void][] = [
      ['a frame over the size limit', 1009, (c) => c.socket.send(JSON.stringify({ op: 'ping', pad: 'x'.repeat(20_000) }))],
      ['a text frame that is not UTF-8', 1007, (c) => c.socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false })],
      // Written under the client's framing: FIN + text, length 2, no mask, "hi".
      ['a frame from the client without a mask', 1002, (c) => (c.socket as unknown as { _socket: { write(b: Buffer): void } })._socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69]))],
    ];
    for (const [what, code, violate] of violations) {
      const offender = await SocketClient.connect(venue.url);
      offender.socket.on('error', () => undefined);
      const closed = new Promise((r) => offender.socket.once('close', r));
      violate(offender);
      await closed;
      assert.equal(offender.closed?.code, code, what);
      signedIn.send({ op: 'ping', id: what });
      assert.equal((await signedIn.next((m) => m.event === 'pong')).event, 'pong', `the server still answers after ${what}`);
    }
    // A binary frame is refused as not JSON.
    signedIn.socket.send(Buffer.from('{"op":"ping"}'));
    assert.equal((await signedIn.next((m) => m.event === 'error')).error.code, 'INVALID_JSON');
    signedIn.send({ op: 'ping' });
    assert.equal((await signedIn.next((m) => m.event === 'pong')).event, 'pong');
    signedIn.close();
    anonymous.close();
  } finally {
    await venue.stop();
  }
});

test('clients that reset while their upgrade is being refused do not bring the server down', async () => {
  // No sockets allowed: every upgrade is answered 429, and each client resets as it asks.
  const venue = await Venue.start({ server: { ws: { socketsPerAddress: 0 } } });
  try {
    const { port } = new URL(venue.url);
    const upgrade = 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
      socket.on('connect', () => {
        socket.write(upgrade);
        socket.resetAndDestroy();
      });
    })));
    await new Promise((r) => setTimeout(r, 500));
    const health = await fetch(`${venue.url}/health`);
    assert.equal(health.status, 200);
  } finally {
    await venue.stop();
  }
});
