/**
 * Place in line with a real process kill (issue 17, must-show 9): an SDK worker process holds
 * the tasks at the head of a 10,000-task backlog and is SIGKILLed. Once it is declared lost,
 * its tasks are claimed again before any of the tasks that were behind them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskflowClient } from '@taskflow/sdk';
import { startTestService, type TestService } from '@taskflow/server/test-support';
import { killAll, startWorkerProcess } from './support/processes.ts';

const BACKLOG = 10_000;
const HEAD = 8;
const WORKER_TTL_MS = 2000;

/** Resolves once `check` returns a value other than undefined; fails after `ms`. */
async function until<T>(check: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('place in line after a worker process is killed (PostgreSQL)', () => {
  let tf: TestService;
  afterAll(async () => {
    await killAll();
    await tf?.stop();
  });
  beforeAll(async () => {
    // Leases far longer than the test: the tasks come back because the worker is lost.
    tf = await startTestService('postgres', { workerTtlMs: WORKER_TTL_MS, defaultTimeoutMs: 600_000, rescueIntervalMs: 250 });
  });

  it('runs the killed worker\'s tasks again before the 10,000 that were behind them', async () => {
    const queue = `line.${process.pid}`;
    const db = tf.service.db;
    // The head tasks block their worker; the backlog behind them is 10,000 quick ones.
    const head = await tf.admin.enqueueManyIds(Array.from({ length: HEAD }, () => ({ type: 'sleep', queue, payload: { ms: 600_000 } })));
    for (let i = 0; i < BACKLOG; i += 1000) {
      await tf.admin.enqueueManyIds(Array.from({ length: 1000 }, () => ({ type: 'sleep', queue, payload: { ms: 1 } })));
    }
    const workerKey = (await tf.admin.createApiKey({ name: 'line workers', scopes: ['worker'] })).secret;
    const victim = await startWorkerProcess({ TF_URL: tf.url, TF_KEY: workerKey, TF_QUEUES: queue, TF_CONCURRENCY: String(HEAD), TF_NAME: 'victim' });
    // Wait, by its events, until the victim has started every head task.
    const started = new Set<string>();
    await new Promise<void>((resolve) => {
      victim.proc.onLine((line) => {
        const ev = JSON.parse(line) as { e: string; id?: string };
        if (ev.e === 'start') started.add(ev.id!);
        if (started.size === HEAD) resolve();
      });
    });
    expect([...started].sort()).toEqual([...head.ids].sort());
    const held = (await db.query(`SELECT id::text FROM tasks WHERE queue = $1 AND state = 'running' ORDER BY id`, [queue])).rows.map((r) => r.id as string);
    expect(held).toEqual(head.ids);
    victim.proc.child.kill('SIGKILL');
    await victim.proc.exited;

    // Declared lost after its heartbeat deadline; its tasks are queued again.
    await until(async () => {
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE t.queue = $1 AND a.outcome = 'worker_lost'`, [queue]);
      return rows[0]!.n === HEAD ? true : undefined;
    });
    expect((await tf.admin.getWorker(victim.workerId)).state).toBe('lost');

    // The next claim takes them first, ahead of the backlog that was behind them.
    const worker = new TaskflowClient({ url: tf.url, apiKey: workerKey });
    const { id } = await worker.registerWorker({ name: 'next', queues: [queue], concurrency: HEAD });
    const first = await worker.claim(id, { max: HEAD, waitMs: 0 });
    expect(first.tasks.map((t) => t.id).sort()).toEqual([...head.ids].sort());
    expect(first.tasks.every((t) => t.attempt === 2)).toBe(true);
    const next = await worker.claim(id, { max: 1, waitMs: 0 });
    expect(next.tasks.map((t) => t.attempt)).toEqual([1]);
    expect(BigInt(next.tasks[0]!.id)).toBeGreaterThan(BigInt(head.ids.at(-1)!));
  }, 180_000);
});
