/** Claims: ready tasks leased to a worker, one atomic statement per queue. */
import * as T from '../sql/tasks/index.ts';
import type { EngineContext } from './context.ts';
import { toClaimedTask } from './rows.ts';
import { weightedOrder } from './weights.ts';
import { observeClaimed } from './observe.ts';
import { claimLimited } from './flowClaim.ts';
import type { ClaimedTask, QueueWeight } from './types.ts';

/** See Engine.claim. */
export async function claim(ctx: EngineContext, workerId: string, queues: readonly QueueWeight[], max: number): Promise<ClaimedTask[]> {
  return claimFrom(ctx, workerId, weightedOrder(queues), max);
}

/** Claims up to `max` tasks from the queues in the order given, until the batch is full. */
export async function claimFrom(ctx: EngineContext, workerId: string, ordered: readonly QueueWeight[], max: number): Promise<ClaimedTask[]> {
  const out: ClaimedTask[] = [];
  for (const q of ordered) {
    if (out.length >= max) break;
    // A limited queue has its own claim (flowClaim.ts); the settings are cached, so a plain
    // queue's claim costs no query more.
    const flow = ctx.flow.peek(q.name) ?? (await ctx.flow.get(ctx.db, q.name));
    if (flow.limited) {
      const limited = await claimLimited(ctx, workerId, q.name, max - out.length);
      if (limited !== null) {
        out.push(...limited);
        continue;
      }
    }
    const statement = ctx.telemetry ? T.taskClaimObserved : T.taskClaim;
    const { rows } = await ctx.db.relaxed.query(statement, [q.name, max - out.length, workerId, ctx.now()]);
    for (const r of rows) out.push(toClaimedTask(r));
    if (ctx.telemetry) observeClaimed(ctx.telemetry, rows);
  }
  ctx.churn += out.length;
  return out;
}
