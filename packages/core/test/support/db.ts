import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { migrate, openPostgres, quoteIdent, silentLogger, type Database, type DriverName } from '@taskflow/core';
import { PGlite, pgliteDatabase, pgliteParsers } from '@taskflow/core/pglite';
import { TEST_DATABASE_URL } from './env.ts';

/** A fresh schema name, unique per test. */
export function freshSchema(prefix = 'tft'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** Drops a test schema on the shared PostgreSQL. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

export interface TestDatabases {
  /** A migrated database in a schema of its own. */
  fresh(options?: { migrate?: boolean; poolSize?: number }): Promise<Database>;
  /**
   * Closes the databases `fresh` opened so far (their schemas stay until `closeAll`). A suite
   * of many tests calls it after each: a PostgreSQL pool keeps its connections for ten idle
   * seconds, and fifty tests' pools open at once reach the server's 100 connections.
   */
  closeOpened(): Promise<void>;
  /** Closes everything `fresh` opened and drops the schemas. */
  closeAll(): Promise<void>;
}

/**
 * Per-test databases for one driver. PostgreSQL: a pool per test on its own schema, dropped at
 * the end. PGlite: one in-memory instance per test file (it takes seconds to start) and a
 * schema per test in it.
 */
export function testDatabases(driver: DriverName): TestDatabases {
  const opened: Database[] = [];
  const schemas: string[] = [];
  let lite: Promise<PGlite> | undefined;
  return {
    async fresh(options = {}) {
      const schema = freshSchema();
      let db: Database;
      if (driver === 'postgres') {
        db = await openPostgres({ connectionString: TEST_DATABASE_URL, schema, poolSize: options.poolSize ?? 5, logger: silentLogger });
        schemas.push(schema);
      } else {
        lite ??= PGlite.create({ dataDir: 'memory://', parsers: pgliteParsers });
        db = await pgliteDatabase(await lite, schema, async () => {});
      }
      opened.push(db);
      if (options.migrate !== false) await migrate(db, silentLogger);
      return db;
    },
    async closeOpened() {
      await Promise.all(opened.splice(0).map((db) => db.close()));
    },
    async closeAll() {
      await Promise.all(opened.splice(0).map((db) => db.close()));
      // A few at a time: each DROP ... CASCADE locks every object of its schema until it
      // commits, and dozens at once (a suite's schemas) overflow PostgreSQL's shared lock
      // table ("out of shared memory") for every test file running beside them.
      const drops = schemas.splice(0);
      await Promise.all(Array.from({ length: 4 }, async () => {
        for (let schema = drops.pop(); schema !== undefined; schema = drops.pop()) await dropSchema(schema);
      }));
      if (lite) await (await lite).close();
      lite = undefined;
    },
  };
}

/**
 * testDatabases(driver) for one suite, closed by its hooks: what a test opened, after the test;
 * everything, after the file. With `warm`, a first database is opened and closed in a hook, so
 * that starting PGlite (seconds, tens on a loaded machine) is not on the first test's clock.
 */
export function useTestDatabases(driver: DriverName, warm?: Parameters<TestDatabases['fresh']>[0]): TestDatabases {
  const dbs = testDatabases(driver);
  if (warm) {
    beforeAll(async () => {
      await dbs.fresh(warm);
      await dbs.closeOpened();
    }, 180_000);
  }
  afterEach(() => dbs.closeOpened());
  afterAll(() => dbs.closeAll());
  return dbs;
}
