/**
 * The HTTP API's happy paths, through the SDK client (raw `fetch` where the status line or a
 * header is the point): tasks, batches, lists and cursors, the dead-letter queue, queues,
 * the worker protocol, API keys, health and the OpenAPI document. Most run on PGlite; the
 * races (one idempotency key submitted 20 times at once, workers claiming together) run on
 * PostgreSQL, where requests truly run in parallel.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '@taskflow/contracts';
import { TaskflowApiError, TaskflowClient } from '@taskflow/sdk';
import { startTestService, type TestService } from './support/service.ts';

/** No retry delay: a failed or released attempt goes straight back to `queued`. */
const NOW_BACKOFF = { type: 'fixed', delayMs: 0 } as const;

let queueSeq = 0;
/** A queue name of its own for each test, so tests share a service without seeing each other. */
function freshQueue(label: string): string {
  return `${label}.${process.pid}.${++queueSeq}`;
}

/** Raw HTTP for when the status line or headers matter. */
async function raw(svc: TestService, method: string, path: string, opts: { key?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${opts.key ?? svc.adminKey}`, ...opts.headers };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(svc.url + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as any) : undefined };
}

/** A new API key of one scope; returns the secret. */
async function newKey(svc: TestService, scope: 'producer' | 'worker' | 'admin'): Promise<string> {
  return (await svc.admin.createApiKey({ name: `api-test ${scope}`, scopes: [scope] })).secret;
}

/** Rejects with the API error the promise fails with. */
async function apiError(p: Promise<unknown>): Promise<TaskflowApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TaskflowApiError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('HTTP API (pglite)', () => {
  let svc: TestService;
  let producer: TaskflowClient;
  let producerKey: string;
  let worker: TaskflowClient;
  let workerKey: string;
  let admin: TaskflowClient;

  beforeAll(async () => {
    svc = await startTestService('pglite', { workerTtlMs: 600_000 });
    admin = svc.admin;
    producerKey = await newKey(svc, 'producer');
    producer = new TaskflowClient({ url: svc.url, apiKey: producerKey });
    workerKey = await newKey(svc, 'worker');
    worker = new TaskflowClient({ url: svc.url, apiKey: workerKey });
  });

  afterAll(async () => {
    await svc?.stop();
  });

  /** Registers a worker on `queues` and returns its id. */
  async function registerOn(...queues: string[]): Promise<string> {
    return (await worker.registerWorker({ name: `api-test ${queues.join(',')}`, queues, concurrency: 10 })).id;
  }

  /** Submits a task, claims it with a worker of its own, and returns both. */
  async function runningTask(queue: string, input: Partial<Parameters<TaskflowClient['enqueue']>[0]> = {}) {
    const task = await producer.enqueue({ type: 'api.run', queue, ...input });
    const workerId = await registerOn(queue);
    const { tasks } = await worker.claim(workerId, { max: 1, waitMs: 0 });
    expect(tasks.map((t) => t.id)).toEqual([task.id]);
    return { task, workerId, attempt: tasks[0]!.attempt };
  }

  describe('tasks', () => {
    it('creates a task: 201, a Location header, every field with its defaults', async () => {
      const queue = freshQueue('create');
      const res = await raw(svc, 'POST', '/api/v1/tasks', {
        key: producerKey,
        body: { type: 'email.send', queue, payload: { to: 'ada@example.com', n: [1, 2.5, null, true] }, tags: ['a', 'b'] },
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('location')).toBe(`/api/v1/tasks/${res.body.id}`);
      expect(res.headers.get('idempotent-replayed')).toBeNull();
      expect(res.body).toMatchObject({
        type: 'email.send', queue, state: 'queued', priority: 0, attempt: 0, attemptBase: 0, maxAttempts: 5, timeoutMs: 30_000,
        payload: { to: 'ada@example.com', n: [1, 2.5, null, true] }, payloadBase64: null, contentType: null, result: null,
        tags: ['a', 'b'], idempotencyKey: null, workerId: null, cancelRequested: false, lastError: null, deadReason: null,
        startedAt: null, finishedAt: null,
      });
      expect(res.body.id).toMatch(/^[1-9][0-9]*$/);
      expect(res.body.backoff).toMatchObject({ type: 'exponential' });
      // The Location answers with the same task.
      const again = await raw(svc, 'GET', res.headers.get('location')!);
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ id: res.body.id, payload: res.body.payload, attempts: [] });
    });

    it('is idempotent per queue: the same key answers 200 with the first task and idempotent-replayed: true', async () => {
      const queue = freshQueue('idem');
      const body = { type: 'api.idem', queue, idempotencyKey: 'order-42', payload: { v: 1 } };
      const first = await raw(svc, 'POST', '/api/v1/tasks', { key: producerKey, body });
      expect(first.status).toBe(201);
      const second = await raw(svc, 'POST', '/api/v1/tasks', { key: producerKey, body: { ...body, payload: { v: 2 } } });
      expect(second.status).toBe(200);
      expect(second.headers.get('idempotent-replayed')).toBe('true');
      expect(second.headers.get('location')).toBe(`/api/v1/tasks/${first.body.id}`);
      expect(second.body).toMatchObject({ id: first.body.id, payload: { v: 1 }, idempotencyKey: 'order-42' });
      // The same key in another queue is another task.
      const elsewhere = await raw(svc, 'POST', '/api/v1/tasks', { key: producerKey, body: { ...body, queue: freshQueue('idem') } });
      expect(elsewhere.status).toBe(201);
      expect(elsewhere.body.id).not.toBe(first.body.id);
      const page = await producer.listTasks({ queue });
      expect(page.items.map((t) => t.id)).toEqual([first.body.id]);
    });

    it('creates a batch, reporting per item whether it was created or matched an idempotency key', async () => {
      const queue = freshQueue('batch');
      const existing = await producer.enqueue({ type: 'api.batch', queue, idempotencyKey: 'old' });
      const res = await raw(svc, 'POST', '/api/v1/tasks/batch', {
        key: producerKey,
        body: {
          tasks: [
            { type: 'api.batch', queue, idempotencyKey: 'new', payload: 'a' },
            { type: 'api.batch', queue, payload: 'b', priority: 3 },
            { type: 'api.batch', queue, idempotencyKey: 'new', payload: 'c' },
            { type: 'api.batch', queue, idempotencyKey: 'old', payload: 'd' },
            { type: 'api.batch', queue, payloadBase64: 'AAEC', contentType: 'application/x-test' },
          ],
        },
      });
      expect(res.status).toBe(201);
      const items = res.body.items as { created: boolean; task: { id: string; priority: number; state: string; idempotencyKey: string | null } }[];
      expect(items.map((i) => i.created)).toEqual([true, true, false, false, true]);
      // Each item refers to its task (no payload echoed back); the stored tasks hold what was sent.
      expect(items[0]!.task).toMatchObject({ state: 'queued', idempotencyKey: 'new' });
      expect(items[0]!.task).not.toHaveProperty('payload');
      expect((await producer.getTask(items[0]!.task.id)).payload).toBe('a');
      expect(items[1]!.task).toMatchObject({ priority: 3 });
      expect((await producer.getTask(items[1]!.task.id)).payload).toBe('b');
      expect(items[2]!.task.id).toBe(items[0]!.task.id);
      expect(items[3]!.task.id).toBe(existing.id);
      expect(await producer.getTask(items[4]!.task.id)).toMatchObject({ payload: null, payloadBase64: 'AAEC', contentType: 'application/x-test' });
      const page = await producer.listTasks({ queue, limit: 500 });
      expect(page.items).toHaveLength(4);
    });

    it('answers a batch with the ids only under Prefer: return=minimal (RFC 7240)', async () => {
      const queue = freshQueue('minimal');
      const original = await producer.enqueue({ type: 'api.min', queue, idempotencyKey: 'old' });
      const tasks = [
        { type: 'api.min', queue, payload: 'a' },
        { type: 'api.min', queue, idempotencyKey: 'old', payload: 'b' },
        { type: 'api.min', queue, payload: 'c', runAt: new Date(Date.now() + 3_600_000).toISOString() },
        { type: 'api.min', queue, idempotencyKey: 'new', payload: 'd' },
        { type: 'api.min', queue, idempotencyKey: 'new', payload: 'e' },
      ];
      // Among other preferences, in any case, with a parameter: still honoured.
      const res = await raw(svc, 'POST', '/api/v1/tasks/batch', { key: producerKey, body: { tasks }, headers: { prefer: 'respond-async, RETURN=minimal; x=1' } });
      expect(res.status).toBe(201);
      expect(res.headers.get('preference-applied')).toBe('return=minimal');
      expect(res.headers.get('vary')).toMatch(/prefer/i);
      expect(Object.keys(res.body).sort()).toEqual(['existing', 'ids']);
      const ids = (res.body.ids as string).split(',');
      expect(ids).toHaveLength(5);
      expect(res.body.existing).toEqual([1, 4]);
      expect(ids[1]).toBe(original.id);
      expect(ids[4]).toBe(ids[3]);
      // Each id is the task submitted at its position.
      for (const k of [0, 2, 3]) expect((await producer.getTask(ids[k]!)).payload).toBe(tasks[k]!.payload);
      expect((await producer.getTask(ids[2]!)).state).toBe('scheduled');
      // Without the preference, or with another one, the full answer (and no Preference-Applied).
      for (const prefer of [undefined, 'return=representation']) {
        const full = await raw(svc, 'POST', '/api/v1/tasks/batch', { key: producerKey, body: { tasks: [{ type: 'api.min', queue }] }, headers: prefer ? { prefer } : {} });
        expect(full.status).toBe(201);
        expect(full.headers.get('preference-applied')).toBeNull();
        expect(full.body.items).toHaveLength(1);
        expect(full.body.items[0]).toMatchObject({ created: true, task: { queue, type: 'api.min', state: 'queued', priority: 0, idempotencyKey: null } });
      }
      // The SDK's enqueueManyIds asks for it; bad input is still all or nothing.
      const viaSdk = await producer.enqueueManyIds([{ type: 'api.min', queue, payload: 'f' }, { type: 'api.min', queue, idempotencyKey: 'new' }]);
      expect(viaSdk.existing).toEqual([1]);
      expect(viaSdk.ids[1]).toBe(ids[3]);
      expect((await producer.getTask(viaSdk.ids[0]!)).payload).toBe('f');
      const before = (await producer.listTasks({ queue, limit: 500 })).items.length;
      const bad = await raw(svc, 'POST', '/api/v1/tasks/batch', {
        key: producerKey, body: { tasks: [{ type: 'api.min', queue }, { type: 'api.min', queue, priority: 'high' }] }, headers: { prefer: 'return=minimal' },
      });
      expect(bad.status).toBe(400);
      expect(bad.body.errors.map((e: { field: string }) => e.field)).toContain('/body/tasks/1/priority');
      expect((await producer.listTasks({ queue, limit: 500 })).items.length).toBe(before);
    });

    it('gets a task with every attempt: a failure, then the success', async () => {
      const queue = freshQueue('attempts');
      const task = await producer.enqueue({ type: 'api.attempts', queue, payload: { x: 1 }, backoff: NOW_BACKOFF });
      const workerId = await registerOn(queue);
      const first = await worker.claim(workerId, { waitMs: 0 });
      expect(first.tasks.map((t) => [t.id, t.attempt, t.attemptsLeft])).toEqual([[task.id, 1, 4]]);
      const failed = await worker.reportResults(workerId, [{
        id: task.id, attempt: 1, status: 'failed', error: { message: 'smtp down', stack: 'Error: smtp down\n    at send' },
        logs: [{ at: new Date().toISOString(), level: 'warn', message: 'retrying' }],
      }]);
      expect(failed.results).toEqual([{ id: task.id, status: 'accepted' }]);
      expect((await producer.getTask(task.id)).state).toBe('queued');
      const second = await worker.claim(workerId, { waitMs: 0 });
      expect(second.tasks.map((t) => [t.id, t.attempt])).toEqual([[task.id, 2]]);
      await worker.reportResults(workerId, [{ id: task.id, attempt: 2, status: 'succeeded', result: { sent: true } }]);

      const got = await producer.getTask(task.id);
      expect(got).toMatchObject({
        id: task.id, state: 'succeeded', attempt: 2, result: { sent: true },
        lastError: { message: 'smtp down', attempt: 1 },
      });
      expect(got.finishedAt).not.toBeNull();
      expect(got.attempts.map((a) => [a.attempt, a.outcome, a.workerId])).toEqual([[1, 'failed', workerId], [2, 'succeeded', workerId]]);
      expect(got.attempts[0]!.error).toMatchObject({ message: 'smtp down', stack: 'Error: smtp down\n    at send' });
      expect(got.attempts[0]!.logs).toEqual([expect.objectContaining({ level: 'warn', message: 'retrying' })]);
      for (const a of got.attempts) {
        expect(a.finishedAt).not.toBeNull();
        expect(a.durationMs).toBeGreaterThanOrEqual(0);
      }
    });

    it('lists with filters: repeated state, queue, type, tag, createdFrom and createdBefore', async () => {
      const queue = freshQueue('list');
      const early = await producer.enqueueMany([
        { type: 'list.a', queue, tags: ['red'] },
        { type: 'list.b', queue, tags: ['blue'] },
      ]);
      // Distinct creation times without sleeping: tick a task into another queue until the
      // database clock has moved past the first batch by a millisecond (the API's resolution).
      const scratch = freshQueue('list.tick');
      while ((await producer.enqueue({ type: 'tick', queue: scratch })).createdAt <= early.items[0]!.task.createdAt);
      const late = await producer.enqueueMany([{ type: 'list.a', queue, tags: ['red', 'blue'], delayMs: 3_600_000 }]);
      const cancelled = await producer.enqueue({ type: 'list.b', queue });
      await producer.cancelTask(cancelled.id);
      const [a, b] = early.items.map((i) => i.task);
      const scheduled = late.items[0]!.task;
      expect(scheduled.state).toBe('scheduled');
      const all = (await producer.listTasks({ queue, limit: 500 })).items;
      const ids = (ts: { id: string }[]) => ts.map((t) => t.id);

      // Newest first, only this queue.
      expect(ids(all)).toEqual([...all].map((t) => t.id).sort((x, y) => Number(BigInt(y) - BigInt(x))));
      expect(all.every((t) => t.queue === queue)).toBe(true);
      expect(ids((await producer.listTasks({ queue, state: ['queued'] })).items).sort()).toEqual([a!.id, b!.id].sort());
      expect(ids((await producer.listTasks({ queue, state: ['scheduled', 'cancelled'] })).items).sort()).toEqual([scheduled.id, cancelled.id].sort());
      // The repeated parameter, spelled out.
      const rawList = await raw(svc, 'GET', `/api/v1/tasks?queue=${queue}&state=queued&state=cancelled`);
      expect(rawList.status).toBe(200);
      expect(ids(rawList.body.items).sort()).toEqual([a!.id, b!.id, cancelled.id].sort());
      expect(ids((await producer.listTasks({ queue, type: 'list.a' })).items).sort()).toEqual([a!.id, scheduled.id].sort());
      expect(ids((await producer.listTasks({ queue, tag: 'blue' })).items).sort()).toEqual([b!.id, scheduled.id].sort());
      expect(ids((await producer.listTasks({ queue, tag: 'red', type: 'list.a', state: ['queued'] })).items)).toEqual([a!.id]);

      // Time bounds are [createdFrom, createdBefore), at the API's millisecond resolution.
      const boundary = scheduled.createdAt;
      const from = (await producer.listTasks({ queue, createdFrom: boundary, limit: 500 })).items;
      const before = (await producer.listTasks({ queue, createdBefore: boundary, limit: 500 })).items;
      expect(ids(from).sort()).toEqual(ids(all.filter((t) => t.createdAt >= boundary)).sort());
      expect(ids(before).sort()).toEqual(ids(all.filter((t) => t.createdAt < boundary)).sort());
      expect(ids(before).sort()).toEqual([a!.id, b!.id].sort());
      expect(ids(from).sort()).toEqual([scheduled.id, cancelled.id].sort());
      expect(ids((await producer.listTasks({ queue, createdFrom: early.items[0]!.task.createdAt, createdBefore: boundary })).items).sort())
        .toEqual([a!.id, b!.id].sort());
    });

    it('pages through a list with cursors: every task once, newest first, null cursor at the end', async () => {
      const queue = freshQueue('pages');
      const created = (await producer.enqueueMany(Array.from({ length: 7 }, (_, i) => ({ type: 'page', queue, payload: i })))).items.map((i) => i.task.id);
      const seen: string[] = [];
      const sizes: number[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await producer.listTasks({ queue, limit: 3, cursor });
        seen.push(...page.items.map((t) => t.id));
        sizes.push(page.items.length);
        if (page.nextCursor === null) break;
        cursor = page.nextCursor;
      }
      expect(sizes).toEqual([3, 3, 1]);
      expect(seen).toEqual([...created].reverse());
      // Exactly a page's worth: the last full page still hands out a cursor, the next is empty.
      const whole = await producer.listTasks({ queue, limit: 7 });
      expect(whole.items).toHaveLength(7);
      expect(whole.nextCursor).not.toBeNull();
      expect(await producer.listTasks({ queue, limit: 7, cursor: whole.nextCursor! })).toEqual({ items: [], nextCursor: null });
    });

    it('changes priority and run time of a waiting task', async () => {
      const queue = freshQueue('patch');
      const task = await producer.enqueue({ type: 'api.patch', queue });
      const prioritised = await producer.updateTask(task.id, { priority: 7 });
      expect(prioritised).toMatchObject({ id: task.id, priority: 7, state: 'queued' });
      const later = new Date(Date.parse(task.createdAt) + 86_400_000).toISOString();
      const scheduled = await producer.updateTask(task.id, { runAt: later });
      expect(scheduled).toMatchObject({ priority: 7, state: 'scheduled', runAt: later });
      const now = await producer.updateTask(task.id, { runAt: '2001-01-01T00:00:00.000Z', priority: -1 });
      expect(now).toMatchObject({ priority: -1, state: 'queued', runAt: '2001-01-01T00:00:00.000Z' });
    });

    it('cancels a waiting task at once, and a running one at its next heartbeat', async () => {
      const queue = freshQueue('cancel');
      const waiting = await producer.enqueue({ type: 'api.cancel', queue, delayMs: 60_000 });
      const cancelled = await producer.cancelTask(waiting.id);
      expect(cancelled).toMatchObject({ id: waiting.id, state: 'cancelled', cancelRequested: false });
      expect(cancelled.finishedAt).not.toBeNull();

      const { task, workerId, attempt } = await runningTask(freshQueue('cancel'));
      expect(await worker.heartbeat(workerId)).toEqual({ held: [task.id], cancel: [] });
      const flagged = await producer.cancelTask(task.id);
      expect(flagged).toMatchObject({ state: 'running', cancelRequested: true });
      expect(await worker.heartbeat(workerId)).toEqual({ held: [task.id], cancel: [task.id] });
      // The worker aborts and reports the failure: the task ends cancelled, not retried.
      await worker.reportResults(workerId, [{ id: task.id, attempt, status: 'failed', error: { message: 'aborted' } }]);
      expect(await producer.getTask(task.id)).toMatchObject({ state: 'cancelled', cancelRequested: false });
    });

    it('retries a dead task and a cancelled one with a fresh retry budget', async () => {
      const queue = freshQueue('retry');
      const { task, workerId, attempt } = await runningTask(queue, { maxAttempts: 1 });
      await worker.reportResults(workerId, [{ id: task.id, attempt, status: 'failed', error: { message: 'no' } }]);
      expect(await producer.getTask(task.id)).toMatchObject({ state: 'dead', deadReason: 'exhausted' });
      const retried = await producer.retryTask(task.id);
      expect(retried).toMatchObject({ id: task.id, state: 'queued', attempt: 1, attemptBase: 1, deadReason: null, finishedAt: null });
      const again = await worker.claim(workerId, { waitMs: 0 });
      expect(again.tasks.map((t) => [t.id, t.attempt, t.attemptsLeft])).toEqual([[task.id, 2, 0]]);

      const other = await producer.enqueue({ type: 'api.retry', queue: freshQueue('retry') });
      await producer.cancelTask(other.id);
      expect(await producer.retryTask(other.id)).toMatchObject({ id: other.id, state: 'queued' });
    });
  });

  describe('dead-letter queue', () => {
    /** `n` tasks of `queue` that failed for good. */
    async function deadTasks(queue: string, n: number, type = 'api.dead'): Promise<string[]> {
      const items = (await producer.enqueueMany(Array.from({ length: n }, (_, i) => ({ type, queue, payload: i, maxAttempts: 1 })))).items;
      const workerId = await registerOn(queue);
      const { tasks } = await worker.claim(workerId, { max: n, waitMs: 0 });
      expect(tasks).toHaveLength(n);
      const { results } = await worker.reportResults(workerId, tasks.map((t) => ({
        id: t.id, attempt: t.attempt, status: 'failed' as const, error: { message: 'bad' }, retryable: false,
      })));
      expect(results.every((r) => r.status === 'accepted')).toBe(true);
      return items.map((i) => i.task.id);
    }

    it('lists dead tasks of a queue, newest first, with cursors', async () => {
      const queue = freshQueue('dlq.list');
      const ids = await deadTasks(queue, 3);
      const first = await admin.listDead({ queue, limit: 2 });
      expect(first.items.map((t) => t.id)).toEqual([ids[2], ids[1]]);
      expect(first.items.every((t) => t.state === 'dead' && t.deadReason === 'unrecoverable')).toBe(true);
      const second = await admin.listDead({ queue, limit: 2, cursor: first.nextCursor! });
      expect(second).toMatchObject({ items: [{ id: ids[0] }], nextCursor: null });
      expect((await admin.listDead({ queue, type: 'other' })).items).toEqual([]);
    });

    it('requeues by ids with one outcome per id', async () => {
      const queue = freshQueue('dlq.ids');
      const [dead] = await deadTasks(queue, 1);
      const alive = await producer.enqueue({ type: 'api.alive', queue });
      const res = await admin.requeueDead({ ids: [dead!, '999999999', alive.id] });
      expect(res).toEqual({
        requeued: 1,
        items: [{ id: dead, status: 'requeued' }, { id: '999999999', status: 'not_found' }, { id: alive.id, status: 'invalid_state' }],
      });
      expect(await producer.getTask(dead!)).toMatchObject({ state: 'queued', deadReason: null });
      const [one] = await deadTasks(freshQueue('dlq.one'), 1);
      expect(await admin.requeueDeadOne(one!)).toMatchObject({ id: one, state: 'queued' });
    });

    it('requeues every dead task of a queue (and type); the whole DLQ only with all: true', async () => {
      const queue = freshQueue('dlq.queue');
      const ofType = await deadTasks(queue, 2, 'api.dead.a');
      const otherType = await deadTasks(queue, 1, 'api.dead.b');
      expect(await admin.requeueDead({ queue, type: 'api.dead.a' })).toEqual({ requeued: 2 });
      for (const id of ofType) expect((await producer.getTask(id)).state).toBe('queued');
      expect((await producer.getTask(otherType[0]!)).state).toBe('dead');
      expect(await admin.requeueDead({ queue })).toEqual({ requeued: 1 });

      const elsewhere = await deadTasks(freshQueue('dlq.all'), 2);
      const refused = await apiError(admin.requeueDead({ type: 'api.dead' }));
      expect(refused).toMatchObject({ status: 400, code: 'validation_failed' });
      expect(refused.problem?.errors?.map((e) => e.field)).toEqual(['/body']);
      for (const id of elsewhere) expect((await producer.getTask(id)).state).toBe('dead');
      const all = await admin.requeueDead({ all: true });
      expect(all.requeued).toBeGreaterThanOrEqual(2);
      for (const id of elsewhere) expect((await producer.getTask(id)).state).toBe('queued');
    });

    it('purges the dead tasks of a queue and nothing else', async () => {
      const queue = freshQueue('dlq.purge');
      const ids = await deadTasks(queue, 2);
      const other = await deadTasks(freshQueue('dlq.keep'), 1);
      expect(await admin.purgeDead({ queue })).toEqual({ purged: 2 });
      expect((await admin.listDead({ queue })).items).toEqual([]);
      for (const id of ids) expect(await apiError(producer.getTask(id))).toMatchObject({ status: 404, code: 'not_found' });
      expect((await producer.getTask(other[0]!)).state).toBe('dead');
    });
  });

  describe('queues', () => {
    it('lists queues with counts per state and the age of the oldest ready task', async () => {
      const queue = freshQueue('counts');
      const [q1, q2] = (await producer.enqueueMany([{ type: 'c', queue }, { type: 'c', queue }])).items.map((i) => i.task);
      await producer.enqueue({ type: 'c', queue, delayMs: 3_600_000 });
      const { items } = await producer.listQueues();
      const info = items.find((q) => q.name === queue)!;
      expect(info).toMatchObject({ name: queue, paused: false, pausedAt: null, counts: { queued: 2, scheduled: 1 } });
      expect(info.oldestReadyAt).toBe([q1!.runAt, q2!.runAt].sort()[0]);
      expect(Number.isInteger(info.oldestReadyAgeMs)).toBe(true);
      expect(info.oldestReadyAgeMs).toBeGreaterThanOrEqual(0);
      expect(await producer.getQueue(queue)).toMatchObject({ name: queue, counts: { queued: 2, scheduled: 1 } });

      // Nothing ready: no oldest task, age 0.
      const workerId = await registerOn(queue);
      expect((await worker.claim(workerId, { max: 10, waitMs: 0 })).tasks).toHaveLength(2);
      expect(await producer.getQueue(queue)).toMatchObject({ counts: { running: 2, scheduled: 1 }, oldestReadyAt: null, oldestReadyAgeMs: 0 });
    });

    it('pauses a queue (its tasks are not claimed) and resumes it (they are)', async () => {
      const queue = freshQueue('pause');
      const paused = await admin.pauseQueue(queue); // before its first task
      expect(paused).toMatchObject({ name: queue, paused: true, counts: {} });
      expect(paused.pausedAt).not.toBeNull();
      const task = await producer.enqueue({ type: 'api.pause', queue });
      const workerId = await registerOn(queue);
      expect(await worker.claim(workerId, { max: 5, waitMs: 0 })).toEqual({ tasks: [] });
      expect((await producer.getTask(task.id)).state).toBe('queued');
      expect((await producer.listQueues()).items.find((q) => q.name === queue)).toMatchObject({ paused: true, counts: { queued: 1 } });

      expect(await admin.resumeQueue(queue)).toMatchObject({ name: queue, paused: false, pausedAt: null });
      const { tasks } = await worker.claim(workerId, { max: 5, waitMs: 0 });
      expect(tasks.map((t) => t.id)).toEqual([task.id]);
    });
  });

  describe('worker protocol', () => {
    it('register → claim → results: the task succeeds with its result', async () => {
      const queue = freshQueue('proto');
      const reg = await raw(svc, 'POST', '/api/v1/workers', { key: workerKey, body: { name: 'proto', queues: [queue, { name: freshQueue('proto'), weight: 2 }], concurrency: 4, metadata: { host: 'h1' } } });
      expect(reg.status).toBe(201);
      expect(reg.headers.get('location')).toBe(`/api/v1/workers/${reg.body.id}`);
      expect(reg.body).toMatchObject({ name: 'proto', concurrency: 4, metadata: { host: 'h1' }, state: 'active', running: 0, workerTtlMs: 600_000 });
      expect(reg.body.queues).toEqual([{ name: queue, weight: 1 }, { name: expect.any(String), weight: 2 }]);
      expect(reg.body.heartbeatIntervalMs).toBeGreaterThan(0);
      expect(reg.body.heartbeatIntervalMs).toBeLessThan(reg.body.workerTtlMs);
      const workerId = reg.body.id as string;

      const task = await producer.enqueue({ type: 'api.proto', queue, payload: { n: 1 }, priority: 2, tags: ['t'], timeoutMs: 60_000 });
      const claim = await worker.claim(workerId, { max: 10, waitMs: 0 });
      expect(claim.results).toBeUndefined();
      expect(claim.tasks).toHaveLength(1);
      expect(claim.tasks[0]).toMatchObject({
        id: task.id, queue, type: 'api.proto', attempt: 1, attemptsLeft: 4, priority: 2, payload: { n: 1 },
        payloadBase64: null, contentType: null, timeoutMs: 60_000, tags: ['t'], createdAt: task.createdAt,
      });
      expect(Date.parse(claim.tasks[0]!.leaseExpiresAt)).toBeGreaterThan(Date.parse(task.createdAt));
      expect(await worker.getWorker(workerId)).toMatchObject({ id: workerId, running: 1 });
      expect(await producer.getTask(task.id)).toMatchObject({ state: 'running', workerId, attempt: 1 });

      const res = await worker.reportResults(workerId, [{ id: task.id, attempt: 1, status: 'succeeded', result: ['done', 1] }]);
      expect(res).toEqual({ results: [{ id: task.id, status: 'accepted' }] });
      expect(await producer.getTask(task.id)).toMatchObject({ state: 'succeeded', result: ['done', 1], leaseExpiresAt: null });
      // A second report of the same attempt (a retried request) is a duplicate and changes nothing.
      expect(await worker.reportResults(workerId, [{ id: task.id, attempt: 1, status: 'succeeded', result: 'again' }]))
        .toEqual({ results: [{ id: task.id, status: 'duplicate' }] });
      expect((await producer.getTask(task.id)).result).toEqual(['done', 1]);
      // Another worker reporting on that attempt is stale.
      const intruder = await registerOn(task.queue);
      expect(await worker.reportResults(intruder, [{ id: task.id, attempt: 1, status: 'succeeded', result: 'forged' }]))
        .toEqual({ results: [{ id: task.id, status: 'stale' }] });
    });

    it('hands a worker JSON payloads exactly as submitted', async () => {
      const queue = freshQueue('payload');
      const json = { s: 'héllo ✓ 🚀 "quoted" \\ back\nslash\t\u007f\u2028', n: 12345.678, big: 9007199254740991, neg: -0.5, t: true, f: false, z: null, a: [[], {}, [1, [2, [3]]]], e: '' };
      const t1 = await producer.enqueue({ type: 'api.json', queue, payload: json, priority: 2 });
      const t2 = await producer.enqueue({ type: 'api.none', queue });
      const t3 = await producer.enqueue({ type: 'api.scalar', queue, payload: 'just a string', priority: -1 });
      const workerId = await registerOn(queue);
      const { tasks } = await worker.claim(workerId, { max: 10, waitMs: 0 });
      expect(tasks.map((t) => t.id)).toEqual([t1.id, t2.id, t3.id]);
      expect(tasks[0]).toMatchObject({ payload: json, payloadBase64: null, contentType: null });
      expect(tasks[1]).toMatchObject({ payload: null, payloadBase64: null, contentType: null });
      expect(tasks[2]!.payload).toBe('just a string');
      expect((await producer.getTask(t1.id)).payload).toEqual(json);
    });

    it('round-trips payloadBase64 bytes, every byte value, short and long', async () => {
      const queue = freshQueue('bytes');
      const short = Buffer.from([0, 1, 255]);
      const long = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(1000)]);
      const t1 = await producer.enqueue({ type: 'api.bytes', queue, payloadBase64: short.toString('base64'), priority: 1 });
      const t2 = await producer.enqueue({ type: 'api.bytes', queue, payloadBase64: long.toString('base64'), contentType: 'application/x-protobuf' });
      expect(t1).toMatchObject({ payload: null, payloadBase64: short.toString('base64'), contentType: 'application/octet-stream' });
      expect(t2).toMatchObject({ payloadBase64: long.toString('base64'), contentType: 'application/x-protobuf' });
      // Read back as stored: the same text, not just the same bytes.
      expect((await producer.getTask(t2.id)).payloadBase64).toBe(long.toString('base64'));
      const workerId = await registerOn(queue);
      const { tasks } = await worker.claim(workerId, { max: 10, waitMs: 0 });
      expect(tasks.map((t) => t.id)).toEqual([t1.id, t2.id]);
      expect(tasks[0]).toMatchObject({ payload: null, contentType: 'application/octet-stream' });
      expect(Buffer.from(tasks[0]!.payloadBase64!, 'base64').equals(short)).toBe(true);
      expect(tasks[1]).toMatchObject({ payload: null, contentType: 'application/x-protobuf', payloadBase64: long.toString('base64') });
    });

    it('settles results piggybacked on a claim and returns their outcomes with the new tasks', async () => {
      const queue = freshQueue('piggy');
      const [a, b, c] = (await producer.enqueueMany([1, 2, 3].map((i) => ({ type: 'api.piggy', queue, payload: i, backoff: NOW_BACKOFF })))).items.map((i) => i.task);
      const workerId = await registerOn(queue);
      const first = await worker.claim(workerId, { max: 2, waitMs: 0 });
      expect(first.tasks.map((t) => t.id)).toEqual([a!.id, b!.id]);
      const second = await worker.claim(workerId, {
        max: 5, waitMs: 0,
        results: [
          { id: a!.id, attempt: 1, status: 'succeeded', result: 'A' },
          { id: b!.id, attempt: 1, status: 'failed', error: { message: 'B failed' } },
          { id: c!.id, attempt: 1, status: 'succeeded' }, // not claimed yet: stale
        ],
      });
      expect(second.results).toEqual([
        { id: a!.id, status: 'accepted' }, { id: b!.id, status: 'accepted' }, { id: c!.id, status: 'stale' },
      ]);
      // b failed with no retry delay and is claimable again in the same call, attempt 2.
      expect(second.tasks.map((t) => [t.id, t.attempt]).sort()).toEqual([[b!.id, 2], [c!.id, 1]].sort());
      expect(await producer.getTask(a!.id)).toMatchObject({ state: 'succeeded', result: 'A' });
      expect((await producer.getTask(b!.id)).attempts.map((x) => x.outcome)).toEqual(['failed', 'running']);

      // Results with nothing left to claim still come back.
      const third = await worker.claim(workerId, {
        waitMs: 0, results: second.tasks.map((t) => ({ id: t.id, attempt: t.attempt, status: 'succeeded' as const })),
      });
      expect(third).toEqual({ tasks: [], results: second.tasks.map((t) => ({ id: t.id, status: 'accepted' })) });
    });

    it('settles compact successes (id:attempt pairs) on a claim and on the results endpoint, answering a count and the exceptions', async () => {
      const queue = freshQueue('compact');
      const [a, b, c, d, e] = (await producer.enqueueMany([1, 2, 3, 4, 5].map((i) => ({ type: 'api.compact', queue, payload: i })))).items.map((i) => i.task);
      const workerId = await registerOn(queue);
      const first = await worker.claim(workerId, { max: 3, waitMs: 0 });
      expect(first.tasks.map((t) => t.id)).toEqual([a!.id, b!.id, c!.id]);
      const second = await worker.claim(workerId, {
        max: 1, waitMs: 0,
        results: [{ id: a!.id, attempt: 1, status: 'succeeded', result: 'A' }],
        // b succeeds; c is reported with a wrong attempt and d is not claimed yet (both stale);
        // a is reported a second time (not this worker's current attempt any more: stale).
        succeeded: `${b!.id}:1,${c!.id}:2,${d!.id}:1,${a!.id}:1`,
      });
      expect(second.results).toEqual([{ id: a!.id, status: 'accepted' }]);
      expect(second.succeeded).toEqual({ accepted: 1, duplicate: [], stale: [c!.id, d!.id, a!.id] });
      expect(second.tasks.map((t) => t.id)).toEqual([d!.id]);
      expect(await producer.getTask(a!.id)).toMatchObject({ state: 'succeeded', result: 'A' });
      expect(await producer.getTask(b!.id)).toMatchObject({ state: 'succeeded', result: null });
      expect(await producer.getTask(c!.id)).toMatchObject({ state: 'running', attempt: 1 });

      // The results endpoint: compact successes alone; a repeat of one already settled by this
      // worker is a duplicate.
      const out = await worker.call('reportResults', { params: { id: workerId }, body: { succeeded: `${c!.id}:1,${d!.id}:1,${b!.id}:1` } });
      expect(out).toEqual({ results: [], succeeded: { accepted: 2, duplicate: [b!.id], stale: [] } });
      expect((await Promise.all([c, d].map((t) => producer.getTask(t!.id)))).map((t) => t.state)).toEqual(['succeeded', 'succeeded']);
      // Without compact successes the answer is as before: no `succeeded` field.
      const [last] = (await worker.claim(workerId, { max: 1, waitMs: 0 })).tasks;
      expect(last!.id).toBe(e!.id);
      expect(await worker.call('reportResults', { params: { id: workerId }, body: { results: [{ id: e!.id, attempt: 1, status: 'succeeded' }] } }))
        .toEqual({ results: [{ id: e!.id, status: 'accepted' }] });
    });

    it('reports one result on the single-result endpoint', async () => {
      const { task, workerId, attempt } = await runningTask(freshQueue('single'));
      expect(await worker.reportResult(workerId, task.id, { attempt, status: 'succeeded', result: { ok: true } }))
        .toEqual({ id: task.id, status: 'accepted' });
      expect(await producer.getTask(task.id)).toMatchObject({ state: 'succeeded', result: { ok: true } });
      expect(await worker.reportResult(workerId, task.id, { attempt, status: 'succeeded' }))
        .toEqual({ id: task.id, status: 'duplicate' });
      expect(await apiError(worker.reportResult(workerId, task.id, { attempt: attempt + 1, status: 'succeeded' })))
        .toMatchObject({ status: 409, code: 'stale_attempt' });
    });

    it('heartbeats return the held tasks; deregistering hands them back to the queue at once', async () => {
      const queue = freshQueue('dereg');
      const [a, b] = (await producer.enqueueMany([{ type: 'api.d', queue, backoff: NOW_BACKOFF }, { type: 'api.d', queue, backoff: NOW_BACKOFF }])).items.map((i) => i.task);
      const workerId = await registerOn(queue);
      const { tasks } = await worker.claim(workerId, { max: 2, waitMs: 0 });
      expect(tasks).toHaveLength(2);
      const beat = await worker.heartbeat(workerId);
      expect(beat.held.sort()).toEqual([a!.id, b!.id].sort());
      expect(beat.cancel).toEqual([]);

      expect(await worker.deregisterWorker(workerId)).toEqual({ released: 2 });
      for (const t of [a!, b!]) {
        const got = await producer.getTask(t.id);
        expect(got).toMatchObject({ state: 'queued', workerId: null, attempt: 1 });
        expect(got.attempts.map((x) => x.outcome)).toEqual(['abandoned']);
      }
      expect(await worker.getWorker(workerId)).toMatchObject({ state: 'stopped', running: 0 });
      expect(await worker.deregisterWorker(workerId)).toEqual({ released: 0 }); // idempotent
      // Another worker takes them, as a next attempt.
      const next = await registerOn(queue);
      const again = await worker.claim(next, { max: 5, waitMs: 0 });
      expect(again.tasks.map((t) => t.attempt)).toEqual([2, 2]);
    });

    it('deregistering with the tasks it started refunds the attempt of the held tasks it never saw', async () => {
      const queue = freshQueue('dereg');
      const [a, b] = (await producer.enqueueMany([{ type: 'api.d', queue, maxAttempts: 1 }, { type: 'api.d', queue, maxAttempts: 1 }])).items.map((i) => i.task);
      const workerId = await registerOn(queue);
      expect((await worker.claim(workerId, { max: 2, waitMs: 0 })).tasks.map((t) => t.id)).toEqual([a!.id, b!.id]);
      // A ran (cut short); B's claim answer never reached the worker.
      expect(await worker.deregisterWorker(workerId, [{ id: a!.id, attempt: 1 }])).toEqual({ released: 2 });
      expect(await producer.getTask(a!.id)).toMatchObject({ state: 'dead', deadReason: 'exhausted', attempt: 1, attemptBase: 0 });
      const got = await producer.getTask(b!.id);
      expect(got).toMatchObject({ state: 'queued', workerId: null, attempt: 1, attemptBase: 1 });
      expect(got.attempts.map((x) => x.outcome)).toEqual(['abandoned']);
    });

    it('lists workers, newest first, filtered by state', async () => {
      const w1 = await registerOn(freshQueue('wl'));
      const w2 = await registerOn(freshQueue('wl'));
      await worker.deregisterWorker(w1);
      const active = await admin.listWorkers({ state: ['active'], limit: 500 });
      expect(active.items.map((w) => w.id)).toContain(w2);
      expect(active.items.map((w) => w.id)).not.toContain(w1);
      const stopped = await admin.listWorkers({ state: ['stopped'], limit: 500 });
      expect(stopped.items.map((w) => w.id)).toContain(w1);
      const page1 = await admin.listWorkers({ limit: 1 });
      const page2 = await admin.listWorkers({ limit: 1, cursor: page1.nextCursor! });
      expect(page1.items[0]!.id).toBe(w2);
      expect(page2.items[0]!.id).toBe(w1);
    });
  });

  describe('API keys', () => {
    it('creates a key (the secret once), lists keys without secrets, revokes', async () => {
      const res = await raw(svc, 'POST', '/api/v1/api-keys', { body: { name: 'ci producer', scopes: ['producer', 'worker'] } });
      expect(res.status).toBe(201);
      const { key, secret } = res.body as { key: { id: string; prefix: string }; secret: string };
      expect(secret).toMatch(/^tf_/);
      expect(secret.length).toBeGreaterThanOrEqual(32);
      expect(key).toMatchObject({ name: 'ci producer', scopes: ['producer', 'worker'], revokedAt: null, prefix: secret.slice(0, key.prefix.length) });
      expect(key.prefix.length).toBeLessThan(secret.length / 2);

      const listed = await admin.listApiKeys();
      expect(listed.items.map((k) => k.id)).toContain(key.id);
      const text = JSON.stringify(listed);
      expect(text).not.toContain(secret);
      expect(text).not.toContain(svc.adminKey);
      for (const k of listed.items) expect(Object.keys(k).sort()).toEqual(['createdAt', 'id', 'lastUsedAt', 'name', 'prefix', 'revokedAt', 'scopes']);

      // The key works for its scopes...
      const ok = await raw(svc, 'GET', '/api/v1/queues', { key: secret });
      expect(ok.status).toBe(200);
      // ...until it is revoked.
      const revoked = await admin.revokeApiKey(key.id);
      expect(revoked).toMatchObject({ id: key.id });
      expect(revoked.revokedAt).not.toBeNull();
      expect((await raw(svc, 'GET', '/api/v1/queues', { key: secret })).status).toBe(401);
      expect((await admin.listApiKeys()).items.find((k) => k.id === key.id)?.revokedAt).toBe(revoked.revokedAt);
    });
  });

  describe('health and documents', () => {
    it('serves /healthz and /readyz without a key', async () => {
      const health = await fetch(`${svc.url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'pass', version: '1' });
      const ready = await fetch(`${svc.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { status: string }).status).toBe('pass');
      expect(await admin.healthz()).toEqual({ status: 'pass', version: '1' });
    });

    it('serves an OpenAPI 3.1 document listing every route of the contract', async () => {
      const res = await raw(svc, 'GET', '/api/v1/openapi.json');
      expect(res.status).toBe(200);
      const doc = res.body as { openapi: string; info: { title: string }; paths: Record<string, Record<string, { operationId?: string; responses?: Record<string, unknown> }>> };
      expect(doc.openapi).toMatch(/^3\.1\./);
      expect(doc.info.title).toBeTruthy();
      const expected = Object.entries(routes).map(([name, r]) => [r.method.toLowerCase(), r.path.replace(/:([A-Za-z]+)/g, '{$1}'), name]);
      for (const [method, path, name] of expected) {
        const op = doc.paths[path!]?.[method!];
        expect(op, `${method} ${path}`).toBeDefined();
        expect(op!.operationId).toBe(name);
        expect(Object.keys(op!.responses ?? {})).toEqual(expect.arrayContaining(Object.keys(routes[name as keyof typeof routes].response)));
      }
      // Nothing undocumented besides the document itself.
      const served = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
      expect(served.sort()).toEqual(expected.map(([m, p]) => `${m} ${p}`).sort());
    });
  });
});

describe('HTTP API races (postgres)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('postgres', { poolSize: 10, workerTtlMs: 600_000 });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('creates one task when 20 submissions with one idempotency key race', async () => {
    const queue = `race.${process.pid}`;
    const key = await newKey(svc, 'producer');
    const body = { type: 'api.race', queue, idempotencyKey: 'the-one', payload: { n: 1 } };
    const responses = await Promise.all(Array.from({ length: 20 }, () => raw(svc, 'POST', '/api/v1/tasks', { key, body })));
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    expect(responses.filter((r) => r.status === 200)).toHaveLength(19);
    const ids = new Set(responses.map((r) => r.body.id));
    expect(ids.size).toBe(1);
    for (const r of responses) {
      expect(r.headers.get('idempotent-replayed')).toBe(r.status === 200 ? 'true' : null);
      expect(r.body).toMatchObject({ queue, idempotencyKey: 'the-one', payload: { n: 1 } });
    }
    const { rows } = await svc.service.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE queue = $1`, [queue]);
    expect(rows[0]!.n).toBe(1);
  });

  it('hands each task to one worker when workers claim at once', async () => {
    const queue = `claimrace.${process.pid}`;
    const producer = await svc.clientWith(['producer']);
    const worker = await svc.clientWith(['worker']);
    const submitted = (await producer.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ type: 'api.claim', queue, payload: i })))).items.map((i) => i.task.id);
    const workers = await Promise.all(Array.from({ length: 6 }, (_, i) => worker.registerWorker({ name: `racer ${i}`, queues: [queue] })));
    const claims = await Promise.all(workers.map((w) => worker.claim(w.id, { max: 10, waitMs: 0 })));
    const claimed = claims.flatMap((c) => c.tasks.map((t) => t.id));
    expect(new Set(claimed).size).toBe(claimed.length);
    expect(claimed.length).toBe(40);
    expect(claimed.sort()).toEqual([...submitted].sort());
  });
});

describe('long-polling claims and wake-ups (postgres)', () => {
  let svc: TestService;
  /** Claim statements completed, by the engine's relaxed executor (where claims go). */
  let claimStatements = 0;
  /** Reads of a worker's state, by the engine's main executor. */
  let stateReads = 0;

  beforeAll(async () => {
    // A poll interval longer than any wait here: a claim that returns tasks was woken.
    svc = await startTestService('postgres', { pollIntervalMs: 60_000, workerTtlMs: 600_000 });
    const relaxed = svc.service.db.relaxed;
    const query = relaxed.query.bind(relaxed);
    relaxed.query = ((sql: Parameters<typeof query>[0], params?: Parameters<typeof query>[1]) => {
      if (typeof sql !== 'string' && (sql.name === 'tf_task_claim' || sql.name === 'tf_task_claim_observed')) return query(sql, params).finally(() => claimStatements++);
      return query(sql, params);
    }) as typeof relaxed.query;
    const db = svc.service.db;
    const dbQuery = db.query.bind(db);
    db.query = ((sql: Parameters<typeof dbQuery>[0], params?: Parameters<typeof dbQuery>[1]) => {
      if (typeof sql !== 'string' && sql.name === 'tf_worker_state') stateReads++;
      return dbQuery(sql, params);
    }) as typeof db.query;
  });

  afterAll(async () => {
    await svc?.stop();
  });

  /**
   * Resolves once `n` claims wait on `queue` in the hub and `looks` claim statements have
   * completed since `since` (a request subscribes before its first look: waiting for the look
   * too makes sure a task enqueued next can only reach it by a wake-up).
   */
  async function parked(queue: string, n: number, since: number, looks: number): Promise<void> {
    const ready = () => svc.service.hub.waiting(queue) === n && claimStatements - since === looks;
    for (let i = 0; i < 1000 && !ready(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(svc.service.hub.waiting(queue)).toBe(n);
    expect(claimStatements - since).toBe(looks);
  }

  it('wakes one waiting claim per ready task, the one waiting longest', async () => {
    const queue = `wakeone.${process.pid}`;
    const producer = await svc.clientWith(['producer']);
    const worker = await svc.clientWith(['worker']);
    const [a, b] = await Promise.all([0, 1].map((i) => worker.registerWorker({ name: `waiter ${i}`, queues: [queue], concurrency: 10 })));
    const before = claimStatements;
    const claimA = worker.claim(a!.id, { max: 10, waitMs: 20_000 });
    await parked(queue, 1, before, 1);
    const claimB = worker.claim(b!.id, { max: 10, waitMs: 20_000 });
    await parked(queue, 2, before, 2);
    const first = await producer.enqueue({ type: 'api.wake', queue, payload: 1 });
    expect((await claimA).tasks.map((t) => t.id)).toEqual([first.id]);
    // Each request's first look, then A's look when woken. B was not woken for a task A took:
    // waking every waiter made each of them claim once per task (give such a claim of B's
    // time to finish before counting: it must not happen at all).
    await new Promise((r) => setTimeout(r, 300));
    expect(claimStatements - before).toBe(3);
    expect(svc.service.hub.waiting(queue)).toBe(1);
    const second = await producer.enqueue({ type: 'api.wake', queue, payload: 2 });
    expect((await claimB).tasks.map((t) => t.id)).toEqual([second.id]);
    expect(claimStatements - before).toBe(4);
  });

  it('hands the wake-up on when the woken claim filled its batch', async () => {
    const queue = `handon.${process.pid}`;
    const producer = await svc.clientWith(['producer']);
    const worker = await svc.clientWith(['worker']);
    const ws = await Promise.all([0, 1, 2].map((i) => worker.registerWorker({ name: `taker ${i}`, queues: [queue], concurrency: 1 })));
    const claims: Promise<{ tasks: { id: string }[] }>[] = [];
    const before = claimStatements;
    for (const [i, w] of ws.entries()) {
      claims.push(worker.claim(w.id, { max: 1, waitMs: 20_000 }));
      await parked(queue, i + 1, before, i + 1);
    }
    // One insert, one wake-up: the first claim fills its batch of one and hands the wake-up on,
    // the second does the same; the third finds nothing and goes on waiting. Without the
    // hand-on the second task would wait for the poll interval, longer than this claim waits.
    const ids = (await producer.enqueueMany([1, 2].map((p) => ({ type: 'api.wake', queue, payload: p })))).items.map((i) => i.task.id);
    const [c0, c1] = await Promise.all(claims.slice(0, 2));
    expect([...c0!.tasks, ...c1!.tasks].map((t) => t.id).sort()).toEqual([...ids].sort());
    await parked(queue, 1, before, 6); // three first looks, three woken: the third still waits
    const third = await producer.enqueue({ type: 'api.wake', queue, payload: 3 });
    expect((await claims[2]!).tasks.map((t) => t.id)).toEqual([third.id]);
  });

  it('reads the worker\'s state for a claim that finds nothing, unless the worker was just seen active', async () => {
    const queue = `state.${process.pid}`;
    const producer = await svc.clientWith(['producer']);
    const worker = await svc.clientWith(['worker']);
    const w = await worker.registerWorker({ name: 'state reader', queues: [queue], concurrency: 5 });
    let reads = stateReads;
    expect(await worker.claim(w.id, { max: 5, waitMs: 0 })).toEqual({ tasks: [] });
    expect(stateReads - reads).toBe(1);
    const task = await producer.enqueue({ type: 'api.state', queue });
    expect((await worker.claim(w.id, { max: 5, waitMs: 0 })).tasks.map((t) => t.id)).toEqual([task.id]);
    // The claim that just returned a task is the evidence: the next, finding nothing, reads nothing.
    reads = stateReads;
    expect(await worker.claim(w.id, { max: 5, waitMs: 0 })).toEqual({ tasks: [] });
    expect(stateReads - reads).toBe(0);
  });

  it('answers 409 to a worker deregistered right after a claim that returned tasks', async () => {
    const queue = `gone.${process.pid}`;
    const producer = await svc.clientWith(['producer']);
    const worker = await svc.clientWith(['worker']);
    const w = await worker.registerWorker({ name: 'leaver', queues: [queue], concurrency: 5 });
    await producer.enqueue({ type: 'api.gone', queue });
    expect((await worker.claim(w.id, { max: 5, waitMs: 0 })).tasks).toHaveLength(1);
    await worker.deregisterWorker(w.id);
    // Not an empty answer after the wait: the node forgot what it had seen of this worker.
    const err = await apiError(worker.claim(w.id, { max: 5, waitMs: 20_000 }));
    expect(err.status).toBe(409);
    expect(err.problem?.code).toBe('worker_stopped');
  });
});
