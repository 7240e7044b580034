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
