import pg from 'pg';
import { Redis } from 'ioredis';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '@taskflow/core/test-support';

/**
 * The suite needs a real PostgreSQL and a real Redis. When one is missing the run fails here,
 * with the command that starts it, instead of half the suite failing obscurely (locally and
 * in CI alike: nothing is skipped).
 */
export default async function checkServices(): Promise<void> {
  const problems: string[] = [];
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    problems.push(`PostgreSQL at ${TEST_DATABASE_URL}: ${(err as Error).message}\n  start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`);
  } finally {
    await client.end().catch(() => undefined);
  }
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    problems.push(`Redis at ${TEST_REDIS_URL}: ${(err as Error).message}\n  start it: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`);
  } finally {
    redis.disconnect();
  }
  if (problems.length > 0) throw new Error(`the test suite needs these services:\n${problems.join('\n')}`);
}
