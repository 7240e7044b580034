/**
 * `@taskflow/core/test-support`: where the tests find PostgreSQL and Redis, and databases of
 * their own on them (a schema per test). For this repository's tests (the engine's, the
 * server's, the end-to-end ones in test/); not an API for users and not a stable one.
 */
export { TEST_DATABASE_URL, TEST_REDIS_URL } from './env.ts';
export { dropSchema, freshSchema, testDatabases, type TestDatabases } from './db.ts';
export { fabricate, insertHistory, random, WORKER_IDS, type FabricatedTask, type FabricatedAttempt } from './history.ts';
