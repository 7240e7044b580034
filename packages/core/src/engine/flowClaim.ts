/**
 * The claim of a limited queue (a concurrency or rate limit): in a transaction, the queue's
 * row locked first, then one statement that counts the slots held and the tokens left, takes
 * the heads of the keys round by round, leases them and charges the rate buckets
 * (sql/flow.ts, taskClaimLimited). Claimers of one limited queue take turns (the lock); claimers
 * of other queues are not affected.
 */
import * as F from '../sql/flow.ts';
import type { EngineContext } from './context.ts';
import { toClaimedTask } from './rows.ts';
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
 * When a limited queue left tasks waiting, wakes its claimers when a slot may free or a bucket
 * refills (a settled attempt wakes them too: see settle.ts). One timer per queue, the soonest.
 */
export async function armWake(ctx: EngineContext, queue: string): Promise<void> {
  const { rows } = await ctx.db.query(F.flowNextWake, [queue, ctx.now()]);
  const inMs = rows[0]?.in_ms;
  if (inMs === null || inMs === undefined) return;
  ctx.wakeLater(queue, Math.max(1, Math.ceil(Number(inMs))));
}
