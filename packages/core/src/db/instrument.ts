/**
 * A Database that times every named statement it runs: the server's metrics observe the
 * engine's statements by name without the engine or the drivers knowing of them.
 */
import type { Database, Executor, QueryResult, Statement } from './types.ts';

/** Told each statement's name (`unnamed` for text), its seconds, and whether it failed. */
export type StatementObserver = (name: string, seconds: number, failed: boolean) => void;

function timed(executor: Executor, observe: StatementObserver): Executor {
  return {
    async query<R>(sql: string | Statement, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const t0 = performance.now();
      let failed = true;
      try {
        const res = await executor.query<R>(sql, params);
        failed = false;
        return res;
      } finally {
        observe(typeof sql === 'string' ? 'unnamed' : sql.name, (performance.now() - t0) / 1000, failed);
      }
    },
    exec: (sql) => executor.exec(sql),
  };
}

/** `db`, its relaxed executor and its transactions' executors, each statement observed. */
export function instrumentDatabase(db: Database, observe: StatementObserver): Database {
  const base = timed(db, observe);
  return {
    driver: db.driver,
    schema: db.schema,
    relaxed: timed(db.relaxed, observe),
    query: base.query,
    exec: base.exec,
    transaction: (fn) => db.transaction((tx) => fn(timed(tx, observe))),
    listen: (channel, onPayload) => db.listen(channel, onPayload),
    poolStats: db.poolStats ? () => db.poolStats!() : undefined,
    close: () => db.close(),
  };
}
