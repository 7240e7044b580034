/**
 * The analytics API (docs/analytics.md): answers from the rollups the analytics duty keeps.
 * The schema checks the forms; the window's limits (too long for its bucket, not a whole
 * number of buckets) are checked here and answered as 400s naming `/query/window` or
 * `/query/bucket`.
 */
import {
  InvalidInputError, summaryWindow, throughputWindow, type Alerts, type Analytics, type AnalyticsWindow, type DurationPercentiles,
} from '@taskflow/core';
import type { Handlers } from '../http/route.ts';
import { badRequest } from '../http/problems.ts';
import { parseTime } from './tasks.ts';
import { firingJson } from './alerts.ts';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** Runs a window's planning, its InvalidInputError answered as a 400 naming the query field. */
function planned<T>(plan: () => T): T {
  try {
    return plan();
  } catch (err) {
    if (err instanceof InvalidInputError) throw badRequest(`/query/${err.field}`, err.message);
    throw err;
  }
}

async function untilOf(analytics: Analytics, until: string | undefined): Promise<Date> {
  return until === undefined ? analytics.now() : parseTime(until, '/query/until');
}

const bounds = (w: AnalyticsWindow) => ({ from: w.from.toISOString(), to: w.to.toISOString() });
const percentileJson = (p: DurationPercentiles) => ({ count: p.count, p50Ms: p.p50Ms, p95Ms: p.p95Ms, p99Ms: p.p99Ms });

export function analyticsHandlers(analytics: Analytics, alerts: Alerts): Pick<
  Handlers, 'analyticsThroughput' | 'analyticsDurations' | 'analyticsFailures' | 'analyticsWorkers' | 'analyticsHealth'
> {
  return {
    async analyticsThroughput(req) {
      const q = req.query;
      const bucket = q.bucket ?? '1h';
      const until = await untilOf(analytics, q.until);
      const w = planned(() => throughputWindow(q.window ?? '24h', bucket, until));
      const points = await analytics.throughput({ ...w, queue: q.queue, type: q.type }, w.bucketMs);
      return { ...bounds(w), bucket, points: points.map((p) => ({ ...p, at: p.at.toISOString() })) };
    },
    async analyticsDurations(req) {
      const q = req.query;
      const window = await summary(analytics, q.window, q.until);
      const d = await analytics.durations({ ...window, queue: q.queue, type: q.type });
      return { ...bounds(window), items: d.items.map((i) => ({ queue: i.queue, type: i.type, ...percentileJson(i) })), overall: percentileJson(d.overall) };
    },
    async analyticsFailures(req) {
      const q = req.query;
      const window = await summary(analytics, q.window, q.until);
      return { ...bounds(window), items: await analytics.failures({ ...window, queue: q.queue, type: q.type }) };
    },
    async analyticsWorkers(req) {
      const window = await summary(analytics, req.query.window, req.query.until);
      const items = await analytics.workers(window);
      return {
        ...bounds(window),
        items: items.map((w) => ({
          workerId: w.workerId, name: w.name, state: w.state, lastSeenAt: iso(w.lastSeenAt), tasks: w.tasks,
          succeeded: w.succeeded, failed: w.failed, successRate: w.successRate, ...percentileJson(w),
        })),
      };
    },
    async analyticsHealth() {
      const [h, firing] = await Promise.all([analytics.health(), alerts.listFiring()]);
      return {
        at: h.at.toISOString(),
        queues: h.queues,
        workers: h.workers,
        alerts: { firing: firing.map(firingJson) },
        rollup: { finalThrough: iso(h.rollupFinalThrough), updatedAt: iso(h.rollupUpdatedAt) },
      };
    },
  };
}

/** The window of a percentile, failure-rate or per-worker answer. */
async function summary(analytics: Analytics, window: string | undefined, until: string | undefined): Promise<AnalyticsWindow> {
  const end = await untilOf(analytics, until);
  return planned(() => summaryWindow(window ?? '1h', end));
}
