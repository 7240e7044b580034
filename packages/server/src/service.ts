/**
 * One Taskflow node: database, migrations, engine, wake-ups, background duties and the HTTP
 * API, started in that order and stopped in reverse. `taskflow start` runs one; tests and
 * benchmarks start several in one process or many.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Logger as PinoLogger } from 'pino';
import { createLogger, withReadableErrors } from './logging.ts';
import type { FastifyInstance } from 'fastify';
import {
  AlertEvaluationDuty, Alerts, Analytics, AnalyticsRollupDuty, ApiKeyStore, Engine, instrumentDatabase, Maintenance, migrate, openDatabase, PgNotifyTransport, WakeHub,
  type Clock, type Database, type WakeTransport,
} from '@taskflow/core';
import { HealthChecks } from './ops/health.ts';
import { TaskflowMetrics } from './ops/metrics.ts';
import type { Config } from './config.ts';
import { buildApp } from './app.ts';
import { bootstrapKeys } from './bootstrap.ts';
import { AlertNotifier } from './alerts/notifier.ts';
import type { Tracer } from '@opentelemetry/api';

export interface Service {
  config: Config;
  db: Database;
  engine: Engine;
  hub: WakeHub;
  app: FastifyInstance;
  /** The base URL it listens on (`http://127.0.0.1:7700`). */
  url: string;
  /** Set on the first start of an empty database: an admin key to print once. */
  createdAdminKey?: string;
  logger: PinoLogger;
  /** This node's metrics; undefined when they are off (TASKFLOW_METRICS=off). */
  metrics: TaskflowMetrics | undefined;
  health: HealthChecks;
  /** The base URL of the separate metrics listener (TASKFLOW_METRICS_PORT), if any. */
  metricsUrl: string | undefined;
  /** Stops the node; /readyz answers 503 (draining) from the first moment. */
  stop(): Promise<void>;
}

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export interface StartOptions {
  logger?: PinoLogger;
  clock?: Clock;
  /** Run the background duties (rescue, promotion, schedules, the analytics rollup). @defaultValue true */
  maintenance?: boolean;
  authCacheMs?: number;
  /**
   * The tracer of the server's spans, in place of the one `config.tracing` would make (tests
   * give one backed by an in-memory exporter). @defaultValue none, or one exporting as
   * `config.tracing` says
   */
  tracer?: Tracer;
}

/** The tracer the options give, or the one the configuration asks for (its SDK loaded only then). */
async function tracerOf(config: Config, opts: StartOptions, cleanups: (() => Promise<void>)[]): Promise<Tracer | undefined> {
  if (opts.tracer || !config.tracing) return opts.tracer;
  const setup = await (await import('./tracing/setup.ts')).startTracing(config.tracing, version);
  cleanups.push(() => setup.shutdown());
  return setup.tracer;
}

export async function startService(config: Config, opts: StartOptions = {}): Promise<Service> {
  const logger = opts.logger ? withReadableErrors(opts.logger) : createLogger(config.logLevel);
  const metrics = config.metrics ? new TaskflowMetrics({ version }) : undefined;
  const opened = await openDatabase({
    databaseUrl: config.databaseUrl, dataDir: config.dataDir, schema: config.schema, poolSize: config.poolSize,
    connectionTimeoutMs: config.connectionTimeoutMs, logger,
  });
  const db = metrics ? instrumentDatabase(opened, metrics.statement) : opened;
  const cleanups: (() => Promise<void>)[] = [() => db.close()];
  const unwind = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch((err) => logger.error({ err }, 'error while stopping'));
  };
  try {
    await migrate(db, logger);
    const apiKeys = new ApiKeyStore(db);
    const { createdAdminKey } = await bootstrapKeys(apiKeys, config.bootstrapApiKey, logger);
    const engine = new Engine({
      db, clock: opts.clock, logger, telemetry: metrics,
      options: {
        defaultTimeoutMs: config.defaultTimeoutMs, defaultMaxAttempts: config.defaultMaxAttempts,
        poisonAfter: config.poisonAfter, workerTtlMs: config.workerTtlMs, maxPayloadBytes: config.maxPayloadBytes,
      },
    });
    const nodeId = randomUUID();
    const transport: WakeTransport | undefined = config.redisUrl
      ? new (await import('@taskflow/core/redis')).RedisTransport(config.redisUrl, config.schema, nodeId, logger)
      : db.driver === 'postgres' ? new PgNotifyTransport(db, nodeId, logger) : undefined;
    const hub = new WakeHub(transport, logger);
    await hub.start();
    cleanups.push(() => hub.stop());
    engine.on({ ready: (queues) => hub.publish(queues) });

    if (opts.maintenance !== false) {
      const maintenance = new Maintenance(engine, logger, {
        rescueIntervalMs: config.rescueIntervalMs,
        rescueStartDelayMs: config.rescueStartDelayMs,
        rescueOutageGraceMs: config.rescueOutageGraceMs,
        statsIntervalMs: metrics ? config.statsIntervalMs : 0,
      });
      maintenance.start();
      cleanups.push(() => maintenance.stop());
      const rollup = new AnalyticsRollupDuty(new Analytics(db, engine.clock), logger);
      rollup.start();
      cleanups.push(() => rollup.stop());
      await startAlerts(config, engine, logger, metrics, cleanups);
    }

    const health = new HealthChecks({ engine, hub, releaseId: version, redisConfigured: config.redisUrl !== undefined, logger });
    if (metrics) {
      metrics.watch(db, engine);
      metrics.watchHealth(health);
    }
    const shutdown = new AbortController();
    const tracer = await tracerOf(config, opts, cleanups);
    const app = await buildApp({
      config, db, engine, apiKeys, hub, logger, authCacheMs: opts.authCacheMs, shutdown: shutdown.signal, tracer, health, metrics,
    });
    cleanups.push(async () => {
      shutdown.abort(); // waiting claims answer empty now
      // In-flight requests get a moment to finish; keep-alive connections do not hold the
      // close up for their whole idle timeout.
      const force = setTimeout(() => app.server.closeAllConnections(), 2000);
      await app.close();
      clearTimeout(force);
    });
    await app.listen({ host: config.host, port: config.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    const metricsUrl = metrics && config.metricsPort !== undefined ? await serveMetrics(metrics, config, cleanups) : undefined;
    logger.info({ url, metricsUrl, database: db.driver, schema: db.schema, wakeups: hub.transportName, version }, 'taskflow is serving');
    const stop = async () => {
      health.drain();
      await unwind();
    };
    return { config, db, engine, hub, app, url, createdAdminKey, logger, metrics, health, metricsUrl, stop };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/**
 * The alerts' duties (docs/operations.md, "Alerts"): the notifier, which delivers the
 * notifications of `taskflow.alerts`, and the evaluation of the rules (off when
 * TASKFLOW_ALERTS_INTERVAL_MS is 0). Nodemailer is loaded only when email is configured.
 */
async function startAlerts(
  config: Config, engine: Engine, logger: PinoLogger, metrics: TaskflowMetrics | undefined, cleanups: (() => Promise<void>)[],
): Promise<void> {
  const alerts = new Alerts(engine);
  metrics?.watchAlerts(() => alerts.listFiring());
  const mailer = config.smtpUrl !== undefined && config.alertsEmailFrom !== undefined
    ? new (await import('./alerts/email.ts')).AlertMailer({ smtpUrl: config.smtpUrl, from: config.alertsEmailFrom })
    : undefined;
  const notifier = new AlertNotifier({
    engine, alerts, logger, mailer, pollIntervalMs: config.pollIntervalMs, workerTtlMs: config.workerTtlMs,
    onSent: metrics ? (channel, ok) => metrics.alertNotification(channel, ok) : undefined,
  });
  notifier.start();
  cleanups.push(async () => {
    await notifier.stop();
    mailer?.close();
  });
  if (config.alertsIntervalMs > 0) {
    const duty = new AlertEvaluationDuty(alerts, logger, { intervalMs: config.alertsIntervalMs, onNotified: () => notifier.soon() });
    duty.start();
    cleanups.push(() => duty.stop());
  }
}

/** /metrics alone on a port of its own (TASKFLOW_METRICS_PORT), for a scraper kept off the API port. */
async function serveMetrics(metrics: TaskflowMetrics, config: Config, cleanups: (() => Promise<void>)[]): Promise<string> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics is served here\n');
      return;
    }
    metrics.exposition().then(
      (body) => res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' }).end(body),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.metricsPort, config.host, () => resolve());
  });
  cleanups.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.metricsPort;
  return `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
}
