/**
 * `bourse start`: open the venue in DATA, serve HTTP on host:port, write DATA/server.json so
 * that `bourse admin` finds it, and on SIGTERM/SIGINT stop taking requests, finish those in
 * flight, commit what is queued, snapshot and close.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Exchange } from '../exchange.js';
import { buildServer } from '../gateway/server.js';
import { DemoMarketMaker } from '../demo/market-maker.js';
import { configDrift } from '../config.js';
import type { Config } from '../config.js';
import type { MailConfig } from '../mail/mailer.js';

export interface StartOptions { dataDir: string; demo: boolean; config: Config }

/**
 * The config file's mail section with the SMTP defaults filled in: TLS from the start on port 465,
 * otherwise STARTTLS, required unless the server is on this machine (codes that open accounts
 * must not cross a network in the clear).
 */
function mailConfig(mail: Config['mail']): MailConfig {
  const { smtp, ...rest } = mail;
  if (smtp === undefined) return rest;
  const local = ['localhost', '127.0.0.1', '::1'].includes(smtp.host);
  return { ...rest, smtp: { ...smtp, secure: smtp.secure ?? smtp.port === 465, requireTls: smtp.requireTls ?? !local } };
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export async function startServer(options: StartOptions): Promise<void> {
  const { config } = options;
  const exchange = await Exchange.open({
    dataDir: options.dataDir, demo: options.demo, backupDir: config.backups.dir === undefined ? undefined : resolve(config.backups.dir), snapshotEvery: config.journal.snapshotEvery, writerThread: config.journal.writerThread, auth: config.auth,
    sessions: { ttlMs: config.auth.sessionTtlMs, idleMs: config.auth.sessionIdleMs },
    venue: { assets: config.assets, markets: config.markets, feeLevels: config.feeLevels },
    funding: config.funding.assets.length > 0 ? config.funding : undefined,
    // Test hook of the crash-point tests; never set in production.
    fundingCrashAt: process.env.BOURSE_FUNDING_CRASH_AT,
  });
  const app = await buildServer(exchange, {
    logger: true, bodyLimitBytes: config.server.bodyLimitBytes, keyWeightPerSecond: config.server.keyWeightPerSecond, ipWeightPerSecond: config.server.ipWeightPerSecond,
    ordersPerSecondPerUser: config.server.ordersPerSecondPerUser,
    requestTimeoutMs: config.server.requestTimeoutMs, trustProxy: config.server.trustProxy, adminAllow: config.server.adminAllow, connectionsPerAddress: config.server.connectionsPerAddress,
    rateBans: { ignoredRefusalsBeforeBan: config.server.rateBanAfter, banMs: config.server.rateBanMs, banMaxMs: config.server.rateBanMaxMs }, rateBanExempt: config.server.rateBanExempt,
    ws: { messagesPerSecond: config.server.wsMessagesPerSecond, depthIntervalMs: config.server.wsDepthIntervalMs, socketsPerAddress: config.server.wsSocketsPerAddress },
    registration: config.registration, mail: mailConfig(config.mail),
  });
  const marketMaker = options.demo ? new DemoMarketMaker(exchange, (error) => app.log.error({ err: error }, 'demo market maker')) : null;
  const serverFile = join(options.dataDir, 'server.json');
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    marketMaker?.stop();
    await app.close();
    exchange.sequencer.flush();
    exchange.sequencer.snapshotNow();
    const lastSeq = exchange.sequencer.lastSeq;
    const stateHash = exchange.engine.stateHash();
    exchange.close();
    rmSync(serverFile, { force: true });
    print({ event: 'stopped', signal, lastSeq, stateHash });
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  exchange.keepDeadlines();
  const { host } = config.server;
  const address = await app.listen({ port: config.server.port, host });
  const port = (app.server.address() as { port: number }).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  writeFileSync(serverFile, `${JSON.stringify({ url, pid: process.pid })}\n`);
  const engine = exchange.engine;
  const drift = configDrift({ assets: config.assets, markets: config.markets, feeLevels: config.feeLevels }, engine);
  for (const line of drift) app.log.warn({ config: line }, 'the config differs from the venue: it only creates what is missing; change a live setting with bourse admin');
  print({
    event: 'started', url, address, dataDir: options.dataDir, lastSeq: exchange.sequencer.lastSeq, recovery: exchange.sequencer.recovery,
    markets: engine.marketList.map((m) => m.id), stateHash: engine.stateHash(),
    registration: config.registration.open ? 'open' : 'closed',
    mail: config.mail.smtp === undefined ? join(options.dataDir, 'outbox') : `smtp://${config.mail.smtp.host}:${config.mail.smtp.port}`,
    ...(drift.length === 0 ? {} : { configDrift: drift }),
  });
  await marketMaker?.start();
}
