import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Database } from './types.ts';
import type { Logger } from '../logger.ts';
import { openPostgres } from './postgres.ts';

export interface OpenDatabaseOptions {
  /** PostgreSQL connection string; without it, PGlite in `dataDir`. */
  databaseUrl?: string;
  /** PGlite data directory, or `memory://`. @defaultValue `./.taskflow` */
  dataDir?: string;
  /** @defaultValue `taskflow` */
  schema?: string;
  /** @defaultValue 10 */
  poolSize?: number;
  logger: Logger;
}

/** Opens the database the configuration names: PostgreSQL with a URL, else embedded PGlite. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const schema = opts.schema ?? 'taskflow';
  if (opts.databaseUrl) {
    return openPostgres({ connectionString: opts.databaseUrl, schema, poolSize: opts.poolSize, logger: opts.logger });
  }
  // Loaded only when used: PGlite's module costs memory a PostgreSQL node does not need.
  const { openPglite } = await import('./pglite.ts');
  const dataDir = opts.dataDir ?? './.taskflow';
  if (!dataDir.startsWith('memory://')) {
    mkdirSync(resolve(dataDir), { recursive: true });
    return openPglite({ dataDir: resolve(dataDir, 'pgdata'), schema });
  }
  return openPglite({ dataDir, schema });
}
