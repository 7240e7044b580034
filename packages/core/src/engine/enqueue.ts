/** Enqueue: a batch of tasks inserted in one statement, idempotency keys honoured. */
import type { Executor } from '../db/types.ts';
import { lostRace, mapStorageError, TaskflowError } from '../errors.ts';
import * as T from '../sql/tasks/index.ts';
import type { EngineContext } from './context.ts';
import type { EngineOptions } from './options.ts';
import { toTask, type Row } from './rows.ts';
import { flowColumns, graphColumns, insertColumns, lifetimeColumns, traceColumns, type GraphColumns, type ResolvedInput } from './insertColumns.ts';
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

/**
 * See Engine.enqueue. `graph`: the inputs are the tasks of a workflow or a batch, inserted
 * with their places in it and their edges (engine/workflows.ts; they carry no keys).
 */
export async function enqueue(ctx: EngineContext, inputs: readonly TaskInput[], executor: Executor, graph?: GraphColumns): Promise<EnqueueResult[]> {
  if (inputs.length === 0) return [];
  const queues = inputs.map((i) => i.queue ?? ctx.options.defaultQueue);
  const known = flowsOf(ctx, queues, executor);
  const flows = known instanceof Promise ? await known : known;
  const items = inputs.map((i, k) => withDefaults(ctx.options, i, flows?.get(queues[k]!)));
  const admission = flows !== null && [...flows.values()].some((f) => f.admission);
  if (!admission) return insert(ctx, items, executor, graph);
  if (executor !== ctx.db) return (await admit(ctx, executor, queues, flows), insert(ctx, items, executor, graph));
  const results = await ctx.db.transaction(async (tx) => (await admit(ctx, tx, queues, flows), insert(ctx, items, tx, graph)));
  // Claimers told inside the transaction may have looked before its commit: told again now.
  ctx.announce([...new Set(queues)].map((queue) => ({ queue, state: 'queued' })));
  return results;
}

/** Inserts tasks that passed admission: with unique keys (enqueueUnique.ts) or without. */
async function insert(ctx: EngineContext, items: ResolvedInput[], executor: Executor, graph?: GraphColumns): Promise<EnqueueResult[]> {
  if (items.some((i) => i.uniqueKey !== undefined)) return enqueueUnique(ctx, items, executor);
  const keyed = graph === undefined && items.some((i) => i.idempotencyKey !== undefined);
  const known = items.every((i) => ctx.knownQueues.has(i.queue));
  const statement = graph ? T.taskInsertGraph : known
    ? (keyed ? T.taskInsertManyKnownQueues : T.taskInsertManyWithoutKeysKnownQueues)
    : (keyed ? T.taskInsertMany : T.taskInsertManyWithoutKeys);
  // Keyed rows in lock order; `order[p]` is the input index of the row sent at position p.
  const order = keyed ? lockOrder(items) : undefined;
  const sent = order ? order.map((k) => items[k]!) : items;
  const params = [
    ...insertColumns(sent, ctx.options), ctx.now(), ...ctx.insertDefaults, ...traceColumns(sent), ...lifetimeColumns(sent), ...flowColumns(sent),
    ...(graph ? graphColumns(graph) : []),
  ];
  let rows: (Row | null)[];
  try {
    const answer = executor === ctx.db ? await retryLostRaces(() => executor.query(statement, params)) : await executor.query(statement, params);
    rows = rowsOfOneRowAnswer(sent, answer.rows[0]!, graph?.pending);
    // Known only once committed: inside a caller's transaction the row may still roll back.
    if (executor === ctx.db) for (const i of items) ctx.rememberQueue(i.queue);
  } catch (err) {
    throw mapStorageError(err, 'tasks');
  }
  const out: EnqueueResult[] = new Array(items.length);
  const replayed: number[] = [];
  rows.forEach((row, p) => {
    const idx = order ? order[p]! : p;
    if (row) out[idx] = new Inserted(items[idx]!, row);
    else replayed.push(idx);
  });
  await readBackReplays(items, replayed, executor, out);
  const inserted = rows.filter((r): r is Row => r !== null);
  if (ctx.telemetry) ctx.telemetry.submitted(replayed.length === 0 ? items : items.filter((_, i) => out[i]!.created));
  ctx.announce(inserted);
  return out;
}

/**
 * The input indexes of the batch in the order it is sent: its keyed tasks first, sorted by
 * (queue, key), the others after them in input order. Writing a key waits on a key another
 * transaction is writing; two statements that take their keys in different orders can each
 * wait on the other (a deadlock: PostgreSQL aborts one after a second). Every statement taking
 * its keys in one total order, whichever node sends it, cannot form such a cycle. Code-unit
 * order, not the database's collation: any order works as long as every statement uses the
 * same. Ties keep input order, so that the first of a key repeated within a batch is the one
 * created.
 */
export function lockOrder(items: readonly ResolvedInput[]): number[] {
  const idx = items.map((_, k) => k);
  const keyed = idx.filter((k) => items[k]!.idempotencyKey !== undefined);
  const sortKey = keyed.length > 1 ? new Map(keyed.map((k) => [k, keyOf(items[k]!.queue, items[k]!.idempotencyKey!)])) : undefined;
  if (sortKey) {
    keyed.sort((a, b) => {
      const x = sortKey.get(a)!;
      const y = sortKey.get(b)!;
      return x < y ? -1 : x > y ? 1 : a - b;
    });
  }
  return keyed.length === items.length ? keyed : [...keyed, ...idx.filter((k) => items[k]!.idempotencyKey === undefined)];
}

/** Tries of a statement that lost a race (a deadlock, or a serialization failure) before it fails. */
const RACE_TRIES = 3;

/**
 * Runs a statement of its own transaction again when PostgreSQL aborted it for a deadlock or a
 * serialization failure: the statement changed nothing, and a new try sees what the winner
 * committed. Inside a caller's transaction the whole transaction is lost, so callers retry it.
 */
export async function retryLostRaces<T>(run: () => Promise<T>): Promise<T> {
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
 * The rows a batch insert answers in one row (see oneRowAnswer in sql/tasks/insert.ts), one
 * per task sent, in the order sent: null for a task not inserted because its idempotency key
 * existed (a keyed batch's `replayed` positions). `pending`: a graph's parent counts (a task
 * with parents is `blocked` unless the answer says otherwise; taskInsertGraph).
 */
function rowsOfOneRowAnswer(sent: readonly ResolvedInput[], answer: Row, pending?: readonly number[]): (Row | null)[] {
  const ids: string[] = answer.ids ? answer.ids.split(',') : [];
  const replayed = new Set<number>(answer.replayed ? (answer.replayed as string).split(',').map((p) => Number(p) - 1) : []);
  if (ids.length + replayed.size !== sent.length) throw new Error(`the insert answered ${ids.length} ids and ${replayed.size} replays for ${sent.length} tasks`);
  const odd = new Map<string, string[]>();
  if (answer.odd) {
    for (const entry of (answer.odd as string).split(',')) {
      const [id, state, runAt] = entry.split(' ');
      odd.set(id!, [state!, runAt!]);
    }
  }
  const now: string = answer.now;
  let next = 0;
  return sent.map((item, p) => {
    if (replayed.has(p)) return null;
    const id = ids[next++]!;
    const o = odd.get(id);
    const usual = pending !== undefined && pending[p]! > 0 ? 'blocked' : 'queued';
    return { id, queue: item.queue, state: o ? o[0] : usual, run_at: o ? o[1] : now, idempotency_key: item.idempotencyKey ?? null, created_at: now };
  });
}
