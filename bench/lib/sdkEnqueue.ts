/**
 * Enqueues through the SDK client, as a producer would, for the benches that weigh a client
 * setting (keys.ts: made-up idempotency keys; observability.ts: metrics and tracing on and off)
 * or a queue's flow control (flow.ts, perf.ts --keys: a concurrency key on every task).
 */
import type { TaskflowClient } from '@taskflow/sdk';

/** `n` single submissions from 50 callers at once: `enqueue` each, or `submit` (coalesced). */
export async function sdkSingles(client: TaskflowClient, queue: string, n: number, coalesced: boolean): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next < n) {
      const task = { type: 'noop', queue, payload: { p: 's', i: next++ } };
      await (coalesced ? client.submit(task) : client.enqueue(task));
    }
  }));
}

/**
 * `n` tasks in batches of 1,000 (`enqueueManyIds`); with `keys`, each with one of that many
 * concurrency keys in turn (`tenant-<i mod keys>`).
 */
export async function sdkBulk(client: TaskflowClient, queue: string, n: number, keys = 0): Promise<void> {
  for (let from = 0; from < n; from += 1000) {
    const tasks = Array.from({ length: Math.min(1000, n - from) }, (_, k) => ({
      type: 'noop', queue, payload: { p: 'd', i: from + k },
      ...(keys > 0 ? { concurrencyKey: `tenant-${(from + k) % keys}` } : {}),
    }));
    await client.enqueueManyIds(tasks);
  }
}
