/**
 * pg-boss on PostgreSQL, in a schema of its own. The producer is a PgBoss instance in the
 * harness; the worker another in the worker process: `work()` with a batch handler. Its
 * defaults: `localConcurrency` = the bench's concurrency, one job per fetch. The tuning
 * (TUNABLES) sets `localConcurrency` fetch loops of `batchSize` jobs each, `burstWhenBatchFull`
 * (fetch again at once while batches come back full), `notify` (LISTEN/NOTIFY: instance option
 * `useListenNotify`, queue option `notify`, so an idle worker wakes at once) and
 * `pollingIntervalSeconds`.
 */
import { PgBoss } from 'pg-boss';
import type { BenchPayload, MakeWorker, SystemUnderTest, Tuning } from '../lib/types.ts';
import { adminQuery, analyzeAndCheckpoint } from '../lib/pg.ts';

export interface PgbossBenchOptions {
  databaseUrl: string;
  schema: string;
  tuning?: Tuning;
}

/** pg-boss's performance options, each its default unless the tuning sets it (see above; `notify` and `burstWhenBatchFull`: 1 = on). */
export const TUNABLES = ['localConcurrency', 'batchSize', 'burstWhenBatchFull', 'notify', 'pollingIntervalSeconds'] as const;

function boss(opts: PgbossBenchOptions, role: 'producer' | 'worker'): PgBoss {
  const b = new PgBoss({
    connectionString: opts.databaseUrl,
    schema: opts.schema,
    max: 10,
    useListenNotify: Boolean(opts.tuning?.notify),
    schedule: false,
    ...(role === 'worker' ? { migrate: false, supervise: false } : {}),
  });
  b.on('error', (err) => console.error(`[pg-boss ${role}]`, err));
  return b;
}

export class PgbossSystem implements SystemUnderTest {
  label = 'pg-boss';
  readonly module = 'pgboss';
  readonly storageProcess = 'postgres';
  readonly backendsOf = 'worker';
  private readonly opts: PgbossBenchOptions;
  private boss: PgBoss | undefined;
  private readonly created = new Set<string>();

  constructor(opts: PgbossBenchOptions) {
    this.opts = opts;
  }

  async setup(): Promise<void> {
    this.boss = boss(this.opts, 'producer');
    await this.boss.start();
    for (const q of ['single', 'work']) await this.ensureQueue(q);
  }

  private async ensureQueue(name: string): Promise<void> {
    if (this.created.has(name)) return;
    await this.boss!.createQueue(name, { notify: Boolean(this.opts.tuning?.notify) });
    this.created.add(name);
  }

  workerOptions(queue: string, concurrency: number): Record<string, unknown> {
    return { ...this.opts, tuning: this.opts.tuning ?? {}, queue, concurrency };
  }

  prepare(): Promise<void> {
    return analyzeAndCheckpoint(this.opts.databaseUrl, this.opts.schema);
  }

  async enqueueOne(queue: string, payload: BenchPayload): Promise<void> {
    await this.boss!.send(queue, payload);
  }

  async enqueueBatch(queue: string, payloads: BenchPayload[]): Promise<void> {
    await this.boss!.insert(queue, payloads.map((data) => ({ data })));
  }

  private async countState(queue: string, states: string[]): Promise<number> {
    const [r] = await adminQuery<{ n: number }>(this.opts.databaseUrl,
      `SELECT count(*)::int AS n FROM "${this.opts.schema}".job WHERE name = $1 AND state::text = ANY($2)`, [queue, states]);
    return r!.n;
  }

  countWaiting(queue: string): Promise<number> {
    return this.countState(queue, ['created']);
  }

  countCompleted(queue: string): Promise<number> {
    return this.countState(queue, ['completed']);
  }

  async purge(queue: string): Promise<void> {
    await this.boss!.deleteAllJobs(queue);
  }

  async verifyDrained(queue: string, expected: number): Promise<string[]> {
    const rows = await adminQuery<{ state: string; n: number; retries: number }>(this.opts.databaseUrl,
      `SELECT state::text, count(*)::int AS n, max(retry_count)::int AS retries FROM "${this.opts.schema}".job WHERE name = $1 GROUP BY state`, [queue]);
    const problems: string[] = [];
    const done = rows.find((r) => r.state === 'completed');
    if (done?.n !== expected) problems.push(`database: ${done?.n ?? 0} of ${expected} jobs completed`);
    if (done && done.retries > 0) problems.push(`database: some job was retried (retry_count up to ${done.retries})`);
    for (const r of rows) if (r.state !== 'completed') problems.push(`database: ${r.n} jobs ${r.state}`);
    return problems;
  }

  async teardown(): Promise<void> {
    await this.boss?.stop({ graceful: false, close: true }).catch(() => undefined);
    await adminQuery(this.opts.databaseUrl, `DROP SCHEMA IF EXISTS "${this.opts.schema}" CASCADE`);
  }
}

export const makeWorker: MakeWorker = async (options, onTask) => {
  const b = boss(options, 'worker');
  await b.start();
  const t: Tuning = options.tuning ?? {};
  return {
    async start() {
      await b.work<BenchPayload>(options.queue, {
        localConcurrency: t.localConcurrency ?? options.concurrency,
        ...(t.batchSize !== undefined ? { batchSize: t.batchSize } : {}),
        ...(t.pollingIntervalSeconds !== undefined ? { pollingIntervalSeconds: t.pollingIntervalSeconds } : {}),
        ...(t.burstWhenBatchFull ? { burstWhenBatchFull: true } : {}),
      }, async (jobs) => {
        for (const job of jobs) onTask(job.data);
      });
    },
    stop: () => b.stop({ graceful: true, close: true }),
  };
};
