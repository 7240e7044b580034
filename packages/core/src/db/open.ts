import { resolve } from 'node:path';
import type { Database } from './types.ts';
import type { Logger } from '../logger.ts';
import { openPostgres } from './postgres.ts';
import { DataDirError, ensureDirectory } from './dataDir.ts';
import { lockDataDir } from './dataDirLock.ts';

export interface OpenDatabaseOptions {
  /** PostgreSQL connection string; without it, PGlite in `dataDir`. */
  databaseUrl?: string;
  /** PGlite data directory, or `memory://`. @defaultValue `./.taskflow` */
  dataDir?: string;
  /** @defaultValue `taskflow` */
  schema?: string;
  /** @defaultValue 10 */
  poolSize?: number;
  /** PostgreSQL: longest wait for a connection, ms (see PostgresOptions). @defaultValue 5000 */
  connectionTimeoutMs?: number;
  logger: Logger;
}

/**
 * Opens the database the configuration names: PostgreSQL with a URL, else embedded PGlite. A
 * data directory on disk is created if missing (dataDir.ts) and held by this process until
 * `close()` (dataDirLock.ts); the database itself is in its `pgdata` directory.
 */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const schema = opts.schema ?? 'taskflow';
  if (opts.databaseUrl) {
    return openPostgres({
      connectionString: opts.databaseUrl, schema, poolSize: opts.poolSize, connectionTimeoutMs: opts.connectionTimeoutMs, logger: opts.logger,
    });
  }
  // Loaded only when used: PGlite's module costs memory a PostgreSQL node does not need.
  const { openPglite } = await import('./pglite.ts');
  const dataDir = opts.dataDir ?? './.taskflow';
  if (dataDir.startsWith('memory://')) return openPglite({ dataDir, schema });
  const dir = resolve(dataDir);
  ensureDirectory(dir);
  const lock = lockDataDir(dir);
  if (lock.tookOverFrom) {
    const h = lock.tookOverFrom;
    opts.logger.warn({ dataDir: dir, stalePid: h.pid, staleStartedAt: h.startedAt }, 'took over the lock of a Taskflow process that is gone');
  }
  try {
    const pgdata = resolve(dir, 'pgdata');
    ensureDirectory(pgdata);
    const db = await openPglite({ dataDir: pgdata, schema }).catch((err: unknown) => {
      throw new DataDirError(pgdata, 'cannot_open', `PGlite could not open the database in ${pgdata} (${describe(err)})`, { cause: err });
    });
    return {
      ...db,
      async close() {
        try {
          await db.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** PGlite's file-system errors carry an errno and no message. */
function describe(err: unknown): string {
  const e = err as { message?: string; name?: string; errno?: number };
  if (e?.message) return e.message;
  return e?.errno !== undefined ? `${e.name ?? 'error'} errno ${e.errno}` : String(err);
}
