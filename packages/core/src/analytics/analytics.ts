/**
 * The analytics read side: throughput, durations, failure rates and per-worker performance
 * from the rollups (never the raw tables), and a health summary. Windows arrive resolved
 * (resolution and bounds, see window.ts); the HTTP layer validates what callers ask for.
 */
import type { Clock } from '../clock.ts';
import type { Database } from '../db/types.ts';
import * as A from '../sql/analyticsReads.ts';
import { addStored, histogramCount, percentiles, type Histogram } from './histogram.ts';
import { rollupPass, type RollupOptions, type RollupPassResult } from './rollup.ts';
import { coverWindow, rangeParams, type Resolution } from './tiers.ts';

/**
 * A window of rollup rows: [from, to), aligned to `resolution` (its finest rows), optionally
 * one queue and type.
 */
export interface AnalyticsWindow {
  resolution: Resolution;
  from: Date;
  to: Date;
  queue?: string | null;
  type?: string | null;
}

export interface ThroughputPoint {
  /** Start of the bucket. */
  at: Date;
  submitted: number;
  succeeded: number;
  failed: number;
  dead: number;
}

export interface DurationPercentiles {
  /** Attempts with a duration (succeeded, and failed as the worker reported). */
  count: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
}

export interface QueueTypeDurations extends DurationPercentiles {
  queue: string;
  type: string;
}

export interface QueueTypeFailures {
  queue: string;
  type: string;
  submitted: number;
  succeeded: number;
  failed: number;
  dead: number;
  cancelled: number;
  /** failed / (succeeded + failed): the share of ended attempts that did not succeed; null when none ended. */
  failureRate: number | null;
}

export interface WorkerPerformance extends DurationPercentiles {
  workerId: string;
  /** Null when the worker row is gone. */
  name: string | null;
  state: string | null;
  lastSeenAt: Date | null;
  /** Attempts it ended in the window (succeeded + failed). */
  tasks: number;
  succeeded: number;
  failed: number;
  /** succeeded / tasks; null without tasks. */
  successRate: number | null;
}

export interface HealthSummary {
  at: Date;
  queues: { name: string; paused: boolean; ready: number; running: number; oldestReadyAgeMs: number }[];
  workers: { online: number; slots: number };
  /** Minutes before this are final in the rollups (null before the first pass). */
  rollupFinalThrough: Date | null;
  rollupUpdatedAt: Date | null;
}

/** Most workers the per-worker answer lists. */
export const WORKERS_MAX = 500;
/** Most queues the health summary lists. */
export const HEALTH_QUEUES_MAX = 1000;

/*
 * The reads pass their statements' text, not the named Statement: planned at each call with
 * the window's values, where a prepared generic plan guesses a few rows for any range of
 * buckets (and chose a sort spilling to disk for a day of hour rows). An operator's call: the
 * planning (~10 ms on the loaded bench machine) does not matter. The histograms are merged
 * here, not in SQL (sql/analyticsReads.ts, analyticsHistograms).
 */
/** The rows of the window: coarse ones in its middle, its own resolution's at the edges (tiers.ts). */
const covering = (w: Omit<AnalyticsWindow, 'queue' | 'type'>) => rangeParams(coverWindow(w.resolution, w.from, w.to));
const windowParams = (w: AnalyticsWindow) => [...covering(w), w.queue ?? null, w.type ?? null];
const ratio = (a: number, b: number) => (b > 0 ? a / b : null);

function withPercentiles(h: Histogram | undefined): DurationPercentiles {
  const hist = h ?? new Map();
  const p = percentiles(hist);
  return { count: histogramCount(hist), p50Ms: p.p50, p95Ms: p.p95, p99Ms: p.p99 };
}

export class Analytics {
  readonly db: Database;
  readonly clock: Clock;

  constructor(db: Database, clock: Clock) {
    this.db = db;
    this.clock = clock;
  }

  /** The time windows end at by default: the clock's, else the database's. */
  async now(): Promise<Date> {
    const t = this.clock.now();
    if (t) return t;
    const { rows } = await this.db.query('SELECT now() AS now');
    return rows[0]!.now as Date;
  }

  /** One pass of the rollup duty (see rollup.ts). */
  rollup(options: Partial<RollupOptions> = {}): Promise<RollupPassResult> {
    return rollupPass(this.db, this.clock.now(), options);
  }

  /** Counts per bucket of `bucketMs` over the window, every bucket present (zeros where none). */
  async throughput(w: AnalyticsWindow, bucketMs: number): Promise<ThroughputPoint[]> {
    const statement = w.queue || w.type ? A.analyticsThroughput.text : A.analyticsThroughputTotals.text;
    // Every bucket is a whole number of rows of the window's resolution: those rows, no others.
    const ranges = rangeParams([{ resolution: w.resolution, from: w.from, to: w.to }]);
    const { rows } = await this.db.query(statement, [...ranges, w.queue ?? null, w.type ?? null, bucketMs / 1000]);
    const byTime = new Map(rows.map((r) => [(r.at as Date).getTime(), r]));
    const out: ThroughputPoint[] = [];
    for (let t = w.from.getTime(); t < w.to.getTime(); t += bucketMs) {
      const r = byTime.get(t);
      out.push({
        at: new Date(t),
        submitted: Number(r?.submitted ?? 0), succeeded: Number(r?.succeeded ?? 0),
        failed: Number(r?.failed ?? 0), dead: Number(r?.dead ?? 0),
      });
    }
    return out;
  }

  /** p50/p95/p99 per (queue, type), and over all of them. */
  async durations(w: AnalyticsWindow): Promise<{ items: QueueTypeDurations[]; overall: DurationPercentiles }> {
    const { rows } = await this.db.query(A.analyticsHistograms.text, windowParams(w));
    const byKey = new Map<string, { queue: string; type: string; h: Histogram }>();
    const all: Histogram = new Map();
    for (const r of rows) {
      const key = JSON.stringify([r.queue, r.type]);
      let e = byKey.get(key);
      if (!e) byKey.set(key, (e = { queue: r.queue, type: r.type, h: new Map() }));
      addStored(e.h, r.ix, r.n);
      addStored(all, r.ix, r.n);
    }
    const items = [...byKey.values()]
      .sort((a, b) => (a.queue === b.queue ? (a.type < b.type ? -1 : 1) : a.queue < b.queue ? -1 : 1))
      .map((e) => ({ queue: e.queue, type: e.type, ...withPercentiles(e.h) }));
    return { items, overall: withPercentiles(all) };
  }

  /** Counts and failure rate per (queue, type). */
  async failures(w: AnalyticsWindow): Promise<QueueTypeFailures[]> {
    const { rows } = await this.db.query(A.analyticsTotals.text, windowParams(w));
    return rows.map((r) => {
      const [submitted, succeeded, failed, dead, cancelled] = [r.submitted, r.succeeded, r.failed, r.dead, r.cancelled].map(Number) as [number, number, number, number, number];
      return { queue: r.queue, type: r.type, submitted, succeeded, failed, dead, cancelled, failureRate: ratio(failed, succeeded + failed) };
    });
  }

  /** Per worker that ended attempts in the window, and every active one (at most WORKERS_MAX). */
  async workers(w: Omit<AnalyticsWindow, 'queue' | 'type'>): Promise<WorkerPerformance[]> {
    const ranges = covering(w);
    const { rows } = await this.db.query(A.analyticsWorkerTotals.text, [...ranges, WORKERS_MAX]);
    if (rows.length === 0) return [];
    const hists = await this.db.query(A.analyticsWorkerHistograms.text, [...ranges, rows.map((r) => r.worker_id)]);
    const byWorker = new Map<string, Histogram>();
    for (const r of hists.rows) {
      let h = byWorker.get(r.worker_id);
      if (!h) byWorker.set(r.worker_id, (h = new Map()));
      addStored(h, r.ix, r.n);
    }
    return rows.map((r) => {
      const succeeded = Number(r.succeeded);
      const failed = Number(r.failed);
      return {
        workerId: r.worker_id, name: r.name ?? null, state: r.state ?? null, lastSeenAt: r.last_seen_at ?? null,
        tasks: succeeded + failed, succeeded, failed, successRate: ratio(succeeded, succeeded + failed),
        ...withPercentiles(byWorker.get(r.worker_id)),
      };
    });
  }

  /** Queues (ready, running, oldest ready age), workers online, the rollup's progress. */
  async health(): Promise<HealthSummary> {
    const now = this.clock.now();
    const [queues, summary] = await Promise.all([
      this.db.query(A.analyticsHealthQueues, [now, HEALTH_QUEUES_MAX]),
      this.db.query(A.analyticsHealthSummary, [now]),
    ]);
    const s = summary.rows[0]!;
    return {
      at: s.now,
      queues: queues.rows.map((q) => ({
        name: q.name, paused: q.paused, ready: Number(q.ready), running: Number(q.running),
        oldestReadyAgeMs: Number(q.oldest_ready_age_ms ?? 0),
      })),
      workers: { online: s.workers_online, slots: s.slots },
      rollupFinalThrough: s.final_through ?? null,
      rollupUpdatedAt: s.updated_at ?? null,
    };
  }
}
