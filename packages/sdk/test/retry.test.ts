/**
 * The client's retries against a real service on PostgreSQL: submissions made while the
 * service restarts each resolve once, with one task each; a connection that drops after the
 * commit is retried into the first task, not a second, for every call whose tasks carry keys
 * (the caller's, or made up by the client: for `enqueue` and `submit` by default, for batches
 * with `idempotencyKeys: 'all'`), and surfaces with a clear error for a submission without
 * them; 503 and 429 are retried after their
 * Retry-After. Outages and dropped answers are real: the service is stopped and started again,
 * and a real HTTP proxy (test-support's startProxy) drops answers or answers for the service.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent, type Dispatcher } from 'undici';
import { TaskflowApiError, TaskflowClient, TaskflowNetworkError, type ClientOptions } from '@taskflow/sdk';
import { startProxy, startTestService, type ProxiedRequest, type TestProxy, type TestService } from '@taskflow/server/test-support';
import { nextWait, parseRetryAfter, retryPolicy } from '../src/retry.ts';

/** An undici Agent that counts the requests it sends. */
class CountingAgent extends Agent {
  sent = 0;
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.sent++;
    return super.dispatch(opts, handler);
  }
}

const isBatch = (req: ProxiedRequest) => req.method === 'POST' && req.path === '/api/v1/tasks/batch';
const isSingle = (req: ProxiedRequest) => req.method === 'POST' && req.path === '/api/v1/tasks';

/** Drops the service's answer to the first request `match` accepts (the service has handled it). */
function dropFirst(match: (req: ProxiedRequest) => boolean) {
  let dropped = false;
  return {
    onAnswer: (req: ProxiedRequest) => {
      if (dropped || !match(req)) return 'pass' as const;
      dropped = true;
      return 'drop' as const;
    },
  };
}

const problem = (status: number, code: string) => JSON.stringify({ type: `urn:taskflow:problem:${code}`, title: code, status, detail: `${code} (from the test proxy)`, code });

describe('SDK client retries', () => {
  let tf: TestService;
  let proxy: TestProxy;
  const clients: TaskflowClient[] = [];
  beforeAll(async () => {
    tf = await startTestService('postgres');
    proxy = await startProxy(tf.url);
  });
  afterEach(() => {
    proxy.hooks = {};
    proxy.log.splice(0);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await proxy?.close();
    await tf?.stop();
  });

  function client(opts: Partial<ClientOptions> = {}) {
    const c = new TaskflowClient({ url: proxy.url, apiKey: tf.adminKey, ...opts });
    clients.push(c);
    return c;
  }
  async function tasksOf(queue: string) {
    return (await tf.admin.listTasks({ queue, limit: 500 })).items;
  }
  const requestsTo = (match: (req: ProxiedRequest) => boolean) => proxy.log.filter((e) => match(e.req));

  it('resolves every submit made while the service restarts once, with one task each', async () => {
    const queue = 'retry.restart';
    const agent = new CountingAgent();
    // Keys made up: a call whose connection breaks after sending is safe to repeat too.
    const c = new TaskflowClient({ url: tf.url, apiKey: tf.adminKey, dispatcher: agent });
    clients.push(c);
    await c.submit({ type: 'warm', queue: 'retry.warm' });
    let calls: Promise<unknown>[] = [];
    await tf.restart(async () => {
      const before = agent.sent;
      calls = [
        ...Array.from({ length: 40 }, (_, i) => c.submit({ type: 'gap', queue, payload: { i } })),
        ...Array.from({ length: 5 }, (_, i) => c.enqueue({ type: 'gap', queue, payload: { i: 40 + i } })),
      ];
      // Every call has met the outage (a refused connection) at least once before the service comes back.
      while (agent.sent < before + 7) await new Promise((r) => setTimeout(r, 10));
    });
    const answers = (await Promise.all(calls)) as { created?: boolean; task?: { id: string }; id?: string }[];
    const ids = answers.map((a) => a.task?.id ?? a.id);
    expect(answers.slice(0, 40).every((a) => a.created === true)).toBe(true);
    const stored = await tasksOf(queue);
    expect(stored).toHaveLength(45);
    expect(stored.map((t) => (t.payload as { i: number }).i).sort((a, b) => a - b)).toEqual(Array.from({ length: 45 }, (_, i) => i));
    expect(new Set(ids)).toEqual(new Set(stored.map((t) => t.id)));
    await agent.close();
  });

  it('retries a submit whose answer was lost after the commit into the first task, not a second (by default)', async () => {
    const queue = 'retry.drop-submit';
    proxy.hooks = dropFirst(isBatch);
    const answer = await client().submit({ type: 'once', queue, payload: 1 });
    const stored = await tasksOf(queue);
    expect(stored.map((t) => t.id)).toEqual([answer.task.id]);
    // Made up by the client, so the match is its own first attempt: created, as far as the caller knows.
    expect(answer).toMatchObject({ created: true, task: { idempotencyKey: expect.stringMatching(/^sdk:[0-9a-f-]{36}$/) } });
    expect(requestsTo(isBatch).map((e) => e.outcome)).toEqual(['dropped', 'forwarded']);
  });

  it('retries a coalesced batch of submits whose answer was lost: each call resolves once, with one task of its own', async () => {
    const queue = 'retry.drop-coalesced';
    proxy.hooks = dropFirst(isBatch);
    const c = client({ submit: { maxInFlight: 1 } }); // one batch request for the 25
    const answers = await Promise.all(Array.from({ length: 25 }, (_, i) => c.submit({ type: 'once', queue, payload: i })));
    // One batch request, its answer dropped after the commit, sent again: the same 25 keys.
    expect(requestsTo(isBatch).map((e) => e.outcome)).toEqual(['dropped', 'forwarded']);
    const stored = await tasksOf(queue);
    expect(stored).toHaveLength(25);
    expect(new Set(stored.map((t) => t.id))).toEqual(new Set(answers.map((a) => a.task.id)));
    expect(answers.every((a) => a.created)).toBe(true);
    const byId = new Map(stored.map((t) => [t.id, t.payload]));
    expect(answers.map((a) => byId.get(a.task.id))).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  it('retries an enqueue whose answer was lost into the first task, with the caller\'s key or one made up', async () => {
    const queue = 'retry.drop-enqueue';
    const c = client();
    proxy.hooks = dropFirst(isSingle);
    const made = await c.enqueue({ type: 'once', queue, payload: 'made up' });
    proxy.hooks = dropFirst(isSingle);
    const given = await c.enqueue({ type: 'once', queue, payload: 'given', idempotencyKey: 'order-42' });
    const stored = await tasksOf(queue);
    expect(stored.map((t) => t.id).sort()).toEqual([made.id, given.id].sort());
    expect(given.idempotencyKey).toBe('order-42');
    expect(requestsTo(isSingle).map((e) => e.outcome)).toEqual(['dropped', 'forwarded', 'dropped', 'forwarded']);
  });

  it('does not retry a submission without keys after a lost answer (idempotencyKeys: "none"): it says so, and it was committed once', async () => {
    const queue = 'retry.drop-batch';
    const none = client({ idempotencyKeys: 'none' });
    proxy.hooks = dropFirst(isBatch);
    const err = await none.enqueueMany([{ type: 'b', queue, payload: 1 }, { type: 'b', queue, payload: 2 }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskflowNetworkError);
    expect((err as TaskflowNetworkError).requestSent).toBe(true);
    expect((err as Error).message).toContain('not retried: the service may have carried it out');
    expect(requestsTo(isBatch)).toHaveLength(1);
    expect(await tasksOf(queue)).toHaveLength(2); // which is why it was not sent again

    // Without made-up keys, `submit` and `enqueue` are the same.
    proxy.hooks = dropFirst(isBatch);
    const single = await none.submit({ type: 'b', queue, payload: 3 }).catch((e: unknown) => e);
    expect((single as Error).message).toContain('not retried');
    proxy.hooks = dropFirst(isSingle);
    const one = await none.enqueue({ type: 'b', queue, payload: 4 }).catch((e: unknown) => e);
    expect((one as Error).message).toContain('not retried');
    expect(await tasksOf(queue)).toHaveLength(4);
  });

  it('retries a batch whose every task has a key (given, or made up with idempotencyKeys: "all")', async () => {
    const queue = 'retry.drop-keyed-batch';
    proxy.hooks = dropFirst(isBatch);
    const given = await client({ idempotencyKeys: 'none' }).enqueueManyIds([
      { type: 'k', queue, idempotencyKey: 'a' }, { type: 'k', queue, idempotencyKey: 'b' },
    ]);
    proxy.hooks = dropFirst(isBatch);
    const made = await client({ idempotencyKeys: 'all' }).enqueueMany([{ type: 'k', queue }, { type: 'k', queue, idempotencyKey: 'a' }]);
    const stored = await tasksOf(queue);
    expect(stored).toHaveLength(3);
    // The caller's keys matched their tasks of the first attempt: existing (position 1 again in the second call).
    expect(given.existing).toEqual([0, 1]);
    expect(made.items.map((i) => [i.created, i.task.id])).toEqual([[true, expect.any(String)], [false, given.ids[0]]]);
    expect(new Set(stored.map((t) => t.id))).toEqual(new Set([...given.ids, made.items[0]!.task.id]));
  });

  it('waits out a 503\'s Retry-After (seconds or a date) before trying again, and a 429\'s even for a batch without keys', async () => {
    const queue = 'retry.after';
    const refusals: Record<string, string>[] = [
      { status: '503', code: 'database_unavailable', after: '1' },
      { status: '503', code: 'database_unavailable', after: new Date(Date.now() + 2000).toUTCString() },
    ];
    proxy.hooks = {
      onRequest: (req) => {
        const r = isBatch(req) ? refusals.shift() : undefined;
        return r
          ? { kind: 'answer', status: Number(r.status), headers: { 'content-type': 'application/problem+json', 'retry-after': r.after! }, body: problem(Number(r.status), r.code!) }
          : { kind: 'forward' };
      },
    };
    const answer = await client().submit({ type: 'later', queue });
    const tries = requestsTo(isBatch);
    expect(tries.map((e) => e.outcome)).toEqual(['answered', 'answered', 'forwarded']);
    expect(tries[1]!.at - tries[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(tries[2]!.at).toBeGreaterThanOrEqual(tries[0]!.at + 1000); // the date: at least a second away when the second refusal came
    expect((await tasksOf(queue)).map((t) => t.id)).toEqual([answer.task.id]);

    // 429: refused before anything was written, so safe to repeat even without keys.
    refusals.push({ status: '429', code: 'queue_full', after: '0' });
    const ids = await client().enqueueManyIds([{ type: 'later', queue }]);
    expect(requestsTo(isBatch).slice(-2).map((e) => e.status)).toEqual([429, 201]);
    expect((await tasksOf(queue)).map((t) => t.id).sort()).toEqual([answer.task.id, ...ids.ids].sort());

    // 503 to a batch without keys: the database may have committed it, so it surfaces.
    refusals.push({ status: '503', code: 'database_unavailable', after: '0' });
    const refused = await client().enqueueManyIds([{ type: 'later', queue }]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TaskflowApiError);
    expect((refused as TaskflowApiError)).toMatchObject({ status: 503, code: 'database_unavailable', retryAfterMs: 0, attempts: 1 });
    expect((refused as Error).message).toContain('not retried');
  });

  it('gives up when the service asks for longer than the call may wait, saying so', async () => {
    proxy.hooks = {
      onRequest: (req) => isSingle(req)
        ? { kind: 'answer', status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': '120' }, body: problem(503, 'database_unavailable') }
        : { kind: 'forward' },
    };
    const err = await client({ retry: { maxElapsedMs: 5000 } }).enqueue({ type: 'never', queue: 'retry.budget', idempotencyKey: 'budget-1' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, attempts: 1, retryAfterMs: 120_000 });
    expect((err as Error).message).toContain('gave up after 1 attempts in 0.0 s (the service asked for 120 s more)');
  });
});

describe('retry policy', () => {
  const policy = retryPolicy({ maxAttempts: 4, maxElapsedMs: 10_000, baseDelayMs: 100, maxDelayMs: 1000 });
  const refused = new TaskflowNetworkError('refused', { requestSent: false });
  const reset = new TaskflowNetworkError('reset', { requestSent: true });
  const api = (status: number, retryAfterMs?: number) => new TaskflowApiError(status, undefined, `HTTP ${status}`, { retryAfterMs });

  it('retries what did not reach the service in any mode but none; what may have, only when idempotent', () => {
    for (const err of [refused, api(429)]) {
      expect(typeof nextWait(policy, 'unsent', err, 1, 0)).toBe('number');
      expect(typeof nextWait(policy, 'idempotent', err, 1, 0)).toBe('number');
      expect(nextWait(policy, 'none', err, 1, 0)).toBeUndefined();
    }
    for (const err of [reset, api(502), api(503), api(504)]) {
      expect(typeof nextWait(policy, 'idempotent', err, 1, 0)).toBe('number');
      expect(nextWait(policy, 'unsent', err, 1, 0)).toMatch(/^not retried/);
    }
    for (const err of [api(400), api(409), api(500), new Error('a bug')]) expect(nextWait(policy, 'idempotent', err, 1, 0)).toBeUndefined();
  });

  it('doubles its waits with jitter up to the cap, honours Retry-After, and stops at its bounds', () => {
    for (let i = 0; i < 50; i++) {
      const first = nextWait(policy, 'idempotent', refused, 1, 0) as number;
      const third = nextWait(policy, 'idempotent', refused, 3, 0) as number;
      expect(first).toBeGreaterThanOrEqual(50);
      expect(first).toBeLessThanOrEqual(100);
      expect(third).toBeGreaterThanOrEqual(200);
      expect(third).toBeLessThanOrEqual(400);
      const after = nextWait(policy, 'idempotent', api(503, 3000), 1, 0) as number;
      expect(after).toBeGreaterThanOrEqual(3000);
      expect(after).toBeLessThanOrEqual(3100);
    }
    expect(nextWait(policy, 'idempotent', refused, 4, 500)).toBe('gave up after 4 attempts in 0.5 s');
    expect(nextWait(policy, 'idempotent', api(503, 20_000), 1, 0)).toMatch(/the service asked for 20 s more/);
    expect(nextWait(retryPolicy(false), 'idempotent', refused, 1, 0)).toMatch(/^gave up after 1 attempts/);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-12-01T10:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Tue, 01 Dec 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 01 Dec 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
