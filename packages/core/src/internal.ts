/**
 * `@taskflow/core/internal`: the engine's statements and the builders of their parameters,
 * for the benchmarks that run a statement alone (bench/), and its row mappings, for the tests
 * that hold the HTTP contract to the engine's shapes (packages/server/test/taskShape.test.ts).
 * Not a stable API: it follows the engine's SQL, and nothing outside this repository should
 * import it.
 */
import * as T from './sql/tasks/index.ts';
import * as F from './sql/flow.ts';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from './engine/options.ts';
import { flowColumns, insertColumns, insertDefaults, lifetimeColumns, traceColumns, type ResolvedInput } from './engine/insertColumns.ts';

export { toClaimedTask, toTask } from './engine/rows.ts';

export type { ResolvedInput };

/** The hot path's statements, by what they do. */
export const statements = {
  /** Insert with idempotency keys and the queue upsert. */
  insert: T.taskInsertMany,
  /** Insert with idempotency keys into queues known to exist. */
  insertKnownQueues: T.taskInsertManyKnownQueues,
  /** Insert of a batch without keys. */
  insertWithoutKeys: T.taskInsertManyWithoutKeys,
  /** Insert of a batch without keys into queues known to exist. */
  insertWithoutKeysKnownQueues: T.taskInsertManyWithoutKeysKnownQueues,
  /** Claim: $1 queue, $2 limit, $3 worker id, $4 now. */
  claim: T.taskClaim,
  /** Successes and the next claim: $1 successes (successesJson), $2 worker id, $3 now, $4 queue, $5 limit. */
  succeedAndClaim: T.taskSucceedAndClaim,
  /** The claim and succeedAndClaim an engine with an observer (metrics) runs instead. */
  claimObserved: T.taskClaimObserved,
  succeedAndClaimObserved: T.taskSucceedAndClaimObserved,
  /** Successes alone (a settlement that carries no claim): $1 successes, $2 worker id, $3 now. */
  succeedMany: T.taskSucceedMany,
  /** A limited queue's claim, after queueLockForClaim in its transaction: $1 queue, $2 limit, $3 worker id, $4 now. */
  queueLockForClaim: F.queueLockForClaim,
  claimLimited: F.taskClaimLimited,
} as const;

/** Every parameter of an insert statement for `items` (defaults applied), database time. */
export function insertParams(items: readonly ResolvedInput[], options: EngineOptions = DEFAULT_ENGINE_OPTIONS): unknown[] {
  return [...insertColumns(items, options), null, ...insertDefaults(options), ...traceColumns(items), ...lifetimeColumns(items), ...flowColumns(items)];
}

/** The successes parameter of succeedAndClaim: results with no value and no logs. */
export function successesJson(reports: readonly { id: string | number; attempt: number }[]): string {
  return `[${reports.map((r) => `{"id":${r.id},"attempt":${r.attempt}}`).join(',')}]`;
}
