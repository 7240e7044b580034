/**
 * What every section of diagnose.ts gets: the run's settings, and a Taskflow server with a
 * worker registered for the sections that send the engine's statements themselves.
 */
import pg from 'pg';
import { TaskflowSystem } from '../systems/taskflow.ts';

export interface DiagnoseContext {
  /** Tasks per workload (`--n`, default 20,000). */
  n: number;
  databaseUrl: string;
  redisUrl: string;
  /** The server's Node flags in place of the service's own (`--server-node-flags`); undefined: the service's. */
  serviceNodeFlags: string[] | undefined;
  /** Unique to the run: the suffix of every schema it makes. */
  runId: string;
}

/** A section: measures, prints its tables on stdout, returns what goes into the results file. */
export type Section = (ctx: DiagnoseContext) => Promise<unknown>;

/** Opens a connection to the server's schema (`relaxed`: asynchronous commit, as the engine's claims run). */
export type Connect = (relaxed?: boolean) => Promise<pg.Client>;

/**
 * A Taskflow server on a schema of its own, a worker registered on queues work, hot and cold
 * (kept alive by heartbeats), and connections to the schema; all stopped and dropped after `f`.
 */
export async function withServer<R>(ctx: DiagnoseContext, schema: string, f: (sys: TaskflowSystem, workerId: string, connect: Connect) => Promise<R>): Promise<R> {
  const sys = new TaskflowSystem({ driver: 'postgres', databaseUrl: ctx.databaseUrl, schema, serviceNodeFlags: ctx.serviceNodeFlags });
  const clients: pg.Client[] = [];
  let heartbeat: NodeJS.Timeout | undefined;
  try {
    await sys.setup();
    const reg = await sys.client.registerWorker({ name: 'diagnose', queues: ['work', 'hot', 'cold'], concurrency: 50 });
    // The statements claim as this worker; without heartbeats the server marks it lost after
    // its TTL (15 s, less than a million-row fill can take) and every claim returns nothing.
    // `running: []` renews no lease, so the heartbeat touches only the worker's row.
    heartbeat = setInterval(() => {
      sys.client.heartbeat(reg.id, { running: [] }).catch((err) => console.error('heartbeat failed', err));
    }, 3_000);
    const connect: Connect = async (relaxed = false) => {
      const c = new pg.Client({ connectionString: ctx.databaseUrl, options: `-c search_path="${schema}"${relaxed ? ' -c synchronous_commit=off' : ''}` });
      await c.connect();
      clients.push(c);
      return c;
    };
    return await f(sys, reg.id, connect);
  } finally {
    clearInterval(heartbeat);
    for (const c of clients) await c.end().catch(() => undefined);
    await sys.teardown().catch((err) => console.error('teardown failed', err));
  }
}
