/**
 * The gateway of the split experiments (bench:gateway, bench:threads): it takes signed HTTP
 * orders, checks the signature itself, and passes each order on over the server's own
 * authenticated WebSocket order entry, answering with the server's reply. Not a product path:
 * it knows one key, and answers with the socket's message rather than the REST order.
 */
import { createHmac, createSecretKey, timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyListenOptions } from 'fastify';
import { WebSocket } from 'ws';

const GATEWAY_SOCKETS = 4;

export interface GatewayOptions {
  engineUrl: string; key: string; secret: string; listen: FastifyListenOptions;
  /** Called for each order passed on. */
  onOrder?: () => void;
}

export async function serveGateway({ engineUrl, key, secret, listen, onOrder }: GatewayOptions): Promise<FastifyInstance> {
  const secretKey = createSecretKey(Buffer.from(secret));
  const waiting = new Map<number, (text: string) => void>();
  const sockets: WebSocket[] = [];
  for (let i = 0; i < GATEWAY_SOCKETS; i++) {
    const socket = new WebSocket(`${engineUrl.replace('http', 'ws')}/ws`);
    await new Promise((resolve) => socket.once('open', resolve));
    const timestamp = String(Date.now() + i);
    socket.send(JSON.stringify({ op: 'auth', key, timestamp, signature: createHmac('sha256', secret).update(`${timestamp}GET/ws`).digest('hex') }));
    await new Promise((resolve) => socket.once('message', resolve));
    socket.on('message', (data) => {
      const text = data.toString();
      const id = /"id":(\d+)/.exec(text);
      const answer = id === null ? undefined : waiting.get(Number(id[1]));
      if (answer === undefined) return;
      waiting.delete(Number(id![1]));
      answer(text);
    });
    sockets.push(socket);
  }
  const seen = new Set<string>();
  let next = 0;
  const app = Fastify({ logger: false });
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  app.post('/api/v1/orders', (request, reply) => {
    const body = request.body as string;
    const timestamp = String(request.headers['x-bourse-timestamp']);
    const signature = String(request.headers['x-bourse-signature']);
    const given = Buffer.from(signature, 'hex');
    const expected = createHmac('sha256', secretKey).update(`${timestamp}POST/api/v1/orders${body}`).digest();
    if (given.length !== expected.length || !timingSafeEqual(given, expected) || seen.has(signature)) {
      void reply.status(401).send({ error: { code: 'INVALID_SIGNATURE', message: 'signature does not match' } });
      return;
    }
    seen.add(signature);
    const id = next++;
    onOrder?.();
    waiting.set(id, (text) => void reply.status(text.startsWith('{"event":"placed"') ? 201 : 400).header('content-type', 'application/json').send(text));
    sockets[id % sockets.length]!.send(`{"op":"place","id":${id},"order":${body}}`);
  });
  await app.listen(listen);
  return app;
}
