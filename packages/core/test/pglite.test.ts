/**
 * What the PGlite driver does beyond the conformance suite (which both drivers run): it
 * prepares each named statement once, per wrapper and so per schema; it keeps the connection
 * usable after a failed statement and refuses to report a transaction with a failed statement
 * as committed; and it creates a new database (initdb) in a child process, so that the
 * server's process never runs PGlite's initdb (src/db/pgliteInitdb.ts); and it lets the event
 * loop turn between statements that follow one another.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Database, Statement } from '../src/index.ts';
import { openPglite, PGlite, pgliteDatabase, pgliteParsers } from '../src/pglite.ts';

const root = mkdtempSync(join(tmpdir(), 'taskflow-pglite-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the PGlite driver', () => {
  let pg: PGlite;
  let a: Database;
  let b: Database;
  const insert: Statement = { name: 'test_insert', text: 'INSERT INTO t (v) VALUES ($1) RETURNING id, v' };
  const count: Statement = { name: 'test_count', text: 'SELECT count(*)::int AS n FROM t' };

  beforeAll(async () => {
    pg = await PGlite.create({ dataDir: 'memory://', parsers: pgliteParsers });
  }, 120_000);

  afterAll(async () => {
    await pg?.close();
  });

  const preparedNames = async () =>
    (await pg.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name')).rows.map((r) => r.name);

  it('prepares a named statement once per wrapper, in the wrapper\'s schema, and recovers from its failures', async () => {
    // As the tests' databases do: one wrapper, then the next (each sets the search_path).
    a = await pgliteDatabase(pg, 'driver_a', async () => {});
    await a.exec('CREATE TABLE t (id serial PRIMARY KEY, v int NOT NULL)');
    await a.query(insert, [1]);
    expect((await a.query(count)).rows).toEqual([{ n: 1 }]);
    b = await pgliteDatabase(pg, 'driver_b', async () => {});
    await b.exec('CREATE TABLE t (id serial PRIMARY KEY, v int NOT NULL)');
    await b.query(insert, [2]);
    await b.query(insert, [3]);
    expect((await b.query(count)).rows).toEqual([{ n: 2 }]);
    expect((await b.query('SELECT count(*)::int AS n FROM driver_a.t')).rows).toEqual([{ n: 1 }]);
    const names = await preparedNames();
    expect(names.filter((n) => n.endsWith('_test_insert'))).toHaveLength(2);
    expect(names.filter((n) => n.endsWith('_test_count'))).toHaveLength(2);

    // A failed execution of a prepared statement leaves the connection usable, and a transaction
    // in which one failed is not reported committed.
    await expect(b.query(insert, [null])).rejects.toMatchObject({ code: '23502' }); // not null
    expect((await b.query(insert, [4])).rows).toMatchObject([{ v: 4 }]);
    await expect(
      b.transaction(async (tx) => {
        await tx.query(insert, [5]);
        await tx.query(insert, [null]).catch(() => undefined); // swallowed: the transaction is aborted
      }),
    ).rejects.toThrow(/rolled back/);
    expect((await b.query(count)).rows).toEqual([{ n: 3 }]); // 2, 3 and 4
    expect((await b.transaction(async (tx) => (await tx.query(insert, [6])).rows[0]))).toMatchObject({ v: 6 });
  });

  it('lets the event loop turn between back-to-back statements and transactions', async () => {
    // PGlite answers without I/O: a loop of statements would otherwise settle in microtasks
    // only, and a setImmediate callback (another claimer's, the HTTP server's) would wait for
    // the loop to end.
    const c = await pgliteDatabase(pg, 'driver_c', async () => {});
    const one: Statement = { name: 'test_one', text: 'SELECT 1 AS n' };
    for (const run of [() => c.query(one), () => c.transaction((tx) => tx.query(one))]) {
      let turned = false;
      setImmediate(() => {
        turned = true;
      });
      let statements = 0;
      while (!turned && statements < 1000) {
        await run();
        statements++;
      }
      expect(turned).toBe(true);
      expect(statements).toBeLessThanOrEqual(3);
    }
  });
});

describe('a new PGlite database', () => {
  it('is created by a child process, then opened here; the next open finds it', async () => {
    const dataDir = join(root, 'pgdata');
    const create = vi.spyOn(PGlite, 'create');
    const db = await openPglite({ dataDir, schema: 'fresh' });
    // One instance in this process, opened on a database that existed: PGlite's initdb makes two.
    expect(create).toHaveBeenCalledTimes(1);
    expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);
    expect(existsSync(`${dataDir}.initdb`)).toBe(false);
    await db.exec('CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)');
    await db.close();

    const again = await openPglite({ dataDir, schema: 'fresh' });
    expect((await again.query('SELECT v FROM kept')).rows).toEqual([{ v: 7 }]);
    await again.close();
    create.mockRestore();
  }, 120_000);

  it('in memory, is loaded from the files a child process made', async () => {
    const create = vi.spyOn(PGlite, 'create');
    const db = await openPglite({ dataDir: 'memory://', schema: 'mem' });
    expect(create).toHaveBeenCalledTimes(1);
    expect(create.mock.calls[0]![0]).toMatchObject({ loadDataDir: expect.any(Blob) });
    expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await db.close();
    create.mockRestore();
  }, 120_000);
});
