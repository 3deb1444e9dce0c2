/** Prometheus metrics: request latency, engine queue depth, commands, journal and snapshot positions, sockets. */
import { statfsSync } from 'node:fs';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { FastifyInstance, onResponseHookHandler } from 'fastify';
import type { Exchange } from '../exchange.js';
import { LatencyHistogram } from './latency-histogram.js';
import type { LatencySeries } from './latency-histogram.js';
import type { RateBans } from '../identity/rate-bans.js';
import type { Mailer } from '../mail/mailer.js';
import type { SocketStats } from './ws.js';

const NO_SOCKET_STATS: SocketStats = { slowConsumerCloses: 0, resyncs: 0, snapshotsMade: 0, snapshotsSent: 0 };

export function registerMetrics(app: FastifyInstance, exchange: Exchange, sockets: () => { clients: () => number; stats: SocketStats } | null, mailer: Mailer, rateBans: RateBans): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const latency = new LatencyHistogram('bourse_http_request_duration_seconds', 'HTTP request latency', [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]);
  registry.registerMetric(latency as unknown as Parameters<Registry['registerMetric']>[0]);
  new Gauge({ name: 'bourse_engine_queue_depth', help: 'Commands waiting for the sequencer', registers: [registry], collect() { this.set(exchange.sequencer.queueDepth); } });
  new Counter({
    name: 'bourse_engine_commands_total', help: 'Commands journaled and applied since start', registers: [registry],
    collect() { this.reset(); this.inc(exchange.sequencer.stats.commands); },
  });
  new Counter({
    name: 'bourse_journal_batches_total', help: 'Journal transactions (group commits) since start', registers: [registry],
    collect() { this.reset(); this.inc(exchange.sequencer.stats.batches); },
  });
  new Gauge({ name: 'bourse_journal_last_seq', help: 'Last journaled sequence number', registers: [registry], collect() { this.set(exchange.sequencer.lastSeq); } });
  new Gauge({
    name: 'bourse_journal_last_snapshot_seq', help: 'Sequence number of the newest snapshot (a restart replays the journal after it)', registers: [registry],
    collect() { this.set(exchange.sequencer.journal.newestSnapshotSeq()); },
  });
  new Gauge({ name: 'bourse_open_orders', help: 'Open orders in the engine', registers: [registry], collect() { this.set(exchange.engine.orders.size); } });
  new Gauge({
    name: 'bourse_cancel_after_armed', help: "Accounts whose dead man's switch is armed", registers: [registry],
    collect() { this.set(exchange.engine.cancelAfter.size); },
  });
  new Gauge({
    name: 'bourse_backup_last_timestamp_seconds', help: 'When the newest complete backup in backups.dir was taken (0: none); alert when it is too old', registers: [registry],
    collect() { this.set((exchange.lastBackup?.takenAt ?? 0) / 1000); },
  });
  new Gauge({
    name: 'bourse_backup_last_seq', help: 'Last sequence number the newest backup holds (0: none)', registers: [registry],
    collect() { this.set(exchange.lastBackup?.lastSeq ?? 0); },
  });
  new Gauge({
    name: 'bourse_liability_report_last_timestamp_seconds', help: 'When the newest proof-of-liabilities report was taken (0: none); alert when it is older than the venue promises', registers: [registry],
    collect() { this.set((exchange.liabilities.reports(1)[0]?.takenAt ?? 0) / 1000); },
  });
  new Counter({
    name: 'bourse_backup_failures_total', help: 'Backups that failed since start (a refused name or a backup already running not counted)', registers: [registry],
    collect() { this.reset(); this.inc(exchange.backupFailures); },
  });
  new Gauge({
    name: 'bourse_data_disk_free_bytes', help: 'Space left for the data folder: when the journal cannot commit, order entry stops', registers: [registry],
    collect() {
      const disk = statfsSync(exchange.dataDir);
      this.set(disk.bavail * disk.bsize);
    },
  });
  new Counter({
    name: 'bourse_mails_total',
    help: 'Mails to users since start, by purpose and outcome (sent; retried: an attempt failed and will be made again; failed: given up on, after a permanent refusal or the last attempt)',
    labelNames: ['purpose', 'outcome'], registers: [registry],
    collect() {
      this.reset();
      for (const [purpose, counts] of Object.entries(mailer.counts)) {
        this.inc({ purpose, outcome: 'sent' }, counts.sent);
        this.inc({ purpose, outcome: 'retried' }, counts.retried);
        this.inc({ purpose, outcome: 'failed' }, counts.failed);
      }
    },
  });
  new Gauge({
    name: 'bourse_mail_queue', help: 'Mails in DATA/mail.db: pending (to be sent or retried) and failed (given up on, kept for the operator)', labelNames: ['state'], registers: [registry],
    collect() {
      if (!mailer.queue.isOpen) return;
      for (const [state, count] of Object.entries(mailer.queue.counts())) this.set({ state }, count);
    },
  });
  new Gauge({ name: 'bourse_websocket_clients', help: 'Connected WebSocket clients', registers: [registry], collect() { this.set(sockets()?.clients() ?? 0); } });
  const socketCounter = (name: string, help: string, read: (stats: SocketStats) => number): void => {
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read(sockets()?.stats ?? NO_SOCKET_STATS)); } });
  };
  socketCounter('bourse_websocket_slow_consumer_closes_total', 'WebSocket clients closed (1008) for falling too far behind', (s) => s.slowConsumerCloses);
  socketCounter('bourse_websocket_resyncs_total', 'Depth and book snapshots sent again to WebSocket clients that fell behind, once they caught up', (s) => s.resyncs);
  socketCounter('bourse_websocket_snapshots_made_total', 'Depth and book snapshots made (one per published update at most, however many ask)', (s) => s.snapshotsMade);
  socketCounter('bourse_websocket_snapshots_sent_total', 'Depth and book snapshots sent to WebSocket clients', (s) => s.snapshotsSent);

  new Counter({
    name: 'bourse_rate_bans_total', help: 'Addresses and keys banned since start for sending on after 429s (GET /admin/v1/rate-bans lists those in force)', registers: [registry],
    collect() { this.reset(); this.inc(rateBans.made); },
  });
  new Gauge({ name: 'bourse_rate_bans', help: 'Addresses and keys banned now for sending on after 429s', registers: [registry], collect() { this.set(rateBans.all(exchange.clock()).length); } });

  // One series per route, method and status, found without building a label object per request;
  // each route's hook knows its own path (request.routeOptions would build an object per access).
  // Callback form: an async hook would cost a promise per request.
  const observer = (route: string): onResponseHookHandler => {
    const byStatus = new Map<string, LatencySeries>();
    return (request, reply, done) => {
      const key = request.method + reply.statusCode;
      let series = byStatus.get(key);
      if (series === undefined) {
        series = latency.series({ method: request.method, route, status: String(reply.statusCode) });
        byStatus.set(key, series);
      }
      series.observe(reply.elapsedTime / 1000);
      done();
    };
  };
  app.addHook('onRoute', (route) => {
    const observe = observer(route.url);
    route.onResponse = route.onResponse === undefined ? [observe] : [...[route.onResponse].flat(), observe];
  });
  const unrouted = observer('unknown');
  app.addHook('onResponse', function (request, reply, done) {
    if (request.is404) unrouted.call(this, request, reply, done);
    else done();
  });
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    void reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
}
