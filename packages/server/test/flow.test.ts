/**
 * Flow control over HTTP (docs/flow-control.md): queue settings (PATCH and the queue's answer,
 * bad input naming the field), admission (429 with Retry-After, nothing half-written; a batch
 * names what was refused), explain, and the concurrency limit with ten workers, sampled from the
 * database. On PostgreSQL, where requests run in parallel; the engine's own cases, on both drivers, are in packages/core/test/conformance/flow.suite.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskflowApiError, TaskflowClient } from '@taskflow/sdk';
import { startTestService, type TestService } from './support/service.ts';

let seq = 0;
const freshQueue = (label: string) => `${label}.${process.pid}.${++seq}`;

async function raw(svc: TestService, method: string, path: string, body?: unknown) {
  const headers: Record<string, string> = { authorization: `Bearer ${svc.adminKey}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(svc.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as any) : undefined };
}

describe('flow control over HTTP (postgres)', () => {
  let svc: TestService;
  let admin: TaskflowClient;
  beforeAll(async () => {
    svc = await startTestService('postgres', { poolSize: 12, workerTtlMs: 600_000 });
    admin = svc.admin;
  });
  afterAll(() => svc.stop());

  it('sets, shows and clears queue settings; bad input is a 400 naming the field, nothing stored', async () => {
    const queue = freshQueue('settings');
    const q = await admin.updateQueueSettings(queue, { maxRunningPerKey: 3, rateLimit: { limit: 50, intervalMs: 1000, burst: 5 }, maxDepth: 100 });
    expect(q.settings).toMatchObject({ maxRunningPerKey: 3, rateLimit: { limit: 50, intervalMs: 1000, burst: 5 }, maxDepth: 100, maxRunning: null });
    expect((await admin.getQueue(queue)).settings.maxDepth).toBe(100);
    for (const [body, field] of [
      [{ maxRunning: 0 }, '/body/maxRunning'],
      [{ rateLimit: { limit: 5, intervalMs: 1000 } }, '/body/rateLimit'],
      [{ maxDepth: 'lots' }, '/body/maxDepth'],
      [{ unknown: 1 }, '/body/unknown'],
    ] as const) {
      const r = await raw(svc, 'PATCH', `/api/v1/queues/${encodeURIComponent(queue)}`, body);
      expect(r.status).toBe(400);
      expect(r.body.errors.map((e: { field: string }) => e.field).join(' ')).toContain(field);
    }
    const cleared = await admin.updateQueueSettings(queue, { rateLimit: null });
    expect(cleared.settings).toMatchObject({ maxRunningPerKey: 3, rateLimit: null, maxDepth: 100 });
    const producer = await svc.clientWith(['producer']);
    await expect(producer.updateQueueSettings(queue, { maxDepth: 1 })).rejects.toMatchObject({ status: 403 });
  });

  it('answers the 101st task of a queue with maxDepth 100 with 429 and Retry-After, writing nothing of it', async () => {
    const queue = freshQueue('admission');
    await admin.updateQueueSettings(queue, { maxDepth: 100 });
    await admin.enqueueMany(Array.from({ length: 99 }, (_, i) => ({ type: 't', queue, payload: i })));
    await admin.enqueue({ type: 't', queue, payload: 99 });
    const one = await raw(svc, 'POST', '/api/v1/tasks', { type: 't', queue, payload: 100 });
    expect(one.status).toBe(429);
    expect(one.headers.get('retry-after')).toBe('1');
    expect(one.body).toMatchObject({ code: 'queue_full', refused: [{ index: 0, queue, reason: 'max_depth' }] });
    expect((await admin.getQueue(queue)).counts.queued).toBe(100);

    const other = freshQueue('admission.other');
    const batch = await raw(svc, 'POST', '/api/v1/tasks/batch', {
      tasks: [{ type: 't', queue: other }, { type: 't', queue }, { type: 't', queue }],
    });
    expect(batch.status).toBe(429);
    expect(batch.body.refused).toEqual([{ index: 1, queue, reason: 'max_depth' }, { index: 2, queue, reason: 'max_depth' }]);
    // All or nothing: the task that fitted was not written either.
    expect((await admin.listTasks({ queue: other })).items).toEqual([]);
    expect((await admin.getQueue(queue)).counts.queued).toBe(100);
  });

  it('explains what holds a task', async () => {
    const queue = freshQueue('explain');
    const later = await admin.enqueue({ type: 't', queue, delayMs: 60_000 });
    const x = await admin.explainTask(later.id);
    expect(x).toMatchObject({ taskId: later.id, state: 'scheduled', blockers: [{ kind: 'run_at', until: later.runAt }] });
    await admin.pauseQueue(queue);
    const ready = await admin.enqueue({ type: 't', queue });
    expect((await admin.explainTask(ready.id)).blockers.map((b) => b.kind)).toEqual(['queue_paused']);
    const missing = await admin.explainTask('999999999').catch((e: TaskflowApiError) => e);
    expect(missing).toMatchObject({ status: 404 });
  });

  it('runs at most 3 of a concurrency key at once with 10 workers (sampled from the database)', async () => {
    const queue = freshQueue('concurrency');
    await admin.updateQueueSettings(queue, { maxRunningPerKey: 3 });
    const total = 40;
    await admin.enqueueMany(Array.from({ length: total }, (_, i) => ({ type: 't', queue, payload: i, concurrencyKey: 'tenant-1' })));
    const db = svc.service.engine.db;
    let done = 0;
    let sampledMost = 0;
    const sampler = (async () => {
      while (done < total) {
        const { rows } = await db.query(`SELECT count(*)::integer AS n FROM tasks WHERE queue = $1 AND state = 'running'`, [queue]);
        sampledMost = Math.max(sampledMost, rows[0]!.n);
      }
    })();
    await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const w = await admin.registerWorker({ name: `flow-${i}`, queues: [{ name: queue, weight: 1 }], concurrency: 5 });
      let results: { id: string; attempt: number; status: 'succeeded' }[] = [];
      while (done < total) {
        const { tasks } = await admin.claim(w.id, { max: 5, waitMs: 200, results });
        results = tasks.map((t) => ({ id: t.id, attempt: t.attempt, status: 'succeeded' as const }));
        done += tasks.length;
      }
      if (results.length > 0) await admin.reportResults(w.id, results);
    }));
    await sampler;
    expect(done).toBe(total);
    expect(sampledMost).toBeGreaterThan(0);
    expect(sampledMost).toBeLessThanOrEqual(3);
  });
});
