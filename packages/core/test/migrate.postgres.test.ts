/**
 * Migrations under contention, on PostgreSQL: many nodes starting at once against an empty
 * schema must apply each migration exactly once, and all of them must come up.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadMigrations, migrate, openPostgres, silentLogger, type Database } from '@taskflow/core';
import { TEST_DATABASE_URL } from './support/env.ts';
import { dropSchema, freshSchema } from './support/db.ts';

describe('migrations (PostgreSQL)', () => {
  const schema = freshSchema('tfm');
  const dbs: Database[] = [];
  afterAll(async () => {
    await Promise.all(dbs.map((db) => db.close()));
    await dropSchema(schema);
  });

  it('apply once when eight nodes migrate the same empty schema at the same time', async () => {
    for (let i = 0; i < 8; i++) dbs.push(await openPostgres({ connectionString: TEST_DATABASE_URL, schema, poolSize: 2, logger: silentLogger }));
    const results = await Promise.all(dbs.map((db) => migrate(db, silentLogger)));
    const all = loadMigrations().map((m) => m.version);
    expect(results.flatMap((r) => r.applied).sort((a, b) => a - b)).toEqual(all);
    expect(results.every((r) => r.version === all.at(-1))).toBe(true);
    const { rows } = await dbs[0]!.query('SELECT version FROM taskflow_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(all);
  });
});
