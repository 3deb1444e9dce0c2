/**
 * The host's HTTP ceiling, for `bench:api`: a Fastify server (the version Bourse runs) whose one
 * route parses the JSON body of an order and answers `{"ok":true}`, doing nothing else. No server
 * that does real work for a request answers more requests a second than this one on the same
 * machine, with the same client and connections. Prints `{"started", "url"}` when listening.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.post('/order', async () => ({ ok: true }));
const url = await app.listen({ host: '127.0.0.1', port: 0 });
console.log(JSON.stringify({ msg: 'started', url }));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
