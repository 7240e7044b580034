import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { startService, loadConfig, type Config, type Service, type StartOptions } from '@taskflow/server';
import { TaskflowClient } from '@taskflow/sdk';
import type { DriverName } from '@taskflow/core';
import { TEST_DATABASE_URL, dropSchema, freshSchema } from '@taskflow/core/test-support';

export interface TestService {
  service: Service;
  url: string;
  /** An admin key (TASKFLOW_BOOTSTRAP_API_KEY). */
  adminKey: string;
  admin: TaskflowClient;
  config: Config;
  /** A client with a new key of these scopes. */
  clientWith(scopes: ('producer' | 'worker' | 'admin' | 'read')[]): Promise<TaskflowClient>;
  /**
   * An outage: stops the node (keeping its database), runs `gap`, then starts a new node on
   * the same port and database, which `service` then refers to. `url` and the keys stay valid.
   */
  restart(gap?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A Taskflow node on a random port: PGlite in memory, or PostgreSQL on a schema of its own
 * (dropped at stop unless `schema` was given, i.e. shared with another node).
 */
export async function startTestService(
  driver: DriverName,
  overrides: Partial<Config> & { schema?: string } = {},
  opts: StartOptions = {},
): Promise<TestService> {
  const ownSchema = overrides.schema === undefined;
  const schema = overrides.schema ?? freshSchema('tfs');
  const adminKey = overrides.bootstrapApiKey ?? `tf_test_${randomBytes(16).toString('hex')}`;
  const config = loadConfig({}, {
    port: 0,
    logLevel: 'warn',
    dataDir: 'memory://',
    databaseUrl: driver === 'postgres' ? TEST_DATABASE_URL : undefined,
    poolSize: 5,
    rescueStartDelayMs: 0,
    ...overrides,
    schema,
    bootstrapApiKey: adminKey,
  });
  const start = (cfg: Config) => startService(cfg, { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), ...opts });
  const service = await start(config);
  const admin = new TaskflowClient({ url: service.url, apiKey: adminKey });
  const test: TestService = {
    service, url: service.url, adminKey, admin, config,
    async clientWith(scopes) {
      const { secret } = await admin.createApiKey({ name: `test ${scopes.join('+')}`, scopes });
      return new TaskflowClient({ url: test.url, apiKey: secret });
    },
    async restart(gap) {
      if (driver !== 'postgres') throw new Error('restart keeps the database: PostgreSQL only (PGlite in memory dies with its node)');
      await test.service.stop();
      await gap?.();
      test.service = await start({ ...config, port: Number(new URL(test.url).port) });
    },
    async stop() {
      await test.service.stop();
      if (driver === 'postgres' && ownSchema) await dropSchema(schema);
    },
  };
  return test;
}
