/**
 * `TaskflowClient.submit` against a real service on PostgreSQL: concurrent single submissions
 * travel in batch requests (counted at the client's dispatcher), each caller gets its own
 * committed task, idempotency keys and bad tasks are answered per call, and a failed request
 * fails only its own batch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, type Dispatcher } from 'undici';
import { TaskflowApiError, TaskflowClient, TaskflowNetworkError, type SubmitOptions } from '@taskflow/sdk';
import { startTestService, type TestService } from '@taskflow/server/test-support';

/** An undici Agent that counts the requests it sends, by path. */
class CountingAgent extends Agent {
  readonly paths: string[] = [];
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.paths.push(String(opts.path));
    return super.dispatch(opts, handler);
  }
}

describe('SDK submit (coalesced single submissions)', () => {
  let tf: TestService;
  const clients: TaskflowClient[] = [];
  beforeAll(async () => {
    tf = await startTestService('postgres', { maxPayloadBytes: 4096 });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await tf.stop();
  });

  function client(submit?: SubmitOptions) {
    const agent = new CountingAgent();
    const c = new TaskflowClient({ url: tf.url, apiKey: tf.adminKey, dispatcher: agent, submit });
    clients.push(c);
    return { c, agent, close: () => agent.close() };
  }

  it('sends the submissions of a turn in a few batch requests, each call answered with its own committed task', async () => {
    const { c, agent } = client();
    const n = 300;
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => c.submit({ type: 'send', queue: 'sub1', payload: { i }, tags: [`t${i % 3}`] })));
    // 300 calls of one turn, shared out between the two requests allowed in flight.
    expect(agent.paths).toEqual(['/api/v1/tasks/batch', '/api/v1/tasks/batch']);
    expect(new Set(answers.map((a) => a.task.id)).size).toBe(n);
    expect(answers.every((a) => a.created && a.task.queue === 'sub1' && a.task.state === 'queued')).toBe(true);
    // Committed before the answer: each id holds the payload its caller sent.
    for (const i of [0, 1, 149, 150, 299]) {
      const task = await tf.admin.getTask(answers[i]!.task.id);
      expect(task.payload).toEqual({ i });
      expect(task.tags).toEqual([`t${i % 3}`]);
    }
  });

  it('keeps each call on its own: later calls wait for a free request, none is lost', async () => {
    const { c, agent } = client({ maxInFlight: 1, maxItems: 7 });
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => c.submit({ type: 'send', queue: 'sub2', payload: i })));
    expect(answers.map((a) => a.created)).toEqual(Array(50).fill(true));
    // 50 tasks at most 7 per request: at least 8 requests, one at a time.
    expect(agent.paths.length).toBeGreaterThanOrEqual(8);
    const page = await tf.admin.listTasks({ queue: 'sub2', limit: 100 });
    expect(page.items.map((t) => t.payload).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('splits by bytes as well as by count', async () => {
    const { c, agent } = client({ maxBytes: 1000 });
    const big = 'x'.repeat(300);
    await Promise.all(Array.from({ length: 10 }, (_, i) => c.submit({ type: 'send', queue: 'sub3', payload: { i, big } })));
    // ~330 bytes a task, at most 1,000 bytes a request: at least 4 requests for 10 tasks.
    expect(agent.paths.length).toBeGreaterThanOrEqual(4);
    expect((await tf.admin.listTasks({ queue: 'sub3', limit: 100 })).items).toHaveLength(10);
  });

  it('answers an idempotency key per call: the first creates, the same key in the same batch refers to it', async () => {
    const { c } = client();
    const [a, b, other] = await Promise.all([
      c.submit({ type: 'send', queue: 'sub4', payload: 1, idempotencyKey: 'k1' }),
      c.submit({ type: 'send', queue: 'sub4', payload: 2, idempotencyKey: 'k1' }),
      c.submit({ type: 'send', queue: 'sub4', payload: 3, idempotencyKey: 'k2' }),
    ]);
    expect([a!.created, b!.created, other!.created]).toEqual([true, false, true]);
    expect(b!.task.id).toBe(a!.task.id);
    const again = await c.submit({ type: 'send', queue: 'sub4', payload: 4, idempotencyKey: 'k1' });
    expect(again).toMatchObject({ created: false, task: { id: a!.task.id } });
    expect((await tf.admin.getTask(a!.task.id)).payload).toBe(1);
  });

  it('fails only the bad task of a batch, with the problem the server gave for it', async () => {
    const { c } = client();
    const results = await Promise.allSettled([
      c.submit({ type: 'send', queue: 'sub5', payload: 'ok-1' }),
      c.submit({ type: 'send', queue: 'sub5', payload: 'x'.repeat(5000) }), // over maxPayloadBytes
      c.submit({ type: 'send', queue: 'sub5', payload: 'ok-2', maxAttempts: 0 }), // not a valid policy
      c.submit({ type: 'send', queue: 'sub5', payload: 'ok-3' }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    const tooBig = (results[1] as PromiseRejectedResult).reason;
    expect(tooBig).toBeInstanceOf(TaskflowApiError);
    expect(tooBig.status).toBe(413);
    expect(tooBig.problem.errors[0].field).toBe('/body/tasks/0/payload');
    const invalid = (results[2] as PromiseRejectedResult).reason;
    expect(invalid).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(JSON.stringify(invalid.problem)).toContain('/body/tasks/0/maxAttempts');
    const stored = (await tf.admin.listTasks({ queue: 'sub5', limit: 10 })).items.map((t) => t.payload).sort();
    expect(stored).toEqual(['ok-1', 'ok-3']);
  });

  it('rejects a task that is not JSON without touching the others', async () => {
    const { c } = client();
    const [bad, good] = await Promise.allSettled([
      c.submit({ type: 'send', queue: 'sub8', payload: { n: 1n } as never }),
      c.submit({ type: 'send', queue: 'sub8', payload: 'fine' }),
    ]);
    expect(bad.status).toBe('rejected');
    expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(TypeError);
    expect(good.status).toBe('fulfilled');
    expect((await tf.admin.listTasks({ queue: 'sub8', limit: 10 })).items.map((t) => t.payload)).toEqual(['fine']);
  });

  it('close() waits for the submissions made before it', async () => {
    const c = new TaskflowClient({ url: tf.url, apiKey: tf.adminKey });
    const calls = Array.from({ length: 20 }, (_, i) => c.submit({ type: 'send', queue: 'sub7', payload: i }));
    await c.close();
    const settled = await Promise.allSettled(calls);
    expect(settled.every((r) => r.status === 'fulfilled' && r.value.created)).toBe(true);
    expect((await tf.admin.listTasks({ queue: 'sub7', limit: 100 })).items).toHaveLength(20);
  });

  it('rejects every call of a batch whose request fails, and goes on with the next', async () => {
    const { c } = client();
    const wrongKey = new TaskflowClient({ url: tf.url, apiKey: 'tf_wrong' });
    clients.push(wrongKey);
    const denied = await Promise.allSettled([1, 2, 3].map((i) => wrongKey.submit({ type: 'send', queue: 'sub6', payload: i })));
    expect(denied.every((r) => r.status === 'rejected' && (r.reason as TaskflowApiError).status === 401)).toBe(true);

    // Nothing listens there: refused, retried within a small budget, then given up.
    const down = new TaskflowClient({ url: 'http://127.0.0.1:9', apiKey: tf.adminKey, retry: { maxAttempts: 2, baseDelayMs: 1 } });
    clients.push(down);
    const lost = await Promise.allSettled([1, 2].map((i) => down.submit({ type: 'send', queue: 'sub6', payload: i })));
    expect(lost.every((r) => r.status === 'rejected' && r.reason instanceof TaskflowNetworkError && !r.reason.requestSent)).toBe(true);
    expect((lost[0] as PromiseRejectedResult).reason.message).toMatch(/ECONNREFUSED 127.0.0.1:9; gave up after 2 attempts/);

    expect((await c.submit({ type: 'send', queue: 'sub6', payload: 'after' })).created).toBe(true);
    expect((await tf.admin.listTasks({ queue: 'sub6', limit: 10 })).items.map((t) => t.payload)).toEqual(['after']);
  });
});
