/**
 * What the background duties (Maintenance) ask of the engine: rescue of expired leases and
 * lost workers, promotion of due tasks, expiry, vacuum. Each is safe on every node at once.
 */
import * as T from '../sql/tasks/index.ts';
import * as W from '../sql/workers.ts';
import type { EngineContext } from './context.ts';
import { isSettled, type Row } from './rows.ts';
import { observeEnded } from './observe.ts';

/** See Engine.vacuumTasks. */
export async function vacuumTasks(ctx: EngineContext): Promise<void> {
  await ctx.db.query(T.tasksVacuum);
}

/** See Engine.rescueExpired. */
export async function rescueExpired(ctx: EngineContext, limit: number): Promise<number> {
  const { rows } = await ctx.db.query(T.taskRescueExpired, [ctx.now(), ctx.options.poisonAfter, limit]);
  if (ctx.telemetry) observeEnded(ctx.telemetry, rows, 'lease_expired');
  ctx.announce(rows);
  return rows.filter(isSettled).length;
}

/** See Engine.reapLostWorkers. */
export async function reapLostWorkers(ctx: EngineContext, limit: number): Promise<{ workers: number; tasks: number }> {
  const { workers, tasks } = await ctx.db.transaction(async (tx) => {
    const lost = (await tx.query(W.workerMarkLost, [ctx.now(), limit])).rows.map((r) => r.id as string);
    if (lost.length === 0) return { workers: 0, tasks: [] as Row[] };
    const rescued = await tx.query(T.taskRescueLostWorkers, [ctx.now(), ctx.options.poisonAfter, lost]);
    return { workers: lost.length, tasks: rescued.rows };
  });
  if (ctx.telemetry && workers > 0) {
    ctx.telemetry.workersLost(workers);
    observeEnded(ctx.telemetry, tasks, 'worker_lost');
  }
  ctx.announce(tasks);
  return { workers, tasks: tasks.filter(isSettled).length };
}

/** See Engine.promoteDue. */
export async function promoteDue(ctx: EngineContext, limit: number): Promise<number> {
  const { rows } = await ctx.db.query(T.taskPromoteDue, [ctx.now(), limit]);
  ctx.announce(rows);
  return rows.length;
}

/** See Engine.expireDue. */
export async function expireDue(ctx: EngineContext, limit: number): Promise<number> {
  const { rows } = await ctx.db.query(T.taskExpire, [ctx.now(), limit]);
  // Rows of kind 'dependent': batch completion tasks the expired tasks made ready.
  ctx.announce(rows.filter((r) => !isSettled(r)));
  return rows.filter(isSettled).length;
}

/** See Engine.nextDueInMs. */
export async function nextDueInMs(ctx: EngineContext): Promise<number | null> {
  const { rows } = await ctx.db.query(T.taskNextDue, [ctx.now()]);
  return rows[0]?.ms ?? null;
}
