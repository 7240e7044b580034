/**
 * Fencing over HTTP: a worker whose lease ran out and was taken over reports late. Its result
 * is refused with 409 `stale_attempt` and changes nothing; the worker that holds the task now
 * settles it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClaimedTask } from '@taskflow/sdk';
import { startTestService, type TestService } from '@taskflow/server/test-support';

describe('a late result from a worker whose lease was taken over (PostgreSQL)', () => {
  let tf: TestService;
  beforeAll(async () => {
    tf = await startTestService('postgres', { rescueIntervalMs: 50, workerTtlMs: 60_000 });
  });
  afterAll(() => tf?.stop());

  async function post(path: string, body: unknown) {
    const res = await fetch(`${tf.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tf.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any };
  }

  const withoutLease = <T extends { leaseExpiresAt?: unknown }>(t: T) => ({ ...t, leaseExpiresAt: undefined });

  it('is refused with 409 and changes nothing', async () => {
    const queue = 'fencing';
    const task = await tf.admin.enqueue({ type: 't', queue, timeoutMs: 2000, backoff: { type: 'fixed', delayMs: 0 } });
    const slow = await tf.admin.registerWorker({ name: 'slow', queues: [queue] });
    const fast = await tf.admin.registerWorker({ name: 'fast', queues: [queue] });

    const first = await post(`/api/v1/workers/${slow.id}/claim`, { max: 1 });
    const claimed = first.body.tasks[0] as ClaimedTask;
    expect(claimed).toMatchObject({ id: task.id, attempt: 1 });

    // The slow worker goes quiet; its lease runs out and the rescuer requeues the task, which
    // the fast worker's long poll picks up.
    const second = await post(`/api/v1/workers/${fast.id}/claim`, { max: 1, waitMs: 10_000 });
    expect(second.body.tasks[0]).toMatchObject({ id: task.id, attempt: 2 });
    // The fast worker keeps its 2 s lease alive, as a worker running the task would, so that
    // a slow turn of the machine cannot expire attempt 2 while the test looks.
    const keepAlive = setInterval(() => void post(`/api/v1/workers/${fast.id}/heartbeat`, { running: [task.id] }).catch(() => {}), 100);
    try {
      const before = await tf.admin.getTask(task.id);
      expect(before).toMatchObject({ state: 'running', workerId: fast.id, attempt: 2 });

      const late = await post(`/api/v1/workers/${slow.id}/tasks/${task.id}/result`, { attempt: 1, status: 'succeeded', result: 'late' });
      expect(late.status).toBe(409);
      expect(late.type).toMatch(/^application\/problem\+json/);
      expect(late.body).toMatchObject({ status: 409, code: 'stale_attempt', type: 'urn:taskflow:problem:stale_attempt' });
      expect(late.body.detail).toMatch(/attempt 1 of task/);
      const lateBatch = await post(`/api/v1/workers/${slow.id}/results`, { results: [{ id: task.id, attempt: 1, status: 'failed', error: { message: 'late' } }] });
      expect(lateBatch.body.results).toEqual([{ id: task.id, status: 'stale' }]);
      // Nothing changed but the lease the heartbeats renew.
      expect(withoutLease(await tf.admin.getTask(task.id))).toEqual(withoutLease(before));

      const onTime = await post(`/api/v1/workers/${fast.id}/tasks/${task.id}/result`, { attempt: 2, status: 'succeeded', result: 'on time' });
      expect(onTime).toMatchObject({ status: 200, body: { id: task.id, status: 'accepted' } });
    } finally {
      clearInterval(keepAlive);
    }
    const after = await tf.admin.getTask(task.id);
    expect(after).toMatchObject({ state: 'succeeded', result: 'on time', workerId: fast.id });
    expect(after.attempts.map((a) => [a.attempt, a.outcome, a.workerId])).toEqual([
      [1, 'lease_expired', slow.id],
      [2, 'succeeded', fast.id],
    ]);
  });
});
