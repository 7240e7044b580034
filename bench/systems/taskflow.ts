/**
 * Taskflow: a server node in its own process (lib/taskflow-server.ts) on PostgreSQL or on
 * in-process PGlite; the producer is the SDK client in the harness; the worker is the SDK
 * Worker in the worker process. Every call goes over HTTP, as in production.
 */
import { fileURLToPath } from 'node:url';
import { TaskflowClient, Worker } from '@taskflow/sdk';
import { spawnChild, type Child } from '../lib/proc.ts';
import type { BenchPayload, MakeWorker, SystemUnderTest } from '../lib/types.ts';
import { adminQuery } from '../lib/pg.ts';

const SERVER = fileURLToPath(new URL('../lib/taskflow-server.ts', import.meta.url));

/** As in the root package.json's `start` script and the shebang of packages/server/src/cli.ts. */
const SERVICE_NODE_FLAGS = ['--max-semi-space-size=4'];

export interface TaskflowBenchOptions {
  driver: 'postgres' | 'pglite';
  databaseUrl: string;
  /** Schema (PostgreSQL); PGlite runs in memory in the server process. */
  schema: string;
  /** Node flags for the server process (e.g. --cpu-prof). */
  serverExecArgv?: string[];
  /** Server config overrides. */
  serverConfig?: Record<string, unknown>;
  /** The admin key to bootstrap (default: a new random one). */
  apiKey?: string;
}

export class TaskflowSystem implements SystemUnderTest {
  readonly label: string;
  readonly module = 'taskflow';
  readonly apiKey: string;
  server: Child | undefined;
  url = '';
  client!: TaskflowClient;
  private readonly opts: TaskflowBenchOptions;

  constructor(opts: TaskflowBenchOptions) {
    this.opts = opts;
    this.apiKey = opts.apiKey ?? `tf_bench_${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
    this.label = opts.driver === 'postgres' ? 'Taskflow (PostgreSQL)' : 'Taskflow (PGlite)';
  }

  async setup(): Promise<void> {
    const config = {
      schema: this.opts.schema,
      bootstrapApiKey: this.apiKey,
      ...(this.opts.driver === 'postgres' ? { databaseUrl: this.opts.databaseUrl } : { dataDir: 'memory://' }),
      ...this.opts.serverConfig,
    };
    let ready: (url: string) => void;
    const gotUrl = new Promise<string>((r) => (ready = r));
    this.server = spawnChild(SERVER, {
      args: [JSON.stringify(config)],
      // The flags `npm start` and the `taskflow` command run the service with.
      execArgv: [...SERVICE_NODE_FLAGS, ...(this.opts.serverExecArgv ?? [])],
      onStdoutLine: (line) => {
        if (line.includes('"taskflowBench":"ready"')) ready(JSON.parse(line).url);
        else process.stderr.write(`[taskflow server] ${line}\n`);
      },
    });
    this.url = await Promise.race([
      gotUrl,
      this.server.exited.then((code) => { throw new Error(`the Taskflow server exited (code ${code}) before serving`); }),
    ]);
    this.client = new TaskflowClient({ url: this.url, apiKey: this.apiKey });
  }

  workerOptions(queue: string, concurrency: number): Record<string, unknown> {
    return { url: this.url, apiKey: this.apiKey, queue, concurrency };
  }

  /** SQL through the server's own database handle (works for PGlite too). */
  async query<R = any>(sql: string, params: unknown[] = []): Promise<R[]> {
    const { rows } = await this.server!.request<{ rows: R[] }>({ cmd: 'query', sql, params });
    return rows;
  }

  async enqueueOne(queue: string, payload: BenchPayload): Promise<void> {
    await this.client.enqueue({ type: 'noop', queue, payload });
  }

  async enqueueBatch(queue: string, payloads: BenchPayload[]): Promise<void> {
    const out = await this.client.enqueueMany(payloads.map((payload) => ({ type: 'noop', queue, payload })));
    const notCreated = out.items.filter((i) => !i.created).length;
    if (notCreated > 0 || out.items.length !== payloads.length) throw new Error(`enqueueMany: ${notCreated} of ${payloads.length} items not created`);
  }

  async countWaiting(queue: string): Promise<number> {
    const [r] = await this.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE queue = $1 AND state = 'queued'`, [queue]);
    return r!.n;
  }

  async countCompleted(queue: string): Promise<number> {
    const [r] = await this.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE queue = $1 AND state = 'succeeded'`, [queue]);
    return r!.n;
  }

  async purge(queue: string): Promise<void> {
    await this.query(`DELETE FROM tasks WHERE queue = $1`, [queue]);
  }

  async verifyDrained(queue: string, expected: number): Promise<string[]> {
    const problems: string[] = [];
    const rows = await this.query<{ state: string; n: number; min_attempt: number; max_attempt: number }>(
      `SELECT state, count(*)::int AS n, min(attempt) AS min_attempt, max(attempt) AS max_attempt
         FROM tasks WHERE queue = $1 GROUP BY state`, [queue]);
    const byState = Object.fromEntries(rows.map((r) => [r.state, r]));
    const ok = byState.succeeded;
    if (!ok || ok.n !== expected) problems.push(`database: ${ok?.n ?? 0} of ${expected} tasks succeeded`);
    for (const r of rows) if (r.state !== 'succeeded') problems.push(`database: ${r.n} tasks left in state ${r.state}`);
    if (ok && (ok.min_attempt !== 1 || ok.max_attempt !== 1)) {
      problems.push(`database: attempt numbers range ${ok.min_attempt}..${ok.max_attempt} (expected exactly 1: some task was claimed more than once)`);
    }
    const [a] = await this.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE t.queue = $1`, [queue]);
    if (a!.n !== 0) problems.push(`database: ${a!.n} failed/abandoned attempts recorded`);
    return problems;
  }

  serverPid(): number | undefined {
    return this.server?.pid;
  }

  async teardown(): Promise<void> {
    await this.server?.stop();
    if (this.opts.driver === 'postgres') {
      await adminQuery(this.opts.databaseUrl, `DROP SCHEMA IF EXISTS "${this.opts.schema}" CASCADE`);
    }
  }
}

/**
 * Worker side: the SDK Worker, one process, `concurrency` tasks at once, with a prefetch
 * buffer so that 500 tasks may be held in all: the same as graphile-worker's local queue of
 * 500 in systems/graphile.ts (its performance guide's setting; ours is `prefetch`).
 */
export const PREFETCH_TOTAL = 500;

export const makeWorker: MakeWorker = async (options, onTask) => {
  const worker = new Worker({
    url: options.url,
    apiKey: options.apiKey,
    queues: [options.queue],
    concurrency: options.concurrency,
    prefetch: Math.max(0, PREFETCH_TOTAL - options.concurrency),
    handleSignals: false,
    waitMs: 30_000,
    handlers: {
      noop: async (payload: BenchPayload) => {
        onTask(payload);
        return null;
      },
    },
  });
  return {
    start: () => worker.start(),
    stop: () => worker.stop(),
  };
};
