/** Reads of tasks and an operator's transitions: update, cancel, retry, the dead-letter queue. */
import type { Statement } from '../db/types.ts';
import { InvalidStateError, NotFoundError, mapStorageError } from '../errors.ts';
import * as T from '../sql/tasks/index.ts';
import type { EngineContext } from './context.ts';
import { isTaskId } from './ids.ts';
import { toAttempt, toTask, type Row } from './rows.ts';
import type { Attempt, Task, TaskFilter } from './types.ts';

export type RequeueOutcome = 'requeued' | 'not_found' | 'invalid_state';

/** See Engine.getTask. */
export async function getTask(ctx: EngineContext, id: string): Promise<Task> {
  if (!isTaskId(id)) throw new NotFoundError('task', id);
  const { rows } = await ctx.db.query(T.taskGet, [id]);
  if (rows.length === 0) throw new NotFoundError('task', id);
  return toTask(rows[0]!);
}

/** See Engine.getAttempts. */
export async function getAttempts(ctx: EngineContext, id: string): Promise<Attempt[]> {
  if (!isTaskId(id)) throw new NotFoundError('task', id);
  const { rows } = await ctx.db.query(T.taskAttempts, [id]);
  return rows.map(toAttempt);
}

/** See Engine.listTasks. */
export async function listTasks(ctx: EngineContext, filter: TaskFilter): Promise<Task[]> {
  const { rows } = await ctx.db.query(T.taskList, [
    filter.states ?? null, filter.queue ?? null, filter.type ?? null, filter.tag ?? null,
    filter.createdFrom ?? null, filter.createdBefore ?? null, filter.beforeId ?? null, filter.limit,
  ]);
  return rows.map(toTask);
}

/** See Engine.updateTask. */
export async function updateTask(ctx: EngineContext, id: string, change: { priority?: number; runAt?: Date }): Promise<Task> {
  await transitionOne(ctx, id, T.taskUpdate, [id, change.priority ?? null, change.runAt ?? null, ctx.now()], 'updated');
  return getTask(ctx, id);
}

/** See Engine.cancelTask. */
export async function cancelTask(ctx: EngineContext, id: string): Promise<Task> {
  if (!isTaskId(id)) throw new NotFoundError('task', id);
  const { rows } = await ctx.db.query(T.taskCancel, [id, ctx.now()]);
  if (rows.length === 0) await refuseTransition(ctx, id, 'cancelled');
  const ready: string | null = rows[0]!.ready_queues;
  if (ready) ctx.announce(ready.split(',').map((queue) => ({ queue, state: 'queued' })));
  return toTask(rows[0]!);
}

/** See Engine.retryTask. */
export async function retryTask(ctx: EngineContext, id: string): Promise<Task> {
  await transitionOne(ctx, id, T.taskRequeue, [[id], ['dead', 'cancelled'], ctx.now()], 'retried');
  return getTask(ctx, id);
}

async function transitionOne(ctx: EngineContext, id: string, statement: Statement, params: unknown[], verb: string): Promise<void> {
  if (!isTaskId(id)) throw new NotFoundError('task', id);
  let rows: Row[];
  try {
    ({ rows } = await ctx.db.query(statement, params));
  } catch (err) {
    throw mapStorageError(err);
  }
  if (rows.length === 0) await refuseTransition(ctx, id, verb);
  ctx.announce(rows);
}

/** Throws the reason a transition matched no row: the task is unknown, or in the wrong state. */
async function refuseTransition(ctx: EngineContext, id: string, verb: string): Promise<never> {
  const task = await getTask(ctx, id);
  throw new InvalidStateError(`task ${id} is ${task.state} and cannot be ${verb}`, task.state);
}

/** See Engine.requeueDead. */
export async function requeueDead(ctx: EngineContext, ids: readonly string[]): Promise<RequeueOutcome[]> {
  const valid = ids.filter(isTaskId);
  const { rows } = valid.length ? await ctx.db.query(T.taskRequeue, [valid, ['dead'], ctx.now()]) : { rows: [] };
  ctx.announce(rows);
  const done = new Set(rows.map((r) => String(r.id)));
  const pending = ids.filter((id) => !done.has(id) && isTaskId(id));
  const existing = new Set<string>();
  if (pending.length > 0) {
    const found = await ctx.db.query(T.taskExisting, [pending]);
    for (const r of found.rows) existing.add(String(r.id));
  }
  return ids.map((id) => (done.has(id) ? 'requeued' : existing.has(id) ? 'invalid_state' : 'not_found'));
}

/** See Engine.requeueDeadWhere. */
export async function requeueDeadWhere(ctx: EngineContext, filter: { queue?: string; type?: string }): Promise<number> {
  const { rows } = await ctx.db.query(T.taskRequeueDeadWhere, [filter.queue ?? null, filter.type ?? null, ctx.now()]);
  ctx.announce(rows);
  return rows.length;
}

/** See Engine.purgeDead. */
export async function purgeDead(ctx: EngineContext, filter: { queue?: string }): Promise<number> {
  const { rows } = await ctx.db.query(T.taskPurgeDead, [filter.queue ?? null]);
  return rows[0]!.purged;
}
