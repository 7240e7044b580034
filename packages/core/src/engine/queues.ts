/** Queues: their counts, and pausing. */
import { NotFoundError } from '../errors.ts';
import * as Q from '../sql/queues.ts';
import type { EngineContext } from './context.ts';
import { toQueue } from './rows.ts';
import type { QueueInfo } from './types.ts';
import { updateQueueSettings, type QueueSettingsPatch } from './flowSettings.ts';

/** See Engine.listQueues. */
export async function listQueues(ctx: EngineContext): Promise<QueueInfo[]> {
  const { rows } = await ctx.db.query(Q.queueStats, [null, ctx.now()]);
  return rows.map(toQueue);
}

/** See Engine.getQueue. */
export async function getQueue(ctx: EngineContext, name: string): Promise<QueueInfo> {
  const { rows } = await ctx.db.query(Q.queueStats, [name, ctx.now()]);
  if (rows.length === 0) throw new NotFoundError('queue', name);
  return toQueue(rows[0]!);
}

/** See Engine.updateQueueSettings. */
export async function updateSettings(ctx: EngineContext, name: string, patch: QueueSettingsPatch): Promise<QueueInfo> {
  await updateQueueSettings(ctx, name, patch);
  return getQueue(ctx, name);
}

/** See Engine.setQueuePaused. */
export async function setQueuePaused(ctx: EngineContext, name: string, paused: boolean): Promise<QueueInfo> {
  await ctx.db.query(Q.queueSetPaused, [name, paused, ctx.now()]);
  if (!paused) ctx.announce([{ queue: name, state: 'queued' }]);
  return getQueue(ctx, name);
}
