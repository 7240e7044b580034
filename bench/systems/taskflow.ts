/**
 * Taskflow: a server node in its own process (lib/taskflow-server.ts) on PostgreSQL or on
 * in-process PGlite (a fresh data directory on disk, as `npm start` runs; or memory://); the producer is the SDK client in the harness; the worker is the SDK
 * Worker in the worker process. Every call goes over HTTP, as in production. With `checkout`,
 * the server and the worker are those of another checkout of the repository (run.ts
 * --baseline): each side runs its own code, the producer stays this tree's client.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TaskflowClient, Worker } from '@taskflow/sdk';
import { spawnChild, type Child } from '../lib/proc.ts';
import type { BenchPayload, MakeWorker, SystemUnderTest, Tuning } from '../lib/types.ts';
import { adminQuery, analyzeAndCheckpoint } from '../lib/pg.ts';

const SERVER = fileURLToPath(new URL('../lib/taskflow-server.ts', import.meta.url));

/** As in the root package.json's `start` script and packages/server/bin/taskflow.js. */
export const SERVICE_NODE_FLAGS = ['--max-semi-space-size=8', '--heap-growing-percent=50', '--liftoff-only'];

/**
 * The Node flags of the `start` script of the checkout at `root` (undefined: no such script),
 * but its `--conditions`: how it resolves its packages, which lib/proc.ts gives every child.
 */
function startFlagsOf(root: string): string[] | undefined {
  const start = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts?.start;
  const m = typeof start === 'string' ? /^node((?:\s+--\S+)*)\s/.exec(start) : null;
  return m ? m[1]!.split(/\s+/).filter((flag) => flag && !flag.startsWith('--conditions')) : undefined;
}

/**
 * The root of another checkout whose server and worker can be benchmarked (its absolute
 * path): a checkout of this repository with `npm install` done at its root and in its bench/.
 * Throws, naming what is missing, otherwise.
 */
export function checkoutRoot(dir: string): string {
  const root = resolve(dir);
  for (const f of ['bench/lib/taskflow-server.ts', 'bench/lib/worker-child.ts', 'bench/systems/taskflow.ts']) {
    if (!existsSync(join(root, f))) throw new Error(`${root}: no ${f} (expected a checkout of this repository)`);
  }
  for (const m of ['node_modules/@taskflow/server', 'node_modules/@taskflow/sdk', 'bench/node_modules']) {
    if (!existsSync(join(root, m))) throw new Error(`${root}: no ${m} (run npm install at its root and in its bench/)`);
  }
  return root;
}

export interface TaskflowBenchOptions {
  driver: 'postgres' | 'pglite';
  databaseUrl: string;
  /** Schema (PostgreSQL). */
  schema: string;
  /**
   * PGlite: `memory://` instead of the default, a data directory on disk (made fresh in the
   * system's temporary directory and removed after), as `npm start` runs.
   */
  pgliteInMemory?: boolean;
  /** Node flags for the server process (e.g. --cpu-prof), after the service's own. */
  serverExecArgv?: string[];
  /** The service's own Node flags (default: those of `npm start`, SERVICE_NODE_FLAGS). */
  serviceNodeFlags?: string[];
  /** Lines the server prints on stdout (e.g. --trace-gc); default: copied to stderr. */
  onServerLine?: (line: string) => void;
  /** The worker counts its claim and result requests (see `stats` in lib/worker-child.ts). */
  countRequests?: boolean;
  /** Server config overrides. */
  serverConfig?: Record<string, unknown>;
  /** The admin key to bootstrap (default: a new random one). */
  apiKey?: string;
  /**
   * The root of another checkout of the repository (see checkoutRoot): its
   * bench/lib/taskflow-server.ts and bench/lib/worker-child.ts run instead of this tree's, so
   * the server and the worker are its code, with the Node flags of its `npm start`.
   */
  checkout?: string;
  /** Row label (default "Taskflow (PostgreSQL)" or "Taskflow (PGlite)"). */
  label?: string;
  /** The worker process registers an OpenTelemetry SDK with no exporter (observability.ts). */
  workerTracing?: boolean;
  /** The worker's settings (TUNABLES; `{}`: the SDK Worker's defaults). */
  tuning?: Tuning;
}

/**
 * Tasks of queue $1 with priority ≥ $2 not finished yet, each state on its own partial index
 * (tasks_ready, tasks_running, tasks_unfinished): cheap whatever else the table holds,
 * unlike a count of the succeeded ones (no index; a scan of the table). Used by scaling.ts
 * --poll unfinished.
 */
export const UNFINISHED_COUNT_SQL = `
SELECT ((SELECT count(*) FROM tasks WHERE queue = $1 AND priority >= $2 AND state = 'queued')
      + (SELECT count(*) FROM tasks WHERE queue = $1 AND priority >= $2 AND state = 'running')
      + (SELECT count(*) FROM tasks WHERE queue = $1 AND priority >= $2 AND state IN ('blocked', 'retrying', 'scheduled')))::int AS n`;

export class TaskflowSystem implements SystemUnderTest {
  label: string;
  readonly module = 'taskflow';
  /** PGlite runs inside the server process: its CPU is the server's. */
  get storageProcess(): string | undefined {
    return this.opts.driver === 'postgres' ? 'postgres' : undefined;
  }
  readonly backendsOf = 'server';
  readonly apiKey: string;
  readonly workerChild: string | undefined;
  server: Child | undefined;
  url = '';
  client!: TaskflowClient;
  private readonly opts: TaskflowBenchOptions;
  /** PGlite on disk: its data directory. */
  private dataDir: string | undefined;
  private readonly serverScript: string;
  private readonly serviceNodeFlags: string[];

  constructor(opts: TaskflowBenchOptions) {
    this.opts = opts;
    this.apiKey = opts.apiKey ?? `tf_bench_${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
    this.label = opts.label ?? (opts.driver === 'postgres' ? 'Taskflow (PostgreSQL)' : 'Taskflow (PGlite)');
    const root = opts.checkout;
    this.serverScript = root ? join(root, 'bench/lib/taskflow-server.ts') : SERVER;
    this.workerChild = root ? join(root, 'bench/lib/worker-child.ts') : undefined;
    this.serviceNodeFlags = opts.serviceNodeFlags ?? (root ? startFlagsOf(root) : undefined) ?? SERVICE_NODE_FLAGS;
  }

  async setup(): Promise<void> {
    if (this.opts.driver === 'pglite' && !this.opts.pgliteInMemory) this.dataDir = mkdtempSync(join(tmpdir(), 'taskflow-bench-pglite-'));
    const config = {
      schema: this.opts.schema,
      bootstrapApiKey: this.apiKey,
      ...(this.opts.driver === 'postgres' ? { databaseUrl: this.opts.databaseUrl } : { dataDir: this.dataDir ?? 'memory://' }),
      ...this.opts.serverConfig,
    };
    let ready: (url: string) => void;
    const gotUrl = new Promise<string>((r) => (ready = r));
    this.server = spawnChild(this.serverScript, {
      args: [JSON.stringify(config)],
      // The flags `npm start` and the `taskflow` command run the service with.
      execArgv: [...this.serviceNodeFlags, ...(this.opts.serverExecArgv ?? [])],
      onStdoutLine: (line) => {
        if (line.includes('"taskflowBench":"ready"')) ready(JSON.parse(line).url);
        else if (this.opts.onServerLine) this.opts.onServerLine(line);
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
    return {
      url: this.url, apiKey: this.apiKey, queue, concurrency, tuning: this.opts.tuning ?? {}, ...(this.opts.countRequests ? { countRequests: true } : {}),
      ...(this.opts.workerTracing ? { tracing: true } : {}),
    };
  }

  async prepare(): Promise<void> {
    if (this.opts.driver === 'postgres') return analyzeAndCheckpoint(this.opts.databaseUrl, this.opts.schema);
    await this.query('ANALYZE');
    await this.query('CHECKPOINT');
  }

  /** SQL through the server's own database handle (works for PGlite too). */
  async query<R = any>(sql: string, params: unknown[] = []): Promise<R[]> {
    const { rows } = await this.server!.request<{ rows: R[] }>({ cmd: 'query', sql, params });
    return rows;
  }

  async enqueueOne(queue: string, payload: BenchPayload): Promise<void> {
    await this.client.enqueue({ type: 'noop', queue, payload });
  }

  async enqueueOneCoalesced(queue: string, payload: BenchPayload): Promise<void> {
    const r = await this.client.submit({ type: 'noop', queue, payload });
    if (!r.created) throw new Error(`submit: task ${r.task.id} not created`);
  }

  async enqueueBatch(queue: string, payloads: BenchPayload[]): Promise<void> {
    // The ids only (`Prefer: return=minimal`): what a bulk producer asks for, as pg-boss's
    // `insert` answers nothing and BullMQ's `addBulk` builds its Job objects in the client.
    const out = await this.client.enqueueManyIds(payloads.map((payload) => ({ type: 'noop', queue, payload })));
    if (out.existing.length > 0 || out.ids.length !== payloads.length) throw new Error(`enqueueManyIds: ${out.existing.length} of ${payloads.length} items not created, ${out.ids.length} ids`);
  }

  async countWaiting(queue: string): Promise<number> {
    const [r] = await this.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE queue = $1 AND state = 'queued'`, [queue]);
    return r!.n;
  }

  async countCompleted(queue: string, _expected?: number): Promise<number> {
    const [r] = await this.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE queue = $1 AND state = 'succeeded'`, [queue]);
    return r!.n;
  }

  async purge(queue: string): Promise<void> {
    await this.query(`DELETE FROM tasks WHERE queue = $1`, [queue]);
    // The queue's idempotency keys go with its tasks, as in the engine's own deletes (a
    // --baseline checkout from before migration 0012 keeps its keys in the tasks' rows).
    const [keys] = await this.query<{ present: boolean }>(`SELECT to_regclass('task_idempotency_keys') IS NOT NULL AS present`);
    if (keys!.present) await this.query(`DELETE FROM task_idempotency_keys WHERE queue = $1`, [queue]);
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
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
    if (this.opts.driver === 'postgres') {
      await adminQuery(this.opts.databaseUrl, `DROP SCHEMA IF EXISTS "${this.opts.schema}" CASCADE`);
    }
  }
}

/**
 * The SDK Worker's performance options (packages/sdk/src/options.ts), each left at its default
 * unless the tuning sets it: `prefetch` (tasks claimed ahead of free slots), `pipeline` (claim
 * requests in flight), `maxBatch` (most tasks per claim).
 */
export const TUNABLES = ['prefetch', 'pipeline', 'maxBatch'] as const;

/** Worker side: the SDK Worker, one process, `concurrency` tasks at once, the tuning's options. */
export const makeWorker: MakeWorker = async (options, onTask) => {
  // observability.ts: the worker's process spans recorded by an SDK with no exporter.
  if (options.tracing) (await import('../lib/tracing-sdk.ts')).registerTracing();
  const tuning: Tuning = options.tuning ?? {};
  const set = Object.fromEntries(TUNABLES.filter((k) => tuning[k] !== undefined).map((k) => [k, tuning[k]]));
  const worker = new Worker({
    url: options.url,
    apiKey: options.apiKey,
    queues: [options.queue],
    concurrency: options.concurrency,
    ...set,
    handleSignals: false,
    handlers: {
      noop: async (payload: BenchPayload) => {
        onTask(payload);
        return null;
      },
    },
  });
  const stats = options.countRequests ? countRequests(worker) : undefined;
  return {
    start: () => worker.start(),
    stop: () => worker.stop(),
    stats: () => stats ?? {},
  };
};

/** What a worker's requests carried: claims (results sent on them, tasks received) and separate result reports. */
export interface RequestStats {
  /** Claim requests sent (counted when sent: one that carries results may then wait, long-polling, for tasks). */
  claims: number;
  claimsAnswered: number;
  /** Claims that carried results. */
  claimsWithResults: number;
  resultsOnClaims: number;
  tasksClaimed: number;
  /** Claims answered with no task (long polls that timed out or were woken for nothing; not those still waiting). */
  emptyClaims: number;
  reports: number;
  resultsOnReports: number;
  /** Tasks per claim answer, by bucket (≤ 10, ≤ 50, ≤ 125, ≤ 250, more). */
  tasksPerClaim: Record<string, number>;
}

/** Wraps the worker's client to count what its claims and result reports carry. */
function countRequests(worker: Worker): RequestStats {
  const s: RequestStats = {
    claims: 0, claimsAnswered: 0, claimsWithResults: 0, resultsOnClaims: 0, tasksClaimed: 0, emptyClaims: 0, reports: 0, resultsOnReports: 0, tasksPerClaim: {},
  };
  const client = worker.client;
  const claim = client.claim.bind(client);
  const call = client.call.bind(client);
  // Results travel in `results` and, compact, in `succeeded` ("41:1,42:1").
  const count = (body: { results?: unknown[]; succeeded?: string } | undefined) =>
    (body?.results?.length ?? 0) + (body?.succeeded ? body.succeeded.split(',').length : 0);
  client.claim = async (id, input, opts) => {
    const carried = count(input);
    s.claims++;
    if (carried > 0) s.claimsWithResults++;
    s.resultsOnClaims += carried;
    const out = await claim(id, input, opts);
    s.claimsAnswered++;
    s.tasksClaimed += out.tasks.length;
    if (out.tasks.length === 0) s.emptyClaims++;
    const n = out.tasks.length;
    const bucket = n === 0 ? '0' : n <= 10 ? '≤10' : n <= 50 ? '≤50' : n <= 125 ? '≤125' : n <= 250 ? '≤250' : '>250';
    s.tasksPerClaim[bucket] = (s.tasksPerClaim[bucket] ?? 0) + 1;
    return out;
  };
  // The worker reports through `call('reportResults', …)` (its compact form).
  client.call = ((name: string, input: { body?: { results?: unknown[]; succeeded?: string } }, opts?: unknown) => {
    if (name === 'reportResults') {
      s.reports++;
      s.resultsOnReports += count(input.body);
    }
    return (call as (n: string, i: unknown, o?: unknown) => Promise<unknown>)(name, input, opts);
  }) as typeof client.call;
  return s;
}
