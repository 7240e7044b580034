import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Database } from './db/types.ts';
import { SchemaTooNewError, TaskflowError } from './errors.ts';
import { quoteIdent } from './db/ident.ts';
import type { Logger } from './logger.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

/** The migrations this build carries, in order (`NNNN_name.sql`). */
export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file, i) => {
      const version = Number(file.slice(0, 4));
      if (version !== i + 1) throw new TaskflowError('migration_gap', `migration ${file} is out of sequence (expected ${i + 1})`);
      return { version, name: file.slice(5, -4), sql: readFileSync(`${dir}/${file}`, 'utf8') };
    });
}

export interface MigrateResult {
  /** Versions applied by this call (empty when the schema was current). */
  applied: number[];
  /** The schema's version afterwards. */
  version: number;
}

/**
 * Brings the schema up to date. Safe when many nodes start at once: each migration runs in
 * its own transaction under a transaction-scoped advisory lock keyed by the schema, and
 * re-reads the ledger after taking the lock, so a migration another node applied meanwhile
 * is skipped. Refuses (SchemaTooNewError) when the ledger holds a version this build lacks.
 */
export async function migrate(db: Database, logger: Logger, migrations: Migration[] = loadMigrations()): Promise<MigrateResult> {
  const latest = migrations.at(-1)?.version ?? 0;
  const applied: number[] = [];
  let version = 0;
  for (;;) {
    const next = await db.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`taskflow:migrate:${db.schema}`]);
      await tx.exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(db.schema)};
        CREATE TABLE IF NOT EXISTS ${quoteIdent(db.schema)}.taskflow_migrations (
          version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await tx.query<{ v: number | null }>(
        `SELECT max(version) AS v FROM ${quoteIdent(db.schema)}.taskflow_migrations`,
      );
      version = rows[0]?.v ?? 0;
      if (version > latest) throw new SchemaTooNewError(db.schema, version, latest);
      const migration = migrations.find((m) => m.version === version + 1);
      if (!migration) return undefined;
      // The ledger row first: a concurrent migrator that somehow got here fails on the key.
      await tx.query(`INSERT INTO ${quoteIdent(db.schema)}.taskflow_migrations (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
      await tx.exec(`SET LOCAL search_path TO ${quoteIdent(db.schema)}, public;\n${migration.sql}`);
      return migration;
    });
    if (!next) break;
    applied.push(next.version);
    version = next.version;
    logger.info({ schema: db.schema, version: next.version, name: next.name }, 'applied migration');
  }
  return { applied, version };
}
