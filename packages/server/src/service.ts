/**
 * One Taskflow node: database, migrations, engine, wake-ups, background duties and the HTTP
 * API, started in that order and stopped in reverse. `taskflow start` runs one; tests and
 * benchmarks start several in one process or many.
 */
import { randomUUID } from 'node:crypto';
import type { Logger as PinoLogger } from 'pino';
import { createLogger, withReadableErrors } from './logging.ts';
import type { FastifyInstance } from 'fastify';
import {
  Analytics, AnalyticsRollupDuty, ApiKeyStore, Engine, Maintenance, migrate, openDatabase, PgNotifyTransport, WakeHub,
  type Clock, type Database, type WakeTransport,
} from '@taskflow/core';
import type { Config } from './config.ts';
import { buildApp } from './app.ts';
import { bootstrapKeys } from './bootstrap.ts';
import { readFileSync } from 'node:fs';
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
  stop(): Promise<void>;
}

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
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  const setup = await (await import('./tracing/setup.ts')).startTracing(config.tracing, version);
  cleanups.push(() => setup.shutdown());
  return setup.tracer;
}

export async function startService(config: Config, opts: StartOptions = {}): Promise<Service> {
  const logger = opts.logger ? withReadableErrors(opts.logger) : createLogger(config.logLevel);
  const db = await openDatabase({
    databaseUrl: config.databaseUrl, dataDir: config.dataDir, schema: config.schema, poolSize: config.poolSize,
    connectionTimeoutMs: config.connectionTimeoutMs, logger,
  });
  const cleanups: (() => Promise<void>)[] = [() => db.close()];
  const unwind = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch((err) => logger.error({ err }, 'error while stopping'));
  };
  try {
    await migrate(db, logger);
    const apiKeys = new ApiKeyStore(db);
    const { createdAdminKey } = await bootstrapKeys(apiKeys, config.bootstrapApiKey, logger);
    const engine = new Engine({
      db, clock: opts.clock, logger,
      options: {
        defaultTimeoutMs: config.defaultTimeoutMs, defaultMaxAttempts: config.defaultMaxAttempts,
        poisonAfter: config.poisonAfter, workerTtlMs: config.workerTtlMs,
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
      });
      maintenance.start();
      cleanups.push(() => maintenance.stop());
      const rollup = new AnalyticsRollupDuty(new Analytics(db, engine.clock), logger);
      rollup.start();
      cleanups.push(() => rollup.stop());
    }

    const shutdown = new AbortController();
    const tracer = await tracerOf(config, opts, cleanups);
    const app = await buildApp({ config, db, engine, apiKeys, hub, logger, authCacheMs: opts.authCacheMs, shutdown: shutdown.signal, tracer });
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
    logger.info({ url, database: db.driver, schema: db.schema, wakeups: hub.transportName }, 'taskflow is serving');
    return { config, db, engine, hub, app, url, createdAdminKey, logger, stop: unwind };
  } catch (err) {
    await unwind();
    throw err;
  }
}
