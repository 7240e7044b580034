/** The PGlite driver (embedded PostgreSQL), as its own entry point: `@taskflow/core/pglite`. */
export { openPglite, pgliteDatabase, pgliteParsers, PGlite, type PgliteOptions } from './db/pglite.ts';
