/**
 * Workers keep their tasks through an outage of the database longer than their TTL. A node
 * on a private PostgreSQL cluster (worker TTL 1.5 s, leases 2 s), an SDK worker running four
 * tasks that wait for the test, and the cluster stopped for 4 s: every heartbeat fails
 * meanwhile, and every deadline and lease passes. The worker's heartbeats are held back (a
 * proxy hangs them up) until the node's rescuer has seen the database answer again, the worst
 * case: a rescuer that judged at once would take the worker for lost.
 *
 * - With the rescuer's outage grace (the default: one worker TTL), the worker stays active,
 *   keeps its four tasks, and each succeeds with its first attempt, run once; no attempt ends
 *   `worker_lost` or `lease_expired`.
 * - With the grace at 0, the same outage costs the worker its tasks (each attempt ended
 *   `worker_lost` or `lease_expired`, a lease loss each): what the grace is for.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker, type TaskHandler } from '@taskflow/sdk';
import { createLogger } from '@taskflow/server';
import { startProxy, startTestService, type ProxiedRequest, type TestProxy, type TestService } from '@taskflow/server/test-support';
import { startPrivateCluster, type PrivateCluster } from './support/privateCluster.ts';

/** This helper's port range is 56300-56399. */
const PORT = 56300;
const TTL = 1500;
const OUTAGE_MS = 4000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = { info() {}, warn() {}, error() {} };
const isHeartbeat = (req: ProxiedRequest) => /^\/api\/v1\/workers\/[0-9a-f-]{36}\/heartbeat$/.test(req.path);

/** The node's log lines, and a promise of the first line from now on that matches. */
function logCapture() {
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        lines.push(line);
        for (const w of waiters.filter((x) => x.re.test(line))) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
      done();
    },
  });
  return { lines, logger: createLogger('info', stream), next: (re: RegExp) => new Promise<void>((resolve) => waiters.push({ re, resolve })) };
}

/** Handlers whose tasks wait for `release()`, counting each task's runs. */
function gated() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const runs = new Map<string, number>();
  const handlers: Record<string, TaskHandler> = {
    async hold(_payload, ctx) {
      runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
      await gate;
      return { done: ctx.id };
    },
  };
  return { handlers, runs, release: () => release() };
}

describe('workers through an outage of the database longer than their TTL (private PostgreSQL cluster)', () => {
  let cluster: PrivateCluster;
  const opened: { tf: TestService; proxy: TestProxy; worker: Worker }[] = [];

  beforeAll(async () => {
    cluster = await startPrivateCluster({ port: PORT, prefix: '/tmp/h24-rescue-' });
  }, 180_000);

  afterAll(async () => {
    for (const o of opened) {
      await o.worker.stop(0);
      await o.proxy.close();
      await o.tf.service.stop();
    }
    await cluster?.destroy();
  });

  /**
   * A node (outage grace `graceMs`, or the default) and a worker holding four tasks; then the
   * outage, with the worker's heartbeats hung up from before it until `heldUntil` resolves.
   */
  async function outage(
    queue: string, graceMs: number | undefined,
    heldUntil: (node: { log: ReturnType<typeof logCapture>; tf: TestService; ids: string[] }) => Promise<void>,
  ) {
    const log = logCapture();
    const tf = await startTestService('postgres', {
      databaseUrl: cluster.url, logLevel: 'info', workerTtlMs: TTL, rescueIntervalMs: 100, rescueStartDelayMs: 0,
      connectionTimeoutMs: 1000, ...(graceMs === undefined ? {} : { rescueOutageGraceMs: graceMs }),
    }, { logger: log.logger });
    let holding = false;
    const proxy = await startProxy(tf.url, { onRequest: (req) => (holding && isHeartbeat(req) ? { kind: 'hangUp' } : { kind: 'forward' }) });
    const { handlers, runs, release } = gated();
    const worker = new Worker({ url: proxy.url, apiKey: tf.adminKey, queues: [queue], handlers, concurrency: 4, prefetch: 0, waitMs: 500, handleSignals: false, logger: quiet });
    opened.push({ tf, proxy, worker });
    await worker.start();
    const workerId = worker.workerId!;
    const ids = (await tf.admin.enqueueMany(Array.from({ length: 4 }, () => ({ type: 'hold', queue, timeoutMs: 2000 })))).items.map((i) => i.task.id);
    while (runs.size < 4) await sleep(20);

    holding = true;
    const judged = heldUntil({ log, tf, ids });
    await cluster.stop('fast');
    await sleep(OUTAGE_MS);
    await cluster.start();
    await judged;
    holding = false;
    return { tf, proxy, worker, workerId, ids, runs, release, log };
  }

  it('with the outage grace (one TTL), the worker keeps its tasks: each runs once and succeeds with its first attempt', async () => {
    const { tf, proxy, worker, workerId, ids, runs, release, log } = await outage('rescue.grace', undefined, ({ log: l }) => l.next(/rescuer: the database answers again/));
    // The heartbeats get through from now on, within the grace; then wait past it.
    const from = proxy.log.length;
    while (!proxy.log.slice(from).some((e) => isHeartbeat(e.req) && e.status === 200)) await sleep(20);
    await sleep(2 * TTL);
    expect((await tf.admin.getWorker(workerId)).state).toBe('active');
    for (const id of ids) expect(await tf.admin.getTask(id)).toMatchObject({ state: 'running', attempt: 1, leaseLosses: 0, attempts: [{ outcome: 'running' }] });

    release();
    for (const id of ids) {
      while ((await tf.admin.getTask(id)).state === 'running') await sleep(50);
      const t = await tf.admin.getTask(id);
      expect(t).toMatchObject({ state: 'succeeded', attempt: 1, result: { done: id }, workerId, leaseLosses: 0 });
      expect(t.attempts.map((a) => a.outcome)).toEqual(['succeeded']);
    }
    expect([...runs.values()]).toEqual([1, 1, 1, 1]);
    expect(worker.workerId).toBe(workerId);
    expect(log.lines.some((l) => /rescuer: the database is unavailable/.test(l))).toBe(true);
    expect(log.lines.filter((l) => /rescued tasks of lost workers/.test(l))).toEqual([]);
  }, 120_000);

  it('with the grace at 0, the same outage costs the worker its tasks, a lease loss each', async () => {
    // Held until the rescuer has taken every task back (it does, once the database answers).
    const { tf, ids, release } = await outage('rescue.none', 0, async ({ tf: node, ids: held }) => {
      for (;;) {
        const tasks = await Promise.all(held.map((id) => node.admin.getTask(id).catch(() => undefined)));
        if (tasks.every((t) => t !== undefined && t.leaseLosses > 0)) return;
        await sleep(100);
      }
    });
    for (const id of ids) {
      const t = await tf.admin.getTask(id);
      expect(t.leaseLosses).toBe(1);
      expect(t.attempts[0]!.outcome).toMatch(/^(worker_lost|lease_expired)$/);
    }
    release();
  }, 120_000);
});
