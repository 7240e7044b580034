/** The readiness checks of the database, for the server's /readyz (no SQL in a route). */
import { loadMigrations } from '../migrate.ts';
import type { EngineContext } from './context.ts';

/** The schema version this build expects (its last migration), read once. */
let expectedVersion: number | undefined;

export interface DatabaseHealth {
  /** Seconds the check's one statement took. */
  seconds: number;
  /** The schema's migration version, and the one this build carries. */
  version: number;
  expected: number;
}

/** One statement: proves the database answers and reads the schema's version from the ledger. */
export async function checkDatabase(ctx: EngineContext): Promise<DatabaseHealth> {
  expectedVersion ??= loadMigrations().length;
  const t0 = performance.now();
  const { rows } = await ctx.db.query({ name: 'tf_health_schema_version', text: 'SELECT max(version) AS version FROM taskflow_migrations' });
  return { seconds: (performance.now() - t0) / 1000, version: Number(rows[0]?.version ?? 0), expected: expectedVersion };
}
