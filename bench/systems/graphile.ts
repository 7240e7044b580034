/**
 * graphile-worker on PostgreSQL, in a schema of its own. A benchmark "queue" is a graphile
 * task identifier (graphile's own `queueName` serialises jobs, which is not what a queue
 * means elsewhere). The producer is WorkerUtils in the harness; the worker is `run()` in the
 * worker process, `concurrentJobs` = the bench's concurrency, the rest graphile's defaults
 * unless the tuning sets them (TUNABLES: the knobs of graphile's performance guide).
 * graphile deletes a job when it completes, so "completed" is "no job left".
 */
import { Logger, makeWorkerUtils, run, type WorkerUtils } from 'graphile-worker';
import type { BenchPayload, MakeWorker, SystemUnderTest, Tuning } from '../lib/types.ts';
import { adminQuery, analyzeAndCheckpoint } from '../lib/pg.ts';

export interface GraphileBenchOptions {
  databaseUrl: string;
  schema: string;
  tuning?: Tuning;
}

/**
 * graphile-worker's performance options (https://worker.graphile.org/docs/performance), each
 * graphile's default unless set: `localQueueSize` (`localQueue.size`: jobs fetched and locked
 * ahead, default off), `completeJobBatchDelay` (ms to gather completions into one statement;
 * -1, the default, is off; the same for failures), `maxPoolSize` (default 10), `useNodeTime`
 * (1: Node's clock instead of the database's).
 */
export const TUNABLES = ['localQueueSize', 'completeJobBatchDelay', 'maxPoolSize', 'useNodeTime'] as const;

/** Warnings and errors only. */
const quietLogger = new Logger((scope) => (level, message) => {
  if (level === 'error' || level === 'warning') console.error(`[graphile ${scope.label ?? ''}] ${level}: ${message}`);
});

export class GraphileSystem implements SystemUnderTest {
  label = 'graphile-worker';
  readonly module = 'graphile';
  readonly storageProcess = 'postgres';
  readonly backendsOf = 'worker';
  private readonly opts: GraphileBenchOptions;
  private utils: WorkerUtils | undefined;

  constructor(opts: GraphileBenchOptions) {
    this.opts = opts;
  }

  async setup(): Promise<void> {
    this.utils = await makeWorkerUtils({
      connectionString: this.opts.databaseUrl, schema: this.opts.schema, maxPoolSize: 10, logger: quietLogger,
    });
    await this.utils.migrate();
  }

  workerOptions(queue: string, concurrency: number): Record<string, unknown> {
    return { ...this.opts, tuning: this.opts.tuning ?? {}, queue, concurrency };
  }

  prepare(): Promise<void> {
    return analyzeAndCheckpoint(this.opts.databaseUrl, this.opts.schema);
  }

  async enqueueOne(queue: string, payload: BenchPayload): Promise<void> {
    await this.utils!.addJob(queue, payload);
  }

  async enqueueBatch(queue: string, payloads: BenchPayload[]): Promise<void> {
    await this.utils!.addJobs(payloads.map((payload) => ({ identifier: queue, payload })));
  }

  private async count(queue: string): Promise<number> {
    const s = `"${this.opts.schema}"`;
    const [r] = await adminQuery<{ n: number }>(this.opts.databaseUrl,
      `SELECT count(*)::int AS n FROM ${s}._private_jobs j JOIN ${s}._private_tasks t ON t.id = j.task_id WHERE t.identifier = $1`, [queue]);
    return r!.n;
  }

  countWaiting(queue: string): Promise<number> {
    return this.count(queue);
  }

  async countCompleted(queue: string, expected: number): Promise<number> {
    return expected - (await this.count(queue));
  }

  async purge(queue: string): Promise<void> {
    const s = `"${this.opts.schema}"`;
    await adminQuery(this.opts.databaseUrl,
      `DELETE FROM ${s}._private_jobs j USING ${s}._private_tasks t WHERE t.id = j.task_id AND t.identifier = $1`, [queue]);
  }

  async verifyDrained(queue: string): Promise<string[]> {
    const left = await this.count(queue);
    return left === 0 ? [] : [`database: ${left} jobs left (failed or not run)`];
  }

  async teardown(): Promise<void> {
    await this.utils?.release();
    await adminQuery(this.opts.databaseUrl, `DROP SCHEMA IF EXISTS "${this.opts.schema}" CASCADE`);
  }
}

export const makeWorker: MakeWorker = async (options, onTask) => {
  const t: Tuning = options.tuning ?? {};
  let runner: Awaited<ReturnType<typeof run>> | undefined;
  return {
    async start() {
      runner = await run({
        noHandleSignals: true,
        taskList: {
          [options.queue]: async (payload) => {
            onTask(payload as BenchPayload);
          },
        },
        preset: {
          worker: {
            connectionString: options.databaseUrl,
            schema: options.schema,
            concurrentJobs: options.concurrency,
            logger: quietLogger,
            ...(t.maxPoolSize !== undefined ? { maxPoolSize: t.maxPoolSize } : {}),
            ...(t.useNodeTime ? { useNodeTime: true } : {}),
            ...(t.localQueueSize !== undefined ? { localQueue: { size: t.localQueueSize } } : {}),
            ...(t.completeJobBatchDelay !== undefined ? { completeJobBatchDelay: t.completeJobBatchDelay, failJobBatchDelay: t.completeJobBatchDelay } : {}),
          },
        },
      });
    },
    async stop() {
      await runner?.stop();
    },
  };
};
