/**
 * BullMQ on Redis: the producer is a Queue in the harness, the worker a BullMQ Worker in the
 * worker process. Every key lives under a prefix unique to the run, deleted at the end.
 * Defaults are kept (completed jobs are retained, as Taskflow retains finished tasks).
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { BenchPayload, MakeWorker, SystemUnderTest } from '../lib/types.ts';

export interface BullmqBenchOptions {
  redisUrl: string;
  prefix: string;
}

function connection(redisUrl: string) {
  const u = new URL(redisUrl);
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null };
}

export class BullmqSystem implements SystemUnderTest {
  readonly label = 'BullMQ (Redis)';
  readonly module = 'bullmq';
  private readonly opts: BullmqBenchOptions;
  private readonly queues = new Map<string, Queue>();

  constructor(opts: BullmqBenchOptions) {
    this.opts = opts;
  }

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = new Queue(name, { connection: connection(this.opts.redisUrl), prefix: this.opts.prefix })));
    return q;
  }

  async setup(): Promise<void> {}

  workerOptions(queue: string, concurrency: number): Record<string, unknown> {
    return { ...this.opts, queue, concurrency };
  }

  async enqueueOne(queue: string, payload: BenchPayload): Promise<void> {
    await this.queue(queue).add('noop', payload);
  }

  async enqueueBatch(queue: string, payloads: BenchPayload[]): Promise<void> {
    await this.queue(queue).addBulk(payloads.map((data) => ({ name: 'noop', data })));
  }

  async countWaiting(queue: string): Promise<number> {
    return this.queue(queue).getWaitingCount();
  }

  async countCompleted(queue: string): Promise<number> {
    return this.queue(queue).getCompletedCount();
  }

  async purge(queue: string): Promise<void> {
    await this.queue(queue).obliterate({ force: true });
  }

  async verifyDrained(queue: string, expected: number): Promise<string[]> {
    const c = await this.queue(queue).getJobCounts('completed', 'failed', 'wait', 'active', 'delayed', 'prioritized');
    const problems: string[] = [];
    if (c.completed !== expected) problems.push(`redis: ${c.completed} of ${expected} jobs completed`);
    for (const [state, n] of Object.entries(c)) if (state !== 'completed' && n) problems.push(`redis: ${n} jobs ${state}`);
    return problems;
  }

  async teardown(): Promise<void> {
    for (const q of this.queues.values()) {
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    }
    // Whatever is left under the prefix (meta keys, events streams).
    const redis = new Redis(this.opts.redisUrl);
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${this.opts.prefix}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  }
}

export const makeWorker: MakeWorker = async (options, onTask) => {
  const worker = new Worker(options.queue, async (job) => {
    onTask(job.data);
    return null;
  }, { connection: connection(options.redisUrl), prefix: options.prefix, concurrency: options.concurrency, autorun: false });
  worker.on('error', (err) => console.error('[bullmq worker]', err));
  await worker.waitUntilReady();
  return {
    async start() {
      void worker.run();
    },
    stop: () => worker.close(),
  };
};
