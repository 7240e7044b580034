/**
 * BullMQ on Redis: the producer is a Queue in the harness, the worker a BullMQ Worker in the
 * worker process. Every key lives under a prefix unique to the run, deleted at the end.
 * Defaults are kept (completed jobs are retained, as Taskflow retains finished tasks).
 *
 * With `aofPort`, BullMQ gets a Redis of its own, started here and stopped in teardown:
 * `--appendonly yes --appendfsync always` (every write fsynced to an append-only file before
 * Redis answers, on the same disk as PostgreSQL's data), no RDB snapshots. That is BullMQ with
 * the durability of a PostgreSQL commit; the shared Redis of the harness has no persistence.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { sleep, spawnProcess } from '../lib/proc.ts';
import type { BenchPayload, MakeWorker, SystemUnderTest, Tuning } from '../lib/types.ts';

export interface BullmqBenchOptions {
  redisUrl: string;
  prefix: string;
  /** Start a Redis of its own on this port, with AOF and `appendfsync always` (see above). */
  aofPort?: number;
  tuning?: Tuning;
}

/** BullMQ's performance option: the Worker's `concurrency` (default: the bench's). */
export const TUNABLES = ['concurrency'] as const;

function connection(redisUrl: string, enableAutoPipelining = false) {
  const u = new URL(redisUrl);
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null, enableAutoPipelining };
}

export class BullmqSystem implements SystemUnderTest {
  label: string;
  readonly module = 'bullmq';
  readonly storageProcess = 'redis-server';
  private readonly opts: BullmqBenchOptions;
  private readonly queues = new Map<string, Queue>();
  /** Producers on an ioredis connection with auto-pipelining (enqueueOneCoalesced). */
  private readonly pipelined = new Map<string, Queue>();
  private aofRedis: { dir: string; stop(): Promise<void> } | undefined;

  constructor(opts: BullmqBenchOptions) {
    this.opts = opts.aofPort ? { ...opts, redisUrl: `redis://127.0.0.1:${opts.aofPort}` } : opts;
    this.label = opts.aofPort ? 'BullMQ (Redis AOF always)' : 'BullMQ (Redis)';
  }

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = new Queue(name, { connection: connection(this.opts.redisUrl), prefix: this.opts.prefix })));
    return q;
  }

  private pipelinedQueue(name: string): Queue {
    let q = this.pipelined.get(name);
    if (!q) this.pipelined.set(name, (q = new Queue(name, { connection: connection(this.opts.redisUrl, true), prefix: this.opts.prefix })));
    return q;
  }

  async setup(): Promise<void> {
    if (!this.opts.aofPort) return;
    const dir = mkdtempSync(join(tmpdir(), 'tfbench-redis-aof-'));
    const server = spawnProcess('redis-server', [
      '--port', String(this.opts.aofPort), '--bind', '127.0.0.1', '--dir', dir,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '',
    ], (line) => {
      if (/warning|error/i.test(line)) process.stderr.write(`[redis aof] ${line}\n`);
    });
    this.aofRedis = { dir, stop: server.stop };
    const probe = new Redis(this.opts.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined); // refused while it starts: retried below
    try {
      for (let i = 0; ; i++) {
        try {
          await probe.connect();
          const [, fsync] = (await probe.config('GET', 'appendfsync')) as string[];
          if (fsync !== 'always') throw new Error(`appendfsync is ${fsync}`);
          break;
        } catch (err) {
          if (i >= 100) throw new Error(`the AOF Redis on port ${this.opts.aofPort} did not start: ${err}`);
          probe.disconnect();
          await sleep(50);
        }
      }
    } finally {
      probe.disconnect();
    }
  }

  workerOptions(queue: string, concurrency: number): Record<string, unknown> {
    return { ...this.opts, queue, concurrency: this.opts.tuning?.concurrency ?? concurrency };
  }

  async enqueueOne(queue: string, payload: BenchPayload): Promise<void> {
    await this.queue(queue).add('noop', payload);
  }

  async enqueueOneCoalesced(queue: string, payload: BenchPayload): Promise<void> {
    await this.pipelinedQueue(queue).add('noop', payload);
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
    for (const q of this.pipelined.values()) await q.close();
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
      if (this.aofRedis) {
        await this.aofRedis.stop();
        rmSync(this.aofRedis.dir, { recursive: true, force: true });
        this.aofRedis = undefined;
      }
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
