/**
 * Wake-ups across server nodes. Two `taskflow start` processes share one PostgreSQL schema;
 * a worker long-polls node B; a task enqueued on node A must start on that worker within
 * 100 ms. Node B's poll interval is set far longer than that, so only a pushed wake-up
 * (LISTEN/NOTIFY, or Redis pub/sub) can explain a fast start. With the private Redis killed
 * mid-test, tasks keep flowing at the poll interval; once it is back, wake-ups are pushed
 * again.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { TaskflowClient, Worker, type ClaimedTask } from '@taskflow/sdk';
import { TEST_DATABASE_URL, dropSchema, freshSchema } from '@taskflow/core/test-support';
import { freePort, killAll, startRedis, startServerProcess } from './support/processes.ts';

const KEY = `tf_wake_${randomBytes(12).toString('hex')}`;

/** Two nodes on one schema; B polls only every `pollMs`. */
async function twoNodes(schema: string, pollMs: number, extra: Record<string, string> = {}) {
  const common = { DATABASE_URL: TEST_DATABASE_URL, TASKFLOW_SCHEMA: schema, TASKFLOW_BOOTSTRAP_API_KEY: KEY, ...extra };
  // Started together: both run the migrations at once, under the advisory lock.
  const [a, b] = await Promise.all([
    startServerProcess({ ...common, TASKFLOW_POLL_INTERVAL_MS: '1000' }),
    startServerProcess({ ...common, TASKFLOW_POLL_INTERVAL_MS: String(pollMs) }),
  ]);
  return { a, b, producer: new TaskflowClient({ url: a.url, apiKey: KEY }) };
}

/** A worker on `url` that resolves `started(id)` promises as tasks start. */
async function watchingWorker(url: string, queue: string) {
  const waiting = new Map<string, (at: number) => void>();
  const early = new Map<string, number>();
  const worker = new Worker({
    url, apiKey: KEY, queues: [queue], concurrency: 4, waitMs: 30_000, handleSignals: false,
    logger: { info() {}, warn() {}, error() {} },
    handlers: { ping: async () => 'pong' },
  });
  worker.on('taskStart', (task: ClaimedTask) => {
    const at = performance.now();
    const resolve = waiting.get(task.id);
    if (resolve) resolve(at);
    else early.set(task.id, at);
  });
  await worker.start();
  return {
    worker,
    started(id: string): Promise<number> {
      const at = early.get(id);
      if (at !== undefined) return Promise.resolve(at);
      return new Promise((resolve) => waiting.set(id, resolve));
    },
  };
}

/** Enqueues on the producer node and returns how long until the task started on the worker. */
async function wakeLatency(producer: TaskflowClient, watcher: Awaited<ReturnType<typeof watchingWorker>>, queue: string): Promise<number> {
  const t0 = performance.now();
  const task = await producer.enqueue({ type: 'ping', queue });
  return (await watcher.started(task.id)) - t0;
}

/** Waits until node B's worker is parked in a long poll (it registered and claimed nothing). */
async function idle(ms = 300): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

describe('wake-ups across server processes', () => {
  const schemas: string[] = [];
  afterAll(async () => {
    await killAll();
    await Promise.all(schemas.map(dropSchema));
  });

  it('LISTEN/NOTIFY: a task enqueued on node A wakes a worker long-polling node B within 100 ms', async () => {
    const schema = freshSchema('tfw');
    schemas.push(schema);
    const { b, producer } = await twoNodes(schema, 20_000);
    const watcher = await watchingWorker(b.url, 'wake');
    const latencies: number[] = [];
    for (let i = 0; i < 7; i++) {
      await idle();
      latencies.push(await wakeLatency(producer, watcher, 'wake'));
    }
    await watcher.worker.stop();
    // Polling alone would take up to 20 s; every one of these was pushed.
    expect(Math.max(...latencies)).toBeLessThan(2000);
    expect(median(latencies)).toBeLessThan(100);
  }, 90_000);

  it('Redis pub/sub: the same within 100 ms; with Redis killed tasks still flow at the poll interval; pushed again once it is back', async () => {
    const schema = freshSchema('tfw');
    schemas.push(schema);
    const port = await freePort();
    let redis = await startRedis(port);
    const pollMs = 1500;
    const { b, producer } = await twoNodes(schema, pollMs, { REDIS_URL: `redis://127.0.0.1:${port}` });
    const watcher = await watchingWorker(b.url, 'wake');

    const pushed: number[] = [];
    for (let i = 0; i < 7; i++) {
      await idle();
      pushed.push(await wakeLatency(producer, watcher, 'wake'));
    }
    expect(median(pushed)).toBeLessThan(100);

    // Redis goes away: nothing is lost, nothing waits longer than the poll interval (plus a claim).
    redis.child.kill('SIGKILL');
    await redis.exited;
    const degraded: number[] = [];
    for (let i = 0; i < 4; i++) degraded.push(await wakeLatency(producer, watcher, 'wake'));
    expect(Math.max(...degraded)).toBeLessThan(pollMs + 1000);
    const batch = await producer.enqueueMany(Array.from({ length: 20 }, () => ({ type: 'ping', queue: 'wake' })));
    await Promise.all(batch.items.map((i) => watcher.started(i.task.id)));

    // Redis is back on the same port: ioredis reconnects and re-subscribes; pushes resume.
    redis = await startRedis(port);
    const recovered: number[] = [];
    for (let attempt = 0; attempt < 40 && (recovered.length < 5 || median(recovered.slice(-5)) >= 100); attempt++) {
      await idle(250);
      recovered.push(await wakeLatency(producer, watcher, 'wake'));
    }
    expect(median(recovered.slice(-5))).toBeLessThan(100);
    await watcher.worker.stop();
  }, 120_000);
});
