import type { QueueWeight } from './types.ts';

/**
 * A weighted random order of queues (Efraimidis–Spirakis: sort by u^(1/w)). A claim fills its
 * batch from the first queue that has work, then the next: each queue comes first with
 * probability weight/Σweights, so over many claims the queues share the worker in proportion
 * to their weights, and every claim still filters by a single queue (one shard on Citus).
 */
export function weightedOrder(queues: readonly QueueWeight[], random: () => number = Math.random): QueueWeight[] {
  if (queues.length <= 1) return [...queues];
  return queues
    .map((q) => ({ q, key: Math.pow(random(), 1 / Math.max(q.weight, 1e-9)) }))
    .sort((a, b) => b.key - a.key)
    .map((x) => x.q);
}
