/**
 * Submissions that race on the same idempotency keys, on PostgreSQL with two nodes on one
 * schema: whatever the order and overlap of the keys, no request fails, each key makes exactly
 * one task, and every answer names that task for the key. Before the inserts ordered their
 * keys, twenty batches of the same 1,000 keys in shuffled order deadlocked in most rounds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskflowApiError, TaskflowClient } from '@taskflow/sdk';
import { freshSchema } from '@taskflow/core/test-support';
import { startTestService, type TestService } from './support/index.ts';

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Every answer's (key → task id), checked against one id per key across all answers. */
class Answers {
  readonly idOf = new Map<string, string>();
  errors: unknown[] = [];
  note(key: string, id: string): void {
    const seen = this.idOf.get(key);
    if (seen === undefined) this.idOf.set(key, id);
    else expect(id, `the task of key ${key}`).toBe(seen);
  }
}

describe('inserts racing on idempotency keys (PostgreSQL, two nodes)', () => {
  const schema = freshSchema('tfk');
  let a: TestService;
  let b: TestService;
  let clients: TaskflowClient[];
  beforeAll(async () => {
    a = await startTestService('postgres', { schema, poolSize: 10 });
    b = await startTestService('postgres', { schema, poolSize: 10, bootstrapApiKey: a.adminKey });
    // No retries: a request that failed must show as a failure. No keys made up: the tasks
    // without one stay without one.
    clients = [a, b].map((s) => new TaskflowClient({ url: s.url, apiKey: s.adminKey, retry: false, idempotencyKeys: 'none' }));
  });
  afterAll(async () => {
    await b?.service.stop();
    await a?.stop();
  });

  async function tasksOf(queue: string): Promise<Map<string, string>> {
    const byKey = new Map<string, string>();
    let cursor: string | undefined;
    do {
      const page = await a.admin.listTasks({ queue, limit: 500, ...(cursor ? { cursor } : {}) });
      for (const t of page.items) {
        if (t.idempotencyKey === null) continue;
        expect(byKey.has(t.idempotencyKey!), `key ${t.idempotencyKey} has one task`).toBe(false);
        byKey.set(t.idempotencyKey!, t.id);
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return byKey;
  }

  it('twenty concurrent batches of the same 1,000 keys in shuffled order, ten rounds: no error, one task per key', async () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
    for (let round = 0; round < 10; round++) {
      const queue = `contention.batch.${round}`;
      const answers = new Answers();
      await Promise.all(Array.from({ length: 20 }, async (_, r) => {
        const order = shuffled(keys);
        try {
          // The lean answer (ids in input order): the test's own cost stays small.
          const out = await clients[r % 2]!.enqueueManyIds(order.map((key) => ({ type: 't', queue, idempotencyKey: key })));
          expect(out.ids).toHaveLength(1000);
          out.ids.forEach((id, i) => answers.note(order[i]!, id));
        } catch (err) {
          answers.errors.push(err instanceof TaskflowApiError ? `${err.status} ${err.message}` : err);
        }
      }));
      expect(answers.errors).toEqual([]);
      const stored = await tasksOf(queue);
      expect(stored.size).toBe(1000);
      for (const [key, id] of stored) expect(answers.idOf.get(key), `the answers' task for ${key}`).toBe(id);
    }
  }, 180_000); // 200,000 submissions: seconds on an idle machine, more on a busy one

  it('single and batch submits sharing keys, coalesced on two nodes: no error, one task per key', async () => {
    const queue = 'contention.mixed';
    const keys = Array.from({ length: 300 }, (_, i) => `m${i}`);
    const answers = new Answers();
    const singles = shuffled([...keys, ...keys]).map(async (key, i) => {
      try {
        const task = await clients[i % 2]!.enqueue({ type: 't', queue, idempotencyKey: key });
        answers.note(key, task.id);
      } catch (err) {
        answers.errors.push(err instanceof TaskflowApiError ? `${err.status} ${err.message}` : err);
      }
    });
    const batches = Array.from({ length: 10 }, async (_, r) => {
      // Overlapping windows of the keys, shuffled, some with a key twice and a task without one.
      const order = shuffled(keys.slice((r * 30) % 300, ((r * 30) % 300) + 90));
      const inputs = [...order.map((key) => ({ type: 't', queue, idempotencyKey: key })), { type: 't', queue }, { type: 't', queue, idempotencyKey: order[0] }];
      try {
        const out = await clients[r % 2]!.enqueueMany(inputs);
        out.items.forEach((item, i) => {
          const key = inputs[i]!.idempotencyKey;
          if (key !== undefined) answers.note(key, item.task.id);
        });
      } catch (err) {
        answers.errors.push(err instanceof TaskflowApiError ? `${err.status} ${err.message}` : err);
      }
    });
    await Promise.all([...singles, ...batches]);
    expect(answers.errors).toEqual([]);
    const stored = await tasksOf(queue);
    expect(stored.size).toBe(300);
    for (const [key, id] of stored) expect(answers.idOf.get(key)).toBe(id);
  });
});
