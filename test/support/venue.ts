/** A real venue for HTTP tests: the exchange on a temporary data folder, Fastify on a loopback port. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Exchange } from '../../src/exchange.js';
import type { ExchangeOptions } from '../../src/exchange.js';
import { buildServer } from '../../src/gateway/server.js';
import type { ServerOptions } from '../../src/gateway/server.js';
import { call } from './api-client.js';
import type { ApiResponse, Credentials } from './api-client.js';

export class Venue {
  private constructor(readonly dataDir: string, readonly exchange: Exchange, readonly app: FastifyInstance, readonly url: string) {}

  static async start(options: Partial<ExchangeOptions> & { server?: ServerOptions; dataDir?: string } = {}): Promise<Venue> {
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'bourse-venue-'));
    const exchange = await Exchange.open({ demo: true, checkInvariantsEvery: 1, ...options, dataDir });
    exchange.keepDeadlines();
    const app = await buildServer(exchange, options.server);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as { port: number };
    return new Venue(dataDir, exchange, app, `http://127.0.0.1:${port}`);
  }

  /** Calls the admin API (POST unless told); returns the response whatever its status. */
  admin(path: string, body: unknown, method = 'POST'): Promise<ApiResponse> {
    return call(this.url, method, `/admin/v1${path}`, { body, headers: { authorization: `Bearer ${this.exchange.adminToken}` } });
  }

  /** A user with funds and a key with the given permissions. */
  async trader(email: string, funds: Record<string, string>, permissions = ['read', 'trade'], ip: string[] = []): Promise<Credentials & { account: number }> {
    const user = await this.admin('/users', { email, password: 'correct horse battery' });
    if (user.status !== 201) throw new Error(JSON.stringify(user.body));
    for (const [asset, amount] of Object.entries(funds)) {
      const deposit = await this.admin('/deposits', { email, asset, amount });
      if (deposit.status !== 201) throw new Error(JSON.stringify(deposit.body));
    }
    const key = await this.admin('/apikeys', { email, permissions, ip });
    if (key.status !== 201) throw new Error(JSON.stringify(key.body));
    return { key: key.body.key, secret: key.body.secret, account: user.body.account };
  }

  signed(credentials: Credentials, method: string, path: string, body?: unknown): Promise<ApiResponse> {
    return call(this.url, method, path, { credentials, body });
  }

  async stop(keepData = false): Promise<void> {
    await this.app.close();
    this.exchange.close();
    if (!keepData) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
