/**
 * The task's shape, defined once: every field of `Task` with the column that stores it, its
 * kind, whether it may be null, and its value in a task just inserted. Derived from it: the
 * columns every task read selects (sql/tasks/columns.ts, TASK_COLUMNS), the row mapping
 * (rows.ts, toTask) and the task an insert answers (enqueue.ts, insertedTask). The server's
 * packages/server/test/taskShape.test.ts fails when the HTTP contract's Task, or the server's
 * serialisers, drift from it.
 */
import type { ResolvedInput } from './insertColumns.ts';
import type { Row } from './rows.ts';
import type { Task } from './types.ts';

/**
 * How a column's value becomes the field's:
 * - `id`: bigint, as its decimal text;
 * - `text`, `integer`, `boolean`, `json`: as the driver returns them (JSON parsed);
 * - `bytes`: bytea, as base64;
 * - `textList`: text[];
 * - `time`: timestamptz, a Date (RFC 3339 text in the HTTP contract).
 */
export type TaskFieldKind = 'id' | 'text' | 'integer' | 'boolean' | 'json' | 'bytes' | 'textList' | 'time';

export interface TaskField<K extends keyof Task = keyof Task> {
  /** The column of `tasks` that stores it. */
  column: string;
  kind: TaskFieldKind;
  /** May be null (a JSON field: may hold JSON null). */
  nullable: boolean;
  /**
   * Its value in a task just inserted, from the input (the engine's defaults applied) or the
   * row the insert returned (`id`, `state`, and `run_at`, `created_at` as RFC 3339 text).
   */
  inserted(input: ResolvedInput, row: Row): Task[K];
}

/** Every field of `Task`, in the order of the public type and the HTTP contract. */
export const TASK_FIELDS = {
  id: { column: 'id', kind: 'id', nullable: false, inserted: (_, r) => String(r.id) },
  queue: { column: 'queue', kind: 'text', nullable: false, inserted: (i) => i.queue },
  type: { column: 'type', kind: 'text', nullable: false, inserted: (i) => i.type },
  state: { column: 'state', kind: 'text', nullable: false, inserted: (_, r) => r.state },
  priority: { column: 'priority', kind: 'integer', nullable: false, inserted: (i) => i.priority },
  runAt: { column: 'run_at', kind: 'time', nullable: false, inserted: (_, r) => new Date(r.run_at) },
  // A task whose payload is bytes stores no JSON payload (the insert's CASE).
  payload: { column: 'payload', kind: 'json', nullable: true, inserted: (i) => (i.payloadBase64 !== undefined ? null : (i.payload ?? null)) },
  payloadBase64: { column: 'payload_bytes', kind: 'bytes', nullable: true, inserted: (i) => i.payloadBase64 ?? null },
  contentType: { column: 'content_type', kind: 'text', nullable: true, inserted: (i) => i.contentType },
  result: { column: 'result', kind: 'json', nullable: true, inserted: () => null },
  attempt: { column: 'attempt', kind: 'integer', nullable: false, inserted: () => 0 },
  attemptBase: { column: 'attempt_base', kind: 'integer', nullable: false, inserted: () => 0 },
  maxAttempts: { column: 'max_attempts', kind: 'integer', nullable: false, inserted: (i) => i.maxAttempts },
  backoff: { column: 'backoff', kind: 'json', nullable: false, inserted: (i) => i.backoff },
  timeoutMs: { column: 'timeout_ms', kind: 'integer', nullable: false, inserted: (i) => i.timeoutMs },
  tags: { column: 'tags', kind: 'textList', nullable: false, inserted: (i) => i.tags },
  idempotencyKey: { column: 'idempotency_key', kind: 'text', nullable: true, inserted: (i) => i.idempotencyKey ?? null },
  workerId: { column: 'worker_id', kind: 'text', nullable: true, inserted: () => null },
  leaseExpiresAt: { column: 'lease_expires_at', kind: 'time', nullable: true, inserted: () => null },
  cancelRequested: { column: 'cancel_requested', kind: 'boolean', nullable: false, inserted: () => false },
  leaseLosses: { column: 'lease_losses', kind: 'integer', nullable: false, inserted: () => 0 },
  lastError: { column: 'last_error', kind: 'json', nullable: true, inserted: () => null },
  deadReason: { column: 'dead_reason', kind: 'text', nullable: true, inserted: () => null },
  createdAt: { column: 'created_at', kind: 'time', nullable: false, inserted: (_, r) => new Date(r.created_at) },
  startedAt: { column: 'started_at', kind: 'time', nullable: true, inserted: () => null },
  finishedAt: { column: 'finished_at', kind: 'time', nullable: true, inserted: () => null },
  // Set by the schedule fire that created the task (engine/firing.ts), in the same transaction.
  scheduleId: { column: 'schedule_id', kind: 'id', nullable: true, inserted: () => null },
  fireTime: { column: 'fire_time', kind: 'time', nullable: true, inserted: () => null },
  traceparent: { column: 'traceparent', kind: 'text', nullable: true, inserted: (i) => i.traceparent ?? null },
  tracestate: { column: 'tracestate', kind: 'text', nullable: true, inserted: (i) => i.tracestate ?? null },
  uniqueKey: { column: 'unique_key', kind: 'text', nullable: true, inserted: (i) => i.uniqueKey ?? null },
  // The insert computes now + ttlMs with the clock that is the task's creation time.
  expiresAt: {
    column: 'expires_at', kind: 'time', nullable: true,
    inserted: (i, r) => i.expiresAt ?? (i.ttlMs != null ? new Date(new Date(r.created_at).getTime() + i.ttlMs) : null),
  },
  cancelReason: { column: 'cancel_reason', kind: 'text', nullable: true, inserted: () => null },
  // Flow control (docs/flow-control.md).
  concurrencyKey: { column: 'concurrency_key', kind: 'text', nullable: true, inserted: (i) => i.concurrencyKey ?? null },
  rateKey: { column: 'rate_key', kind: 'text', nullable: true, inserted: (i) => i.rateKey ?? null },
  // Set by a workflow or batch submit (engine/workflows.ts), in the same transaction.
  workflowId: { column: 'workflow_id', kind: 'id', nullable: true, inserted: () => null },
  workflowRef: { column: 'workflow_ref', kind: 'text', nullable: true, inserted: () => null },
} as const satisfies { [K in keyof Task]: TaskField<K> };

/** TASK_FIELDS as a list, each with its name. */
export const TASK_FIELD_LIST: readonly (TaskField & { name: keyof Task })[] = Object.entries(TASK_FIELDS).map(
  ([name, field]) => ({ name: name as keyof Task, ...(field as TaskField) }),
);

/** The task just inserted from `input`, whose insert returned `row`. */
export function insertedTask(input: ResolvedInput, row: Row): Task {
  const task: Record<string, unknown> = {};
  for (const f of TASK_FIELD_LIST) task[f.name] = f.inserted(input, row);
  return task as unknown as Task;
}
