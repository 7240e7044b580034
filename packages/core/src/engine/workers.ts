/** Workers: registration, heartbeats (which renew leases), deregistration, reads. */
import type { Executor } from '../db/types.ts';
import { InvalidStateError, NotFoundError } from '../errors.ts';
import * as T from '../sql/tasks/index.ts';
import * as W from '../sql/workers.ts';
import type { EngineContext } from './context.ts';
import { observeEnded } from './observe.ts';
import { isTaskId, isUuid } from './ids.ts';
import { isSettled, toWorker } from './rows.ts';
import type { HeartbeatResult, WorkerInfo, WorkerInput, WorkerState } from './types.ts';

/** See Engine.registerWorker. */
export async function registerWorker(ctx: EngineContext, input: WorkerInput): Promise<WorkerInfo> {
  const id = crypto.randomUUID();
  await ctx.db.query(W.workerRegister, [
    id, input.name, JSON.stringify(input.queues), input.concurrency, JSON.stringify(input.metadata ?? {}),
    ctx.options.workerTtlMs, ctx.now(),
  ]);
  return getWorker(ctx, id);
}

/** See Engine.heartbeat. */
export async function heartbeat(ctx: EngineContext, workerId: string, running?: readonly string[]): Promise<HeartbeatResult> {
  if (!isUuid(workerId)) throw new NotFoundError('worker', workerId);
  const listed = running?.filter(isTaskId) ?? null;
  const { rows } = await ctx.db.query(W.workerHeartbeat, [workerId, ctx.options.workerTtlMs, ctx.now(), listed]);
  const r = rows[0]!;
  if (r.found === 0) await requireWorkerState(ctx, workerId, ['active', 'lost']);
  return { held: r.held, cancel: r.cancel };
}

/** See Engine.deregisterWorker. */
export async function deregisterWorker(
  ctx: EngineContext, workerId: string, started?: readonly { id: string; attempt: number }[],
): Promise<{ released: number }> {
  if (!isUuid(workerId)) throw new NotFoundError('worker', workerId);
  const listed = started?.filter((t) => isTaskId(t.id));
  const released = await ctx.db.transaction(async (tx) => {
    const stopped = await tx.query(W.workerStop, [workerId, ctx.now()]);
    if (stopped.rowCount === 0) {
      await requireWorkerState(ctx, workerId, ['stopped'], tx);
      return [];
    }
    const unstarted = listed
      ? (await tx.query(T.taskReleaseWorkerUnstarted, [
        ctx.now(), ctx.options.poisonAfter, workerId, listed.map((t) => t.id), listed.map((t) => t.attempt),
      ])).rows
      : [];
    const rest = (await tx.query(T.taskReleaseWorker, [ctx.now(), ctx.options.poisonAfter, workerId])).rows;
    return unstarted.length > 0 ? [...unstarted, ...rest] : rest;
  });
  if (ctx.telemetry) observeEnded(ctx.telemetry, released, 'abandoned');
  ctx.announce(released);
  return { released: released.filter(isSettled).length };
}

/** See Engine.workerState. */
export async function workerState(workerId: string, executor: Executor): Promise<WorkerState> {
  if (!isUuid(workerId)) throw new NotFoundError('worker', workerId);
  const { rows } = await executor.query(W.workerState, [workerId]);
  if (rows.length === 0) throw new NotFoundError('worker', workerId);
  return rows[0]!.state;
}

async function requireWorkerState(ctx: EngineContext, workerId: string, allowed: WorkerState[], executor: Executor = ctx.db): Promise<void> {
  const state = await workerState(workerId, executor);
  if (!allowed.includes(state)) {
    throw new InvalidStateError(`worker ${workerId} is ${state}${state === 'stopped' ? ' (deregistered); register again' : ''}`, state);
  }
}

/** See Engine.getWorker. */
export async function getWorker(ctx: EngineContext, workerId: string): Promise<WorkerInfo> {
  if (!isUuid(workerId)) throw new NotFoundError('worker', workerId);
  const { rows } = await ctx.db.query(W.workerGet, [workerId]);
  if (rows.length === 0) throw new NotFoundError('worker', workerId);
  return toWorker(rows[0]!);
}

/** See Engine.listWorkers. */
export async function listWorkers(
  ctx: EngineContext, filter: { states?: WorkerState[]; after?: { registeredAt: Date; id: string }; limit: number },
): Promise<WorkerInfo[]> {
  const { rows } = await ctx.db.query(W.workerList, [
    filter.states ?? null, filter.after?.registeredAt ?? null, filter.after?.id ?? null, filter.limit,
  ]);
  return rows.map(toWorker);
}
