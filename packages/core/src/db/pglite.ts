import { PGlite, types } from '@electric-sql/pglite';

export { PGlite };
import type { Database, Executor, QueryResult, Statement } from './types.ts';
import { quoteIdent } from './ident.ts';

export interface PgliteOptions {
  /** A directory for the data, or `memory://` for a throw-away database. */
  dataDir: string;
  /** Schema for every statement (set as the search_path). */
  schema: string;
}

// Same shapes as the postgres driver: int8 as string, timestamptz as Date, json parsed.
export const pgliteParsers = { [types.INT8]: (v: string) => v };

interface PgliteQueryable {
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[]; affectedRows?: number }>;
  exec(sql: string): Promise<unknown>;
}

function wrap(target: PgliteQueryable): Executor {
  return {
    async query<R>(sql: string | Statement, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const text = typeof sql === 'string' ? sql : sql.text;
      const res = await target.query<R>(text, params as unknown[] | undefined);
      return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await target.exec(sql);
    },
  };
}

/**
 * Opens PostgreSQL in-process (PGlite, WebAssembly). One connection: statements run one at a
 * time, a transaction holds it until it ends. Good for the embedded mode and tests; a
 * deployment with several nodes needs the postgres driver.
 */
export async function openPglite(opts: PgliteOptions): Promise<Database> {
  const pg = await PGlite.create({ dataDir: opts.dataDir, parsers: pgliteParsers });
  return pgliteDatabase(pg, opts.schema, () => pg.close());
}

/**
 * Wraps an open PGlite instance, resolving names in `schema` from now on. Tests use it to give
 * each test a schema of its own in one instance (PGlite takes seconds to start).
 */
export async function pgliteDatabase(pg: PGlite, schema: string, close: () => Promise<void>): Promise<Database> {
  await pg.exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}; SET search_path TO ${quoteIdent(schema)}, public`);
  const base = wrap(pg as unknown as PgliteQueryable);
  return {
    driver: 'pglite',
    schema,
    relaxed: base,
    query: base.query,
    exec: base.exec,
    transaction: (fn) => pg.transaction((tx) => fn(wrap(tx as unknown as PgliteQueryable))),
    async listen(channel, onPayload) {
      const unlisten = await pg.listen(channel, onPayload);
      return () => unlisten();
    },
    close,
  };
}
