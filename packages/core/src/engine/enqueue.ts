/** Enqueue: a batch of tasks inserted in one statement, idempotency keys honoured. */
import type { Executor } from '../db/types.ts';
import { lostRace, mapStorageError, TaskflowError } from '../errors.ts';
import * as T from '../sql/tasks/index.ts';
import type { EngineContext } from './context.ts';
import type { EngineOptions } from './options.ts';
import { toTask, type Row } from './rows.ts';
import { flowColumns, insertColumns, lifetimeColumns, traceColumns, type ResolvedInput } from './insertColumns.ts';
import { enqueueUnique } from './enqueueUnique.ts';
import { admit, flowsOf } from './admission.ts';
import type { FlowState } from './flowSettings.ts';
import { insertedTask } from './taskFields.ts';
import type { Task, TaskInput, TaskState } from './types.ts';

export interface EnqueueResult {
  /** The task (built on first read: a batch answer needs only `ref`). */
  readonly task: Task;
  /** What a batch answer tells a producer about its task. */
  readonly ref: TaskRef;
  /** false when an idempotency key or a unique key matched an existing task, which is returned instead. */
  readonly created: boolean;
  /** Why an existing task was returned (when `created` is false): its idempotency key, or its unique key. */
  readonly deduplicated?: 'idempotency' | 'unique';
}

/** A task as a submission's answer refers to it: enough to find it again. Times in RFC 3339. */
export interface TaskRef {
  id: string;
  queue: string;
  type: string;
  state: TaskState;
  priority: number;
  runAt: string;
  idempotencyKey: string | null;
  createdAt: string;
}

/** See Engine.enqueue. */
export async function enqueue(ctx: EngineContext, inputs: readonly TaskInput[], executor: Executor): Promise<EnqueueResult[]> {
  if (inputs.length === 0) return [];
  const queues = inputs.map((i) => i.queue ?? ctx.options.defaultQueue);
  const known = flowsOf(ctx, queues, executor);
  const flows = known instanceof Promise ? await known : known;
  const items = inputs.map((i, k) => withDefaults(ctx.options, i, flows?.get(queues[k]!)));
  const admission = flows !== null && [...flows.values()].some((f) => f.admission);
  if (!admission) return insert(ctx, items, executor);
  if (executor !== ctx.db) return (await admit(ctx, executor, queues, flows), insert(ctx, items, executor));
  const results = await ctx.db.transaction(async (tx) => (await admit(ctx, tx, queues, flows), insert(ctx, items, tx)));
  // Claimers told inside the transaction may have looked before its commit: told again now.
  ctx.announce([...new Set(queues)].map((queue) => ({ queue, state: 'queued' })));
  return results;
}

/** Inserts tasks that passed admission: with unique keys (enqueueUnique.ts) or without. */
async function insert(ctx: EngineContext, items: ResolvedInput[], executor: Executor): Promise<EnqueueResult[]> {
  if (items.some((i) => i.uniqueKey !== undefined)) return enqueueUnique(ctx, items, executor);
  const keyed = items.some((i) => i.idempotencyKey !== undefined);
  const known = items.every((i) => ctx.knownQueues.has(i.queue));
  const statement = known
    ? (keyed ? T.taskInsertManyKnownQueues : T.taskInsertManyWithoutKeysKnownQueues)
    : (keyed ? T.taskInsertMany : T.taskInsertManyWithoutKeys);
  // Keyed rows in lock order; matchInserted pairs rows by key, the unkeyed ones in order.
  const sent = keyed ? inLockOrder(items) : items;
  const params = [
    ...insertColumns(sent, ctx.options), ctx.now(), ...ctx.insertDefaults, ...traceColumns(sent), ...lifetimeColumns(sent), ...flowColumns(sent),
  ];
  let inserted: Row[];
  try {
    const answer = executor === ctx.db ? await retryLostRaces(() => executor.query(statement, params)) : await executor.query(statement, params);
    inserted = keyed ? answer.rows : rowsOfOneRowAnswer(items, answer.rows[0]!);
    // Known only once committed: inside a caller's transaction the row may still roll back.
    if (executor === ctx.db) for (const i of items) ctx.rememberQueue(i.queue);
  } catch (err) {
    throw mapStorageError(err, 'tasks');
  }
  const results = await matchInserted(items, inserted, executor);
  if (ctx.telemetry) ctx.telemetry.submitted(inserted.length === items.length ? items : items.filter((_, i) => results[i]!.created));
  ctx.announce(inserted);
  return results;
}

/**
 * The batch with its keyed tasks first, sorted by (queue, key), the others after them in input
 * order. An insert with ON CONFLICT waits on the index entry of a key another transaction is
 * inserting; two statements that take their keys in different orders can each wait on the
 * other (a deadlock: PostgreSQL aborts one after a second). Every statement taking its keys in
 * one total order, whichever node sends it, cannot form such a cycle. Code-unit order, not the
 * database's collation: any order works as long as every statement uses the same.
 */
function inLockOrder(items: readonly ResolvedInput[]): ResolvedInput[] {
  const lockKey = (i: ResolvedInput) => keyOf(i.queue, i.idempotencyKey!);
  const keyed = items.filter((i) => i.idempotencyKey !== undefined).sort((x, y) => {
    const a = lockKey(x);
    const b = lockKey(y);
    return a < b ? -1 : a > b ? 1 : 0;
  });
  return keyed.length === items.length ? keyed : [...keyed, ...items.filter((i) => i.idempotencyKey === undefined)];
}

/** Tries of a statement that lost a race (a deadlock, or a serialization failure) before it fails. */
const RACE_TRIES = 3;

/**
 * Runs a statement of its own transaction again when PostgreSQL aborted it for a deadlock or a
 * serialization failure: the statement changed nothing, and a new try sees what the winner
 * committed. Inside a caller's transaction the whole transaction is lost, so callers retry it.
 */
async function retryLostRaces<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (attempt >= RACE_TRIES || !lostRace(err)) throw err;
    }
  }
}

/** The engine's defaults, after the queue's own (its settings' default retry policy). */
function withDefaults(o: EngineOptions, i: TaskInput, f: FlowState | undefined): ResolvedInput {
  return {
    ...i,
    queue: i.queue ?? o.defaultQueue,
    priority: i.priority ?? 0,
    maxAttempts: i.maxAttempts ?? f?.defaultMaxAttempts ?? o.defaultMaxAttempts,
    backoff: i.backoff ?? f?.defaultBackoff ?? o.defaultBackoff,
    timeoutMs: i.timeoutMs ?? o.defaultTimeoutMs,
    tags: i.tags ?? [],
    contentType: i.payloadBase64 !== undefined ? (i.contentType ?? 'application/octet-stream') : null,
  };
}

/**
 * Pairs inserted rows with inputs. Rows come back in input order; keyed inputs are matched
 * by key (a key repeated within the batch maps to the one row), the rest in order. Inputs
 * whose key hit an existing task are read back.
 */
async function matchInserted(items: ResolvedInput[], inserted: Row[], executor: Executor): Promise<EnqueueResult[]> {
  const byKey = new Map<string, Row>();
  const unkeyed: Row[] = [];
  for (const r of inserted) {
    if (r.idempotency_key === null) unkeyed.push(r);
    else byKey.set(keyOf(r.queue, r.idempotency_key), r);
  }
  const out: EnqueueResult[] = new Array(items.length);
  const replayed: number[] = [];
  const taken = new Set<string>();
  items.forEach((item, idx) => {
    if (item.idempotencyKey === undefined) {
      out[idx] = new Inserted(item, unkeyed.shift()!);
      return;
    }
    const key = keyOf(item.queue, item.idempotencyKey);
    const row = byKey.get(key);
    if (row && !taken.has(key)) {
      taken.add(key);
      out[idx] = new Inserted(item, row);
    } else {
      replayed.push(idx);
    }
  });
  await readBackReplays(items, replayed, executor, out);
  return out;
}

/**
 * Answers the inputs at `replayed`, whose idempotency key an earlier task holds, with that task
 * (read back by key), into `out`.
 */
export async function readBackReplays(
  items: readonly ResolvedInput[], replayed: readonly number[], executor: Executor, out: EnqueueResult[],
): Promise<void> {
  if (replayed.length === 0) return;
  const originals = await tasksByKeys(replayed.map((idx) => items[idx]!), executor);
  for (const idx of replayed) {
    const item = items[idx]!;
    const task = originals.get(keyOf(item.queue, item.idempotencyKey!));
    // Only if retention deleted the original between our insert and this read.
    if (!task) throw new TaskflowError('idempotency_race', `the task holding idempotency key ${item.idempotencyKey} vanished during the enqueue; submit again`);
    out[idx] = existing(task);
  }
}

export async function tasksByKeys(items: ResolvedInput[], executor: Executor): Promise<Map<string, Task>> {
  const { rows } = await executor.query(T.taskGetByIdempotencyKeys, [items.map((i) => i.queue), items.map((i) => i.idempotencyKey)]);
  return new Map(rows.map((r) => [keyOf(r.queue, r.idempotency_key), toTask(r)]));
}

/** An inserted task: its reference from the row as returned, the full task only when read. */
export class Inserted implements EnqueueResult {
  readonly created = true;
  readonly ref: TaskRef;
  private readonly input: ResolvedInput;
  private readonly row: Row;
  private built: Task | undefined;
  constructor(input: ResolvedInput, row: Row) {
    this.input = input;
    this.row = row;
    this.ref = {
      id: String(row.id), queue: input.queue, type: input.type, state: row.state, priority: input.priority,
      runAt: row.run_at, idempotencyKey: input.idempotencyKey ?? null, createdAt: row.created_at,
    };
  }
  get task(): Task {
    this.built ??= insertedTask(this.input, this.row);
    return this.built;
  }
}

/** An existing task an idempotency key (or a unique key) led to. */
export function existing(task: Task, deduplicated: 'idempotency' | 'unique' = 'idempotency'): EnqueueResult {
  return {
    created: false,
    deduplicated,
    task,
    ref: {
      id: task.id, queue: task.queue, type: task.type, state: task.state, priority: task.priority,
      runAt: task.runAt.toISOString(), idempotencyKey: task.idempotencyKey, createdAt: task.createdAt.toISOString(),
    },
  };
}

export function keyOf(queue: string, key: string): string {
  return `${queue}\u0000${key}`;
}

/**
 * The rows a batch insert without keys answers in one row (see ONE_ROW_ANSWER in
 * sql/tasks/insert.ts), one per input, in input order.
 */
function rowsOfOneRowAnswer(items: readonly ResolvedInput[], answer: Row): Row[] {
  const ids: string[] = answer.ids ? answer.ids.split(',') : [];
  if (ids.length !== items.length) throw new Error(`the insert answered ${ids.length} ids for ${items.length} tasks`);
  const odd = new Map<string, string[]>();
  if (answer.odd) {
    for (const entry of (answer.odd as string).split(',')) {
      const [id, state, runAt] = entry.split(' ');
      odd.set(id!, [state!, runAt!]);
    }
  }
  const now: string = answer.now;
  return ids.map((id, k) => {
    const o = odd.get(id);
    return { id, queue: items[k]!.queue, state: o ? o[0] : 'queued', run_at: o ? o[1] : now, idempotency_key: null, created_at: now };
  });
}
