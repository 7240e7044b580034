/**
 * Unique tasks and expiry over HTTP (docs/tasks.md): a duplicate inside the window returns the
 * first task and says so, on the single and the batch route and through the SDK; an expired
 * task is cancelled by the expiry duty and never runs. The races (one unique key submitted at
 * once by many requests, batches with keys in opposite orders) run on PostgreSQL, where
 * requests truly run in parallel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskflowClient } from '@taskflow/sdk';
import { startTestService, type TestService } from './support/service.ts';

let queueSeq = 0;
const freshQueue = (label: string) => `${label}.${process.pid}.${++queueSeq}`;

async function raw(svc: TestService, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(svc.url + path, {
    method,
    headers: { authorization: `Bearer ${svc.adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as any) : undefined };
}

/** Resolves once `check` returns a value other than undefined; fails after `ms`. */
async function until<T>(check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('unique tasks and expiry over HTTP (pglite)', () => {
  let svc: TestService;
  let client: TaskflowClient;
  beforeAll(async () => {
    svc = await startTestService('pglite', { workerTtlMs: 600_000 });
    client = svc.admin;
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('answers a duplicate inside the window with the first task: 200 and Deduplicated: unique', async () => {
    const queue = freshQueue('unique');
    const body = { type: 'api.unique', queue, uniqueKey: 'report:7', uniqueForMs: 3_600_000, payload: { v: 1 } };
    const first = await raw(svc, 'POST', '/api/v1/tasks', body);
    expect(first.status).toBe(201);
    expect(first.headers.get('deduplicated')).toBeNull();
    expect(first.body).toMatchObject({ uniqueKey: 'report:7', expiresAt: null, cancelReason: null });
    const dup = await raw(svc, 'POST', '/api/v1/tasks', { ...body, payload: { v: 2 } });
    expect(dup.status).toBe(200);
    expect(dup.headers.get('deduplicated')).toBe('unique');
    expect(dup.headers.get('idempotent-replayed')).toBeNull();
    expect(dup.headers.get('location')).toBe(`/api/v1/tasks/${first.body.id}`);
    expect(dup.body).toMatchObject({ id: first.body.id, payload: { v: 1 } });
    const page = await client.listTasks({ queue });
    expect(page.items.map((t) => t.id)).toEqual([first.body.id]);
  });

  it('says which items of a batch were duplicates, in both answers, and through the SDK', async () => {
    const queue = freshQueue('unique-batch');
    const tasks = [
      { type: 'a', queue, uniqueKey: 'x' },
      { type: 'b', queue, uniqueKey: 'x' },
      { type: 'c', queue, idempotencyKey: 'i' },
      { type: 'd', queue, idempotencyKey: 'i' },
    ];
    const full = await raw(svc, 'POST', '/api/v1/tasks/batch', { tasks });
    expect(full.status).toBe(201);
    expect(full.body.items.map((i: any) => [i.created, i.deduplicated ?? null])).toEqual([
      [true, null], [false, 'unique'], [true, null], [false, 'idempotency'],
    ]);
    expect(full.body.items[1].task.id).toBe(full.body.items[0].task.id);
    const minimal = await raw(svc, 'POST', '/api/v1/tasks/batch', { tasks }, { prefer: 'return=minimal' });
    expect(minimal.body).toEqual({ ids: full.body.items.map((i: any) => i.task.id).join(','), existing: [0, 1, 2, 3] });
    const submitted = await client.submit({ type: 'e', queue, uniqueKey: 'x' });
    expect(submitted).toMatchObject({ created: false, deduplicated: 'unique', task: { id: full.body.items[0].task.id } });
    const created = await client.enqueue({ type: 'f', queue, uniqueKey: 'y', ttlMs: 60_000 });
    expect(created.uniqueKey).toBe('y');
    expect(new Date(created.expiresAt!).getTime() - new Date(created.createdAt).getTime()).toBe(60_000);
  });

  it('cancels a task not started by its deadline as expired; it never runs', async () => {
    const queue = freshQueue('expiry');
    const doomed = await client.enqueue({ type: 'api.expiring', queue, ttlMs: 200 });
    const expired = await until(async () => {
      const t = await client.getTask(doomed.id);
      return t.state === 'cancelled' ? t : undefined;
    });
    expect(expired).toMatchObject({ cancelReason: 'expired', attempt: 0, startedAt: null, attempts: [] });
    const { id: workerId } = await client.registerWorker({ name: 'expiry', queues: [queue], concurrency: 5 });
    const { tasks } = await client.claim(workerId, { max: 5, waitMs: 0 });
    expect(tasks).toEqual([]);
    // A retry by an operator drops the passed deadline: it runs.
    const retried = await client.retryTask(doomed.id);
    expect(retried).toMatchObject({ state: 'queued', expiresAt: null, cancelReason: null });
    expect((await client.claim(workerId, { max: 5, waitMs: 0 })).tasks.map((t) => t.id)).toEqual([doomed.id]);
  });
});

describe('unique tasks under races (postgres)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('postgres', { poolSize: 10, workerTtlMs: 600_000 });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('creates one task when 20 submissions with one unique key race', async () => {
    const queue = freshQueue('unique-race');
    const body = { type: 'api.race', queue, uniqueKey: 'the-one', payload: { n: 1 } };
    const responses = await Promise.all(Array.from({ length: 20 }, () => raw(svc, 'POST', '/api/v1/tasks', body)));
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    expect(responses.filter((r) => r.status === 200)).toHaveLength(19);
    expect(new Set(responses.map((r) => r.body.id)).size).toBe(1);
    for (const r of responses) expect(r.headers.get('deduplicated')).toBe(r.status === 200 ? 'unique' : null);
    const { rows } = await svc.service.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE queue = $1`, [queue]);
    expect(rows[0]!.n).toBe(1);
  });

  it('never deadlocks batches that share keys in opposite orders: one task per key', async () => {
    const queue = freshQueue('unique-order');
    const keys = Array.from({ length: 30 }, (_, k) => `k${k}`);
    const batches = Array.from({ length: 16 }, (_, n) => ({
      // Large enough to go alone (not joined by the group commit), so the statements overlap.
      tasks: (n % 2 === 0 ? keys : [...keys].reverse()).flatMap((k) => [
        { type: 'api.order', queue, uniqueKey: k },
        ...Array.from({ length: 3 }, () => ({ type: 'api.filler', queue })),
      ]),
    }));
    const responses = await Promise.all(batches.map((b) => raw(svc, 'POST', '/api/v1/tasks/batch', b)));
    expect(responses.map((r) => r.status)).toEqual(batches.map(() => 201));
    const keyed = responses.flatMap((r) => r.body.items.filter((i: any) => i.task.type === 'api.order'));
    expect(keyed).toHaveLength(keys.length * batches.length);
    expect(keyed.filter((i: any) => i.created)).toHaveLength(keys.length);
    const { rows } = await svc.service.db.query<{ n: number }>(
      `SELECT count(DISTINCT unique_key)::int AS n FROM tasks WHERE queue = $1 AND unique_key IS NOT NULL`, [queue]);
    expect(rows[0]!.n).toBe(keys.length);
    const { rows: all } = await svc.service.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE queue = $1 AND unique_key IS NOT NULL`, [queue]);
    expect(all[0]!.n).toBe(keys.length);
  });
});
