/**
 * The one database interface the engine speaks. Two drivers implement it (node-postgres and
 * PGlite); both run the same SQL, the same migrations and the same conformance suite.
 */

/** A statement with a stable name, so drivers that can prepare it do so once per connection. */
export interface Statement {
  /** Unique across the code base; also the prepared-statement name. */
  readonly name: string;
  readonly text: string;
}

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** Something that runs SQL: the database itself or an open transaction. */
export interface Executor {
  /** One statement; values are always bound, never interpolated. */
  query<R = Record<string, any>>(sql: string | Statement, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** A script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export type DriverName = 'postgres' | 'pglite';

export interface Database extends Executor {
  readonly driver: DriverName;
  /**
   * Runs statements whose commit need not wait for the WAL flush (synchronous_commit = off).
   * Only for writes whose loss in a crash of PostgreSQL itself costs nothing but a re-run: a
   * claim (the task comes back as queued; the worker's result is refused as stale). Never for
   * anything acknowledged to a producer. PGlite: the same connection.
   */
  readonly relaxed: Executor;
  /** The schema every statement resolves against (the connection's search_path). */
  readonly schema: string;
  /**
   * Runs `fn` in one transaction on one connection; commits when it resolves, rolls back when
   * it throws. Inside, use only `tx`: on PGlite any other query waits for the transaction.
   */
  transaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T>;
  /**
   * Subscribes to NOTIFY on `channel`. The returned function unsubscribes. The postgres driver
   * keeps one dedicated connection for all subscriptions and re-subscribes after reconnecting.
   */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /** The connection pools' use now (node-postgres only: PGlite has one connection). */
  poolStats?(): PoolStats[];
  close(): Promise<void>;
}

/** One connection pool's use. */
export interface PoolStats {
  /** `main`, or `relaxed` (claims: see Database.relaxed). */
  pool: string;
  /** Connections open, idle among them, and callers waiting for one. */
  total: number;
  idle: number;
  waiting: number;
  max: number;
}
