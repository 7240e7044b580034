import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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
        lite ??= startPglite();
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
 * The initdb image tests start PGlite from: a tar of a new in-memory database (PGlite's own
 * start parameters), one per PGlite version, in the temporary directory.
 */
const INITDB_IMAGE = join(tmpdir(), `taskflow-test-pglite-initdb-${pgliteVersion()}.tar`);

function pgliteVersion(): string {
  const require = createRequire(import.meta.url);
  const main = require.resolve('@electric-sql/pglite');
  for (let dir = dirname(main); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === '@electric-sql/pglite') return pkg.version!;
  }
  throw new Error(`no package.json of @electric-sql/pglite above ${main}`);
}

/**
 * A new in-memory PGlite, from the initdb image: initdb (thousands of catalog statements) is
 * most of a start otherwise. A file's first `fresh()` (start and migrations) took 10.7-11.2 s
 * without the image and 6.1-6.4 s with it on the shared 2-core host (load 11.5); what is left
 * is compiling PGlite's WebAssembly in each test process and the migrations (1.3 s). The first
 * start without an image makes it (written aside, then renamed: a file running beside reads a
 * whole image or none).
 */
async function startPglite(): Promise<PGlite> {
  if (existsSync(INITDB_IMAGE)) {
    return PGlite.create({ dataDir: 'memory://', parsers: pgliteParsers, loadDataDir: new Blob([readFileSync(INITDB_IMAGE)]) });
  }
  const lite = await PGlite.create({ dataDir: 'memory://', parsers: pgliteParsers });
  const partial = `${INITDB_IMAGE}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(partial, Buffer.from(await (await lite.dumpDataDir('none')).arrayBuffer()));
  renameSync(partial, INITDB_IMAGE);
  return lite;
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
