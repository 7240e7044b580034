import pg from 'pg';
import type { Database, Executor, QueryResult, Statement } from './types.ts';
import type { Logger } from '../logger.ts';
import { quoteIdent } from './ident.ts';
import { classifyDatabaseError } from '../errors.ts';

/** Transaction control, named so that errors and logs say which step failed. */
const TX = {
  begin: { name: 'tf_begin', text: 'BEGIN' },
  commit: { name: 'tf_commit', text: 'COMMIT' },
} satisfies Record<string, Statement>;

export interface PostgresOptions {
  /** A libpq connection string, e.g. `postgres://user@host:5432/db`. */
  connectionString: string;
  /** Schema for every statement (set as the connections' search_path). */
  schema: string;
  /** Pool size. @defaultValue 10 */
  poolSize?: number;
  /** Prepare named statements once per connection. @defaultValue true */
  prepare?: boolean;
  /**
   * Longest wait for a connection (a new one, or a free one of a full pool), ms; past it the
   * statement fails as DatabaseUnavailableError. 0 waits for ever. @defaultValue 5000
   */
  connectionTimeoutMs?: number;
  logger: Logger;
}

function toConfig(sql: string | Statement, params: readonly unknown[] | undefined, prepare: boolean): pg.QueryConfig {
  if (typeof sql === 'string') return { text: sql, values: params as unknown[] | undefined };
  return prepare
    ? { name: sql.name, text: sql.text, values: params as unknown[] | undefined }
    : { text: sql.text, values: params as unknown[] | undefined };
}

function wrap(client: pg.PoolClient | pg.Pool, prepare: boolean): Executor {
  return {
    async query<R>(sql: string | Statement, params?: readonly unknown[]): Promise<QueryResult<R>> {
      try {
        const res = await client.query(toConfig(sql, params, prepare));
        return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
      } catch (err) {
        throw classifyDatabaseError(err, typeof sql === 'string' ? undefined : sql.name);
      }
    },
    async exec(sql: string): Promise<void> {
      try {
        await client.query(sql);
      } catch (err) {
        throw classifyDatabaseError(err, 'script');
      }
    },
  };
}

/**
 * Opens a node-postgres pool; every connection resolves names in `schema` first. int8 comes back
 * as a string (ids stay exact in JSON) and timestamptz as Date, as with PGlite.
 */
export async function openPostgres(opts: PostgresOptions): Promise<Database> {
  const prepare = opts.prepare ?? true;
  const searchPath = `-c search_path=${quoteIdent(opts.schema)},public`;
  const connectionTimeoutMillis = opts.connectionTimeoutMs ?? 5000;
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.poolSize ?? 10,
    options: searchPath,
    connectionTimeoutMillis,
  });
  // Claims: a commit lost in a PostgreSQL crash only means the task runs again, so they do not
  // wait for the WAL flush (about a millisecond per commit on this kind of disk).
  const relaxedPool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.poolSize ?? 10,
    options: `${searchPath} -c synchronous_commit=off`,
    connectionTimeoutMillis,
  });
  // An idle client that errors (server restart, network) must not crash the process. pg-pool
  // hangs the client on the error (err.client): logged through the error serializer, never whole.
  for (const p of [pool, relaxedPool]) {
    p.on('error', (err) => opts.logger.warn({ err: classifyDatabaseError(err) }, 'idle PostgreSQL connection failed'));
  }
  const base = wrap(pool, prepare);
  const listener = new Listener(opts.connectionString, searchPath, opts.logger, connectionTimeoutMillis);

  return {
    driver: 'postgres',
    schema: opts.schema,
    relaxed: wrap(relaxedPool, prepare),
    query: base.query,
    exec: base.exec,
    async transaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T> {
      const client = await pool.connect().catch((err: unknown) => {
        throw classifyDatabaseError(err, 'connect');
      });
      const tx = wrap(client, prepare);
      let broken: unknown;
      // A checked-out client has no listener of the pool's: its connection dying between two
      // statements would be an uncaught 'error' (the process dies). The statement in flight,
      // or the next one, fails with it.
      const onError = (err: unknown) => {
        broken = err;
      };
      client.on('error', onError);
      try {
        await tx.query(TX.begin);
        const result = await fn(tx);
        await tx.query(TX.commit);
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
          broken = rollbackErr;
        });
        throw err;
      } finally {
        client.off('error', onError);
        // A connection that broke, or could not even roll back, is not given to the next caller.
        client.release(broken instanceof Error ? broken : undefined);
      }
    },
    listen: (channel, onPayload) => listener.listen(channel, onPayload),
    poolStats: () => [['main', pool], ['relaxed', relaxedPool]].map(([name, p]) => {
      const q = p as pg.Pool;
      return { pool: name as string, total: q.totalCount, idle: q.idleCount, waiting: q.waitingCount, max: opts.poolSize ?? 10 };
    }),
    async close() {
      await listener.close();
      await Promise.all([pool.end(), relaxedPool.end()]);
    },
  };
}

/**
 * One dedicated connection for LISTEN. It reconnects with backoff when the connection drops,
 * re-issues every LISTEN, and tells subscribers nothing: a missed notification costs at most
 * one poll interval, because every waiter also polls.
 */
class Listener {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly handlers = new Map<string, Set<(payload: string) => void>>();
  private closed = false;
  private retryDelay = 100;
  private readonly connectionString: string;
  private readonly options: string;
  private readonly logger: Logger;

  private readonly connectionTimeoutMillis: number;

  constructor(connectionString: string, options: string, logger: Logger, connectionTimeoutMillis: number) {
    this.connectionTimeoutMillis = connectionTimeoutMillis;
    this.connectionString = connectionString;
    this.options = options;
    this.logger = logger;
  }

  async listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    let set = this.handlers.get(channel);
    const first = !set;
    if (!set) this.handlers.set(channel, (set = new Set()));
    set.add(onPayload);
    const client = await this.connect();
    if (first) await client.query(`LISTEN ${quoteIdent(channel)}`);
    return async () => {
      set.delete(onPayload);
      if (set.size === 0 && this.handlers.get(channel) === set) {
        this.handlers.delete(channel);
        if (this.client && !this.closed) await this.client.query(`UNLISTEN ${quoteIdent(channel)}`).catch(() => undefined);
      }
    };
  }

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.open().finally(() => { this.connecting = undefined; });
    return this.connecting;
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.connectionString, options: this.options, connectionTimeoutMillis: this.connectionTimeoutMillis });
    client.on('notification', (msg) => {
      for (const h of this.handlers.get(msg.channel) ?? []) h(msg.payload ?? '');
    });
    client.on('error', (err) => {
      this.logger.warn({ err: classifyDatabaseError(err) }, 'LISTEN connection failed; reconnecting');
      this.dropAndReconnect(client);
    });
    client.on('end', () => this.dropAndReconnect(client));
    await client.connect();
    for (const channel of this.handlers.keys()) await client.query(`LISTEN ${quoteIdent(channel)}`);
    this.client = client;
    this.retryDelay = 100;
    return client;
  }

  private dropAndReconnect(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (this.closed || this.handlers.size === 0) return;
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, 5_000);
    setTimeout(() => {
      if (this.closed) return;
      this.connect().catch((err) => {
        this.logger.warn({ err: classifyDatabaseError(err) }, 'LISTEN reconnect failed');
        this.scheduleRetry();
      });
    }, delay).unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client ?? (this.connecting ? await this.connecting.catch(() => undefined) : undefined);
    this.client = undefined;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}
