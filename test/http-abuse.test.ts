/**
 * Connections that misbehave at the HTTP level, from raw sockets: garbage, bodies cut short,
 * malformed chunking, requests pipelined and then reset, resets while an answer is being made,
 * upgrades followed by garbage. None of them may bring the server down: after each kind,
 * `/health` answers and nothing was thrown that the process did not catch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Venue } from './support/venue.js';

test('connections that send garbage, cut bodies short, pipeline and reset, or reset mid-answer leave the server up', async () => {
  const venue = await Venue.start({ server: { keyWeightPerSecond: 1_000_000, ipWeightPerSecond: 1_000_000 } });
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown): void => { uncaught.push(error); };
  process.on('uncaughtException', onUncaught);
  try {
    const trader = await venue.trader('abuse@example.com', { USDT: '100000' });
    const port = Number(new URL(venue.url).port);
    const body = JSON.stringify({ market: 'BTC-USDT', side: 'buy', type: 'limit', price: '30000.00', quantity: '0.0100' });
    const order = (): string => {
      const timestamp = String(Date.now());
      const signature = createHmac('sha256', trader.secret).update(`${timestamp}POST/api/v1/orders${body}`).digest('hex');
      return `POST /api/v1/orders HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n`
        + `x-bourse-key: ${trader.key}\r\nx-bourse-timestamp: ${timestamp}\r\nx-bourse-signature: ${signature}\r\n\r\n${body}`;
    };
    const upgrade = 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    type Ending = 'reset' | 'half-close' | 'wait';
    const kinds: [string, () => string | Buffer, Ending, number][] = [
      ['random bytes', () => randomBytes(200), 'wait', 0],
      ['a signed order, then a reset', order, 'reset', 0],
      ['a signed order, then a reset as it is answered', order, 'reset', 3],
      ['a signed order, then a half-close', order, 'half-close', 0],
      ['a body cut short, then a reset', () => order().slice(0, -20), 'reset', 3],
      ['malformed chunks', () => 'POST /api/v1/orders HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 'wait', 0],
      ['both Content-Length and Transfer-Encoding', () => 'POST /api/v1/orders HTTP/1.1\r\nHost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', 'wait', 0],
      ['20 pipelined orders, then a reset', () => Array.from({ length: 20 }, order).join(''), 'reset', 2],
      ['a read that waits for the read model, then a reset', () => 'GET /api/v1/tickers HTTP/1.1\r\nHost: x\r\n\r\n', 'reset', 1],
      ['Expect: 100-continue, then a reset', () => 'POST /api/v1/orders HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 10\r\nexpect: 100-continue\r\n\r\n', 'reset', 3],
      ['a 100 KB header', () => `GET /api/v1/markets HTTP/1.1\r\nHost: x\r\nx-a: ${'a'.repeat(100_000)}\r\n\r\n`, 'wait', 0],
      ['an upgrade, then garbage', () => `${upgrade}${randomBytes(100).toString('latin1')}`, 'wait', 0],
      ['an upgrade, then a reset', () => upgrade, 'reset', 0],
    ];
    const misbehave = (bytes: string | Buffer, ending: Ending, delayMs: number): Promise<void> => new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.on('data', () => undefined);
      socket.on('close', () => resolve());
      socket.on('connect', async () => {
        socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        if (ending === 'reset') socket.resetAndDestroy();
        else if (ending === 'half-close') socket.end();
        else setTimeout(() => socket.destroy(), 300);
      });
    });
    for (const [kind, bytes, ending, delayMs] of kinds) {
      await Promise.all(Array.from({ length: 20 }, () => misbehave(bytes(), ending, delayMs)));
      assert.equal((await fetch(`${venue.url}/health`)).status, 200, `after ${kind}`);
      assert.deepEqual(uncaught, [], `after ${kind}`);
    }
    venue.exchange.engine.checkInvariants();
  } finally {
    process.off('uncaughtException', onUncaught);
    await venue.stop();
  }
});

test('a client that half-closes after sending its signed orders still gets every answer, then the connection closes', async () => {
  const venue = await Venue.start();
  try {
    const trader = await venue.trader('half@example.com', { USDT: '100000' });
    const port = Number(new URL(venue.url).port);
    let n = 0;
    const order = (): string => {
      const body = JSON.stringify({ market: 'BTC-USDT', side: 'buy', type: 'limit', price: '30000.00', quantity: '0.0100', client_order_id: `half-${n++}` });
      const timestamp = String(Date.now());
      const signature = createHmac('sha256', trader.secret).update(`${timestamp}POST/api/v1/orders${body}`).digest('hex');
      return `POST /api/v1/orders HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n`
        + `x-bourse-key: ${trader.key}\r\nx-bourse-timestamp: ${timestamp}\r\nx-bourse-signature: ${signature}\r\n\r\n${body}`;
    };
    /** Writes the requests, half-closes, and returns everything the server sent before it closed. */
    const sendThenHalfClose = (requests: string): Promise<string> => new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let received = '';
      socket.on('error', reject);
      socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1'); });
      socket.on('close', () => resolve(received));
      socket.on('connect', () => socket.end(requests));
    });
    const one = await sendThenHalfClose(order());
    assert.match(one, /^HTTP\/1\.1 201 /, 'the one order is answered');
    const pipelined = await sendThenHalfClose(Array.from({ length: 5 }, order).join(''));
    assert.equal(pipelined.match(/HTTP\/1\.1 201 /g)?.length, 5, 'each of five pipelined orders is answered');
    const ids = [...`${one}${pipelined}`.matchAll(/"id":"(\d+)"/g)].map((m) => Number(m[1]));
    assert.equal(new Set(ids).size, 6);
    for (const id of ids) {
      const got = await venue.signed(trader, 'GET', `/api/v1/orders/${id}`);
      assert.equal(got.status, 200);
      assert.match(got.body.client_order_id, /^half-\d$/);
    }
  } finally {
    await venue.stop();
  }
});
