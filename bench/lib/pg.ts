/** Direct PostgreSQL access for the harness: namespaces, preloads, verification. */
import pg from 'pg';

/** One statement on a short-lived connection. */
export async function adminQuery<R = any>(databaseUrl: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as R[];
  } finally {
    await client.end();
  }
}

/**
 * The preparation every PostgreSQL system gets after its bulk load, before its drain: planner
 * statistics for each of its tables (`ANALYZE`, as autovacuum would do some time later), then a
 * `CHECKPOINT` so that the drain does not pay for flushing the load.
 */
export async function analyzeAndCheckpoint(databaseUrl: string, schema: string): Promise<void> {
  const tables = await adminQuery<{ t: string }>(databaseUrl,
    `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname = $1`, [schema]);
  for (const { t } of tables) await adminQuery(databaseUrl, `ANALYZE ${t}`);
  await adminQuery(databaseUrl, 'CHECKPOINT');
}
