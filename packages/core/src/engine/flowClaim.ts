/**
 * The claim of a limited queue (a concurrency or rate limit): in a transaction, the queue's
 * row locked first, then one statement that counts the slots held and the tokens left, takes
 * the heads of the keys round by round, leases them and charges the rate buckets
 * (sql/flow.ts, taskClaimLimited). Claimers of one limited queue take turns (the lock); claimers
 * of other queues are not affected.
 */
import * as F from '../sql/flow.ts';
import * as T from '../sql/tasks/index.ts';
import type { EngineContext } from './context.ts';
import { toClaimedTask, type Row } from './rows.ts';
import { observeClaimed } from './observe.ts';
import { toFlowState } from './flowSettings.ts';
import type { ClaimedTask } from './types.ts';

/** Most claim statements one call makes to fill its batch (each statement may under-fill). */
const MAX_ROUNDS = 4;

/**
 * Claims up to `max` tasks of limited queue `queue` for the worker; null when the queue turns
 * out not to be limited any more (the caller claims it with the plain statement).
 */
export async function claimLimited(ctx: EngineContext, workerId: string, queue: string, max: number): Promise<ClaimedTask[] | null> {
  const out: ClaimedTask[] = [];
  for (let round = 0; round < MAX_ROUNDS && out.length < max; round++) {
    const got = await claimRound(ctx, workerId, queue, max - out.length);
    if (got === null) return round === 0 ? null : out;
    out.push(...got);
    if (got.length === 0) break;
  }
  if (out.length < max) await armWake(ctx, queue);
  return out;
}

/** One locked claim; null when the queue is no longer limited (the caller's plain claim will do). */
async function claimRound(ctx: EngineContext, workerId: string, queue: string, max: number): Promise<ClaimedTask[] | null> {
  return ctx.db.transaction(async (tx) => {
    const { rows: lock } = await tx.query(F.queueLockForClaim, [queue]);
    const state = ctx.flow.set(queue, toFlowState(lock[0]));
    if (!state.limited) return null;
    if (lock[0]!.paused) return [];
    const { rows } = await tx.query(F.taskClaimLimited, [queue, max, workerId, ctx.now()]);
    if (ctx.telemetry) observeClaimed(ctx.telemetry, rows);
    return rows.map(toClaimedTask);
  });
}

/**
 * A worker's successes ($1 of taskSucceedAndClaim, JSON) and its claim of up to `max` tasks of
 * limited queue `queue`, in one statement (taskSucceedAndClaimLimited) after the queue's lock:
 * the slots the successes free are counted free by the claim. Rows as taskSucceedAndClaim's. A
 * queue found no longer limited under the lock is claimed by taskSucceedAndClaim instead. The
 * lock is queueLock, not queueLockForClaim: the transaction settles results, so it commits as
 * settlements do (waits for the WAL flush).
 */
export async function succeedAndClaimLimited(
  ctx: EngineContext, workerId: string, successes: string, queue: string, max: number, now: Date | null,
): Promise<Row[]> {
  return ctx.db.transaction(async (tx) => {
    const { rows: lock } = await tx.query(F.queueLock, [queue]);
    const limited = ctx.flow.set(queue, toFlowState(lock[0])).limited;
    const statement = limited
      ? (ctx.telemetry ? T.taskSucceedAndClaimLimitedObserved : T.taskSucceedAndClaimLimited)
      : (ctx.telemetry ? T.taskSucceedAndClaimObserved : T.taskSucceedAndClaim);
    return (await tx.query(statement, [successes, workerId, now, queue, max])).rows;
  });
}

/**
 * When a limited queue left tasks waiting, wakes its claimers when a slot may free or a bucket
 * refills (a settled attempt wakes them too: see settle.ts). One timer per queue, the soonest.
 */
export async function armWake(ctx: EngineContext, queue: string): Promise<void> {
  const { rows } = await ctx.db.query(F.flowNextWake, [queue, ctx.now()]);
  const inMs = rows[0]?.in_ms;
  if (inMs === null || inMs === undefined) return;
  ctx.wakeLater(queue, Math.max(1, Math.ceil(Number(inMs))));
}
