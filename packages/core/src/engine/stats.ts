/**
 * The queue gauges of the metrics: refreshed into `stats_snapshot` by one node per period
 * (statsElect), read by every node when it is scraped. Safe on every node at once (DESIGN,
 * invariant 9): the advisory lock and the snapshot's age elect the one that counts.
 */
import * as S from '../sql/stats.ts';
import type { EngineContext } from './context.ts';

/** One queue's gauges at the snapshot's time. */
export interface QueueStats {
  queue: string;
  paused: boolean;
  /** Tasks per unfinished state, and `dead`; a state with none is absent. */
  counts: Partial<Record<'blocked' | 'scheduled' | 'queued' | 'running' | 'retrying' | 'dead', number>>;
  /** Seconds since the run time of the oldest queued task; 0 when none is queued. */
  oldestReadyAgeSeconds: number;
  /** Seconds since the oldest running attempt started; 0 when none runs. */
  oldestRunningAgeSeconds: number;
  /** Live workers serving the queue, and the slots (concurrency) they offer in all. */
  workers: number;
  slots: number;
}

export interface StatsSnapshot {
  /** When it was taken, epoch seconds of the database clock. */
  takenAt: number;
  queues: QueueStats[];
  /** Live workers. */
  workers: number;
}

/** See Engine.refreshStats. */
export async function refreshStats(ctx: EngineContext, periodMs: number): Promise<boolean> {
  return ctx.db.transaction(async (tx) => {
    const { rows } = await tx.query(S.statsElect, [`taskflow:stats:${ctx.db.schema}`, ctx.now(), periodMs]);
    if (!rows[0]?.elected) return false;
    await tx.query(S.statsRefresh, [ctx.now()]);
    return true;
  });
}

/** See Engine.readStats. */
export async function readStats(ctx: EngineContext): Promise<StatsSnapshot | null> {
  const { rows } = await ctx.db.query(S.statsRead);
  const r = rows[0];
  if (!r) return null;
  const queues = (typeof r.queues === 'string' ? JSON.parse(r.queues) : r.queues) as Record<string, any>[];
  return {
    takenAt: Number(r.taken_at),
    workers: r.workers,
    queues: queues.map((q) => ({
      queue: q.queue, paused: q.paused, counts: q.counts, oldestReadyAgeSeconds: Number(q.oldest_ready_age),
      oldestRunningAgeSeconds: Number(q.oldest_running_age), workers: q.workers, slots: q.slots,
    })),
  };
}
