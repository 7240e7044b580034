import { PGlite, parse, protocol, types, type Results } from '@electric-sql/pglite';

export { PGlite };
import type { Database, Executor, QueryResult, Statement } from './types.ts';
import { quoteIdent } from './ident.ts';
import { classifyDatabaseError, DatabaseUnavailableError } from '../errors.ts';
import { initDataDir, initInMemory } from './pgliteInitdb.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface PgliteOptions {
  /** A directory for the data, or `memory://` for a throw-away database. */
  dataDir: string;
  /** Schema for every statement (set as the search_path). */
  schema: string;
}

// Same shapes as the postgres driver: int8 as string, timestamptz as Date, json parsed.
export const pgliteParsers = { [types.INT8]: (v: string) => v };

const { serialize } = protocol;
type BackendMessage = Parameters<typeof parse.parseResults>[0][number];

/** A statement parsed once on the connection: its parameter types and the shape of its rows. */
interface Prepared {
  serverName: string;
  paramTypes: number[];
  /** The RowDescription message, prepended to each execution's messages for parseResults. */
  rowDescription: BackendMessage | undefined;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * Runs statements over PGlite's wire protocol, each message batch in one call into the
 * WebAssembly module. A named Statement is parsed once per wrapper (Parse + Describe) and then
 * only bound and executed, as the postgres driver prepares it once per connection; BEGIN,
 * COMMIT and ROLLBACK too. PGlite's own `query` parses, analyses and plans every statement
 * again, in six calls into the module: 20,000 runs of a one-row SELECT by primary key took
 * 6.2 s through it and 1.3 s prepared here.
 */
class ProtocolClient {
  private readonly prepared = new Map<string, Prepared>();
  private readonly pg: PGlite;
  private readonly prefix: string;

  constructor(pg: PGlite, prefix: string) {
    this.pg = pg;
    this.prefix = prefix;
  }

  /** One statement, with the connection already held (the query lock). */
  async run<R>(sql: string | Statement, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    const result = await this.execute<R>(sql, params);
    return { rows: result?.rows ?? [], rowCount: result?.affectedRows ?? result?.rows.length ?? 0 };
  }

  /** One statement's whole result, command tag included. */
  async execute<R>(sql: string | Statement, params: readonly unknown[] = []): Promise<Results<R> | undefined> {
    const prepared = typeof sql === 'string' ? await this.describe(sql, '') : await this.prepare(sql);
    const values = params.map((v, i) => {
      if (v === null || v === undefined) return null;
      const serializer = this.pg.serializers[prepared.paramTypes[i]!];
      return serializer ? serializer(v) : String(v);
    });
    const { messages } = await this.pg.execProtocol(
      concat(serialize.bind({ statement: prepared.serverName, values }), serialize.execute({}), serialize.sync()),
      { syncToFs: false },
    );
    return (parse.parseResults(prepared.rowDescription ? [prepared.rowDescription, ...messages] : messages, this.pg.parsers) as Results<R>[])[0];
  }

  /** A script of statements without parameters (the simple query protocol). */
  async script(sql: string): Promise<Results[]> {
    const { messages } = await this.pg.execProtocol(serialize.query(sql), { syncToFs: false });
    return parse.parseResults(messages, this.pg.parsers);
  }

  private async prepare(stmt: Statement): Promise<Prepared> {
    const known = this.prepared.get(stmt.name);
    if (known) return known;
    const prepared = await this.describe(stmt.text, `${this.prefix}${stmt.name}`);
    this.prepared.set(stmt.name, prepared);
    return prepared;
  }

  private async describe(text: string, serverName: string): Promise<Prepared> {
    const { messages } = await this.pg.execProtocol(
      concat(serialize.parse({ name: serverName, text }), serialize.describe({ type: 'S', name: serverName }), serialize.sync()),
      { syncToFs: false },
    );
    return {
      serverName,
      paramTypes: parse.parseDescribeStatementResults(messages),
      rowDescription: messages.find((m) => m.name === 'rowDescription'),
    };
  }
}

/**
 * Runs one statement, its failure classified (errors.ts). An instance that is closing or closed
 * (the node is stopping) is unavailable, not a bug: PGlite's protocol calls fail on it with
 * whatever its torn-down module throws.
 */
async function classified<T>(pg: PGlite, name: string | undefined, run: () => Promise<T>): Promise<T> {
  if (!pg.ready) throw closedError(name);
  try {
    return await run();
  } catch (err) {
    throw pg.ready ? classifyDatabaseError(err, name) : closedError(name, err);
  }
}

function nameOf(sql: string | Statement): string | undefined {
  return typeof sql === 'string' ? undefined : sql.name;
}

function closedError(statement: string | undefined, cause?: unknown): DatabaseUnavailableError {
  return new DatabaseUnavailableError('the embedded database is closing or closed (the node is stopping)', { cause, statement, retryAfterSeconds: 2 });
}

const TX = {
  begin: { name: 'tf_begin', text: 'BEGIN' },
  commit: { name: 'tf_commit', text: 'COMMIT' },
  rollback: { name: 'tf_rollback', text: 'ROLLBACK' },
} satisfies Record<string, Statement>;

/**
 * Gives the event loop a turn before a statement or a transaction that follows another without
 * one in between. PGlite runs statements in this process, without I/O, so their promises settle
 * in microtasks: a loop of statements (a sampler, a duty's batches, a claimer retrying) would
 * otherwise run for as long as it loops while timers, sockets and setImmediate callbacks wait
 * (other claimers never got back to the lock: `flow.suite.ts`, the 50 concurrent claimers), which
 * no network driver allows. Returns the promise to await, or undefined when the loop turned
 * since the last statement (then it only notes, with a setImmediate, when it turns next): one
 * turn per two back-to-back statements, none for statements that come from events.
 */
function eventLoopTurns(): () => Promise<void> | undefined {
  let turned = true;
  const mark = () => {
    turned = true;
  };
  return () => {
    if (!turned) return new Promise((resolve) => setImmediate(resolve));
    turned = false;
    setImmediate(mark);
    return undefined;
  };
}

/** Wrappers on one instance get statement names of their own (tests give each its own schema). */
const wrappers = new WeakMap<PGlite, number>();

/**
 * Opens PostgreSQL in-process (PGlite, WebAssembly). One connection: statements run one at a
 * time, a transaction holds it until it ends. Good for the embedded mode and tests; a
 * deployment with several nodes needs the postgres driver.
 */
export async function openPglite(opts: PgliteOptions): Promise<Database> {
  const memory = opts.dataDir.startsWith('memory://');
  const startParams = [...PGlite.defaultStartParams, ...Object.entries(memory ? IN_MEMORY_SETTINGS : SETTINGS).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  let loadDataDir: Blob | undefined;
  if (memory) loadDataDir = await initInMemory(startParams);
  else if (!existsSync(join(opts.dataDir, 'PG_VERSION'))) await initDataDir(opts.dataDir, startParams);
  const pg = await PGlite.create({ dataDir: opts.dataDir, parsers: pgliteParsers, startParams, ...(loadDataDir ? { loadDataDir } : {}) });
  return pgliteDatabase(pg, opts.schema, () => pg.close());
}

/**
 * PostgreSQL settings PGlite runs with (on top of its own start parameters). shared_buffers:
 * PGlite's default of 128 MB is allocated, and touched, in the WebAssembly heap at start; 32 MB
 * holds the bench's working set (the ready index and the pages being claimed and settled).
 * Measured with `npm run bench -- --only pglite` in bench/ (N = 20,000, the server's peak RSS):
 * 356 MiB with 128 MB, 252 with 32, 229 with 16 (which cost more server CPU per task).
 */
const SETTINGS: Record<string, string> = { shared_buffers: '32MB' };

/** In memory the WAL's files are memory too: checkpoint (and recycle them) every 64 MB rather than every 1 GB. */
const IN_MEMORY_SETTINGS: Record<string, string> = { ...SETTINGS, max_wal_size: '64MB', min_wal_size: '32MB' };

/**
 * Wraps an open PGlite instance, resolving names in `schema` from now on. Tests use it to give
 * each test a schema of its own in one instance (PGlite takes seconds to start).
 *
 * PGlite has two locks: the transaction lock, held by a transaction from BEGIN to its end, and
 * the query lock, held by one statement. A statement outside a transaction takes both (so that
 * it never runs inside someone else's); one inside takes the query lock only.
 */
export async function pgliteDatabase(pg: PGlite, schema: string, close: () => Promise<void>): Promise<Database> {
  await pg.exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}; SET search_path TO ${quoteIdent(schema)}, public`);
  const id = (wrappers.get(pg) ?? 0) + 1;
  wrappers.set(pg, id);
  const client = new ProtocolClient(pg, `w${id}_`);
  const inQueryLock = <T>(fn: () => Promise<T>) => pg._runExclusiveQuery(fn);
  const turn = eventLoopTurns();
  const alone = async <T>(fn: () => Promise<T>): Promise<T> => {
    const pending = turn();
    if (pending) await pending;
    const result = await pg._runExclusiveTransaction(() => inQueryLock(fn));
    await pg.syncToFs();
    return result;
  };
  const base: Executor = {
    query: (sql, params) => classified(pg, nameOf(sql), () => alone(() => client.run(sql, params))),
    exec: (sql) => classified(pg, 'script', async () => {
      await alone(() => client.script(sql));
    }),
  };
  const inTransaction: Executor = {
    query: (sql, params) => classified(pg, nameOf(sql), () => inQueryLock(() => client.run(sql, params))),
    exec: (sql) => classified(pg, 'script', async () => {
      await inQueryLock(() => client.script(sql));
    }),
  };
  return {
    driver: 'pglite',
    schema,
    relaxed: base,
    query: base.query,
    exec: base.exec,
    async transaction(fn) {
      if (!pg.ready) throw closedError('transaction');
      const pending = turn();
      if (pending) await pending;
      const result = await pg._runExclusiveTransaction(async () => {
        await inQueryLock(() => client.run(TX.begin));
        try {
          const value = await fn(inTransaction);
          const commit = await inQueryLock(() => client.execute(TX.commit));
          // A transaction in which a statement failed (and the caller went on) ends in a rollback.
          if (commit?.command === 'ROLLBACK') throw new Error('the transaction was rolled back: a statement in it failed');
          return value;
        } catch (err) {
          await inQueryLock(() => client.run(TX.rollback)).catch(() => undefined);
          throw err;
        }
      });
      await pg.syncToFs();
      return result;
    },
    async listen(channel, onPayload) {
      const unlisten = await pg.listen(channel, onPayload);
      return () => unlisten();
    },
    close,
  };
}
