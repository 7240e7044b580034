/**
 * The analytics conformance suite, run unchanged on each driver (analytics.pglite.test.ts,
 * analytics.postgres.test.ts): a fabricated history with every figure known exactly, the
 * rollup duty's passes, and the answers compared with the exact figures (counts equal,
 * percentiles within the histogram's documented error bound); the engine's own settlements
 * rolled up; a pass that is repeated or run by two nodes at once leaves the same rows.
 */
import { describe, expect, it } from 'vitest';
import {
  Analytics, Engine, ERROR_BOUND, loadMigrations, ManualClock, summaryWindow, throughputWindow, type Database, type DriverName,
} from '@taskflow/core';
import { useTestDatabases } from '../support/db.ts';
import { fabricate, insertHistory, WORKER_IDS, type FabricatedAttempt, type FabricatedTask } from '../support/history.ts';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** The exact nearest-rank percentile of `values`. */
function exactPercentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(p * sorted.length)) - 1]!;
}

function expectWithinBound(estimate: number | null, values: number[], p: number): void {
  const exact = exactPercentile(values, p);
  expect(estimate).not.toBeNull();
  expect(Math.abs(estimate! / exact - 1), `p${p * 100}: ${estimate} vs exact ${exact}`).toBeLessThanOrEqual(ERROR_BOUND + 1e-9);
}

const failedAttempts = (t: FabricatedTask) => t.attempts.filter((a) => a.outcome !== 'succeeded');
/** Attempts whose duration the worker reported: succeeded and failed (not lease_expired). */
const timed = (a: FabricatedAttempt) => a.outcome !== 'lease_expired';

async function rollUpAll(analytics: Analytics): Promise<number> {
  let passes = 0;
  for (;;) {
    const pass = await analytics.rollup({ backfillMs: 6 * HOUR });
    passes++;
    if (!pass.behind) return passes;
  }
}

export function describeAnalyticsConformance(driver: DriverName): void {
  const dbs = useTestDatabases(driver, { migrate: false });

  async function withHistory(n = 1500) {
    const db = await dbs.fresh();
    const history = fabricate(n, T0, 3 * HOUR, 7);
    await insertHistory(db, history, T0 + 3 * HOUR);
    const clock = new ManualClock(new Date(T0 + 4 * HOUR + 5 * MINUTE));
    const analytics = new Analytics(db, clock);
    await rollUpAll(analytics);
    return { db, history, clock, analytics };
  }

  describe(`analytics over a fabricated history (${driver})`, () => {
    it('counts submissions, successes, failed attempts and deaths per bucket exactly', async () => {
      const { history, analytics } = await withHistory();
      const w = throughputWindow('4h', '15m', new Date(T0 + 4 * HOUR - 1));
      expect(w.from.getTime()).toBe(T0);
      const points = await analytics.throughput(w, w.bucketMs);
      expect(points).toHaveLength(16);
      const bucket = (t: number) => Math.floor((t - T0) / (15 * MINUTE));
      const expected = points.map(() => ({ submitted: 0, succeeded: 0, failed: 0, dead: 0 }));
      for (const t of history) {
        expected[bucket(t.createdAt)]!.submitted++;
        if (t.state === 'succeeded') expected[bucket(t.finishedAt)]!.succeeded++;
        if (t.state === 'dead') expected[bucket(t.finishedAt)]!.dead++;
        for (const a of failedAttempts(t)) expected[bucket(a.finishedAt)]!.failed++;
      }
      expect(points.map(({ at: _, ...counts }) => counts)).toEqual(expected);
      expect(points.map((p) => p.at.getTime())).toEqual(points.map((_, i) => T0 + i * 15 * MINUTE));
      // The same counts from hour rows, in hour buckets.
      const hours = await analytics.throughput(throughputWindow('4h', '1h', new Date(T0 + 4 * HOUR - 1)), HOUR);
      expect(hours.map((h) => h.succeeded)).toEqual([0, 1, 2, 3].map((h) => expected.slice(h * 4, h * 4 + 4).reduce((s, e) => s + e.succeeded, 0)));
      const [day] = await analytics.throughput(throughputWindow('1d', '1d', new Date(T0)), 86_400_000);
      expect(day).toEqual({ at: new Date(T0), ...['submitted', 'succeeded', 'failed', 'dead'].reduce((o, k) => ({ ...o, [k]: expected.reduce((n, e) => n + e[k as 'dead'], 0) }), {}) });
    });

    it('gives p50/p95/p99 per queue and type within the error bound, the same from minute, hour and day rows', async () => {
      const { history, analytics } = await withHistory();
      const fromMinutes = await analytics.durations(summaryWindow('6h', new Date(T0 + 4 * HOUR)));
      const fromHours = await analytics.durations(summaryWindow('24h', new Date(T0 + 4 * HOUR)));
      const fromDays = await analytics.durations(summaryWindow('3d', new Date(T0 + 4 * HOUR)));
      expect(fromHours).toEqual(fromMinutes);
      expect(fromDays).toEqual(fromMinutes);
      const keys = [...new Set(history.map((t) => `${t.queue}/${t.type}`))].sort();
      expect(fromMinutes.items.map((i) => `${i.queue}/${i.type}`)).toEqual(keys);
      for (const item of fromMinutes.items) {
        const durations = history
          .filter((t) => t.queue === item.queue && t.type === item.type)
          .flatMap((t) => t.attempts.filter(timed).map((a) => a.finishedAt - a.startedAt));
        expect(item.count).toBe(durations.length);
        expectWithinBound(item.p50Ms, durations, 0.5);
        expectWithinBound(item.p95Ms, durations, 0.95);
        expectWithinBound(item.p99Ms, durations, 0.99);
      }
      const all = history.flatMap((t) => t.attempts.filter(timed).map((a) => a.finishedAt - a.startedAt));
      expect(fromMinutes.overall.count).toBe(all.length);
      expectWithinBound(fromMinutes.overall.p95Ms, all, 0.95);
    });

    it('answers a window cut across hours from minute, hour and 6-hour rows, exactly as the history says', async () => {
      const { history, analytics } = await withHistory();
      // [T0 + 25 min, T0 + 2 h 35 min): minutes at both edges, the hour between.
      const cut = summaryWindow('130m', new Date(T0 + 2 * HOUR + 35 * MINUTE - 1));
      expect([cut.from.getTime(), cut.to.getTime()]).toEqual([T0 + 25 * MINUTE, T0 + 2 * HOUR + 35 * MINUTE]);
      const inCut = (t: number) => t >= cut.from.getTime() && t < cut.to.getTime();
      const failures = await analytics.failures(cut);
      const keys = [...new Set(history.map((t) => `${t.queue}/${t.type}`))].sort();
      expect(failures.map((f) => `${f.queue}/${f.type}`)).toEqual(keys);
      for (const f of failures) {
        const mine = history.filter((t) => t.queue === f.queue && t.type === f.type);
        expect(f).toMatchObject({
          submitted: mine.filter((t) => inCut(t.createdAt)).length,
          succeeded: mine.filter((t) => t.state === 'succeeded' && inCut(t.finishedAt)).length,
          failed: mine.reduce((n, t) => n + failedAttempts(t).filter((a) => inCut(a.finishedAt)).length, 0),
          dead: mine.filter((t) => t.state === 'dead' && inCut(t.finishedAt)).length,
        });
      }
      const durations = history.flatMap((t) => t.attempts.filter((a) => timed(a) && inCut(a.finishedAt)).map((a) => a.finishedAt - a.startedAt));
      const { overall } = await analytics.durations(cut);
      expect(overall.count).toBe(durations.length);
      expectWithinBound(overall.p50Ms, durations, 0.5);
      expectWithinBound(overall.p99Ms, durations, 0.99);
      // [T0 - 6 h, T0 + 6 h): two 6-hour rows, the second holding the whole history.
      const quarters = summaryWindow('12h', new Date(T0 + 6 * HOUR - 1));
      expect(await analytics.durations(quarters)).toEqual(await analytics.durations(summaryWindow('6h', new Date(T0 + 4 * HOUR))));
      const perWorker = await analytics.workers(quarters);
      expect(perWorker.reduce((n, w) => n + w.tasks, 0)).toBe(history.reduce((n, t) => n + t.attempts.length, 0));
      const [sixHours] = await analytics.throughput(throughputWindow('6h', '6h', new Date(T0)), 6 * HOUR);
      expect(sixHours).toMatchObject({ at: new Date(T0), submitted: history.length });
    });

    it('gives the failure rate per queue and type, and per worker its tasks, success rate and durations', async () => {
      const { history, analytics } = await withHistory();
      const window = summaryWindow('6h', new Date(T0 + 4 * HOUR));
      const failures = await analytics.failures(window);
      for (const f of failures) {
        const mine = history.filter((t) => t.queue === f.queue && t.type === f.type);
        const failed = mine.reduce((n, t) => n + failedAttempts(t).length, 0);
        const succeeded = mine.filter((t) => t.state === 'succeeded').length;
        expect(f).toEqual({
          queue: f.queue, type: f.type, submitted: mine.length, succeeded, failed,
          dead: mine.filter((t) => t.state === 'dead').length, cancelled: mine.filter((t) => t.state === 'cancelled').length,
          failureRate: failed / (succeeded + failed),
        });
      }
      expect(failures).toHaveLength(6);

      const workers = await analytics.workers(window);
      expect(workers.map((w) => w.workerId).sort()).toEqual([...WORKER_IDS].sort());
      for (const w of workers) {
        const i = WORKER_IDS.indexOf(w.workerId);
        const attempts = history.flatMap((t) => t.attempts).filter((a) => a.worker === i);
        const succeeded = attempts.filter((a) => a.outcome === 'succeeded').length;
        expect(w).toMatchObject({ name: `worker-${i}`, state: 'active', tasks: attempts.length, succeeded, failed: attempts.length - succeeded });
        expect(w.successRate).toBeCloseTo(succeeded / attempts.length, 12);
        expect(w.lastSeenAt?.getTime()).toBe(T0 + 3 * HOUR + i * 1000);
        const durations = attempts.filter(timed).map((a) => a.finishedAt - a.startedAt);
        expectWithinBound(w.p50Ms, durations, 0.5);
        expectWithinBound(w.p99Ms, durations, 0.99);
      }
    });

    it("gives a database that had rollups before 6-hour rows the rows the duty keeps (the migration adding them)", async () => {
      const { db } = await withHistory(600);
      const quarters = (d: Database) =>
        Promise.all(['analytics_rollups', 'analytics_worker_rollups'].map((table) =>
          d.query(`SELECT * FROM ${table} WHERE resolution = '6h' ORDER BY 1, 2, 3, 4`).then((r) => r.rows)));
      const kept = await quarters(db);
      expect(kept[0]!.length).toBeGreaterThan(5);
      expect(kept[1]!.length).toBeGreaterThan(2);
      // The migration's backfill (its statements after the constraints and the index), on the hour rows alone.
      const migration = loadMigrations().find((m) => m.name === 'obs')!;
      await db.query(`DELETE FROM analytics_rollups WHERE resolution = '6h'`);
      await db.query(`DELETE FROM analytics_worker_rollups WHERE resolution = '6h'`);
      await db.exec(migration.sql.slice(migration.sql.indexOf('WITH m AS')));
      expect(await quarters(db)).toEqual(kept);
    });

    it('leaves the same rows when a pass is repeated, and when two run at once', async () => {
      const { db, analytics } = await withHistory(600);
      const snapshot = (d: Database) =>
        d.query(`SELECT resolution, bucket, queue, type, submitted, succeeded, failed, dead, cancelled, hist_ix, hist_n
                   FROM analytics_rollups ORDER BY 1, 2, 3, 4`).then((r) => r.rows);
      const before = await snapshot(db);
      expect(before.length).toBeGreaterThan(100);
      // Back to the start: every minute is recomputed, by two passes at a time.
      await db.query(`UPDATE analytics_state SET final_through = NULL, id_mark = 0, id_mark_at = NULL, pending_mark = NULL`);
      for (;;) {
        const passes = await Promise.all([analytics.rollup({ backfillMs: 6 * HOUR }), analytics.rollup({ backfillMs: 6 * HOUR })]);
        if (passes.every((p) => !p.ran || !p.behind)) break;
      }
      expect(await snapshot(db)).toEqual(before);
    });
  });

  describe(`analytics of the engine's own settlements (${driver})`, () => {
    it("rolls up tasks the engine ran, minute by minute as the duty's passes go", async () => {
      const db = await dbs.fresh();
      const clock = new ManualClock(new Date(T0));
      const engine = new Engine({ db, clock });
      const analytics = new Analytics(db, clock);
      await analytics.rollup({ backfillMs: HOUR }); // the first pass: nothing yet
      const worker = await engine.registerWorker({ name: 'w', queues: [{ name: 'live', weight: 1 }], concurrency: 10 });
      await engine.enqueue([1, 2, 3, 4].map((i) => ({ type: 'job', queue: 'live', maxAttempts: i === 4 ? 1 : 3 })));
      clock.advance(10_000);
      const claimed = await engine.claim(worker.id, [{ name: 'live', weight: 1 }], 10);
      expect(claimed).toHaveLength(4);
      clock.advance(250);
      const [a, b, c, d] = claimed;
      await engine.settle(worker.id, [
        { id: a!.id, attempt: 1, status: 'succeeded' },
        { id: b!.id, attempt: 1, status: 'succeeded' },
        { id: c!.id, attempt: 1, status: 'failed', error: { message: 'again' } },
        { id: d!.id, attempt: 1, status: 'failed', error: { message: 'last' } },
      ]);
      clock.advance(30_000);
      await analytics.rollup();
      const [point] = await analytics.throughput(throughputWindow('1h', '1h', clock.now()), HOUR);
      expect(point).toMatchObject({ submitted: 4, succeeded: 2, failed: 2, dead: 1 });
      const { items } = await analytics.durations(summaryWindow('1h', clock.now()));
      expect(items).toEqual([{ queue: 'live', type: 'job', count: 4, p50Ms: expect.any(Number), p95Ms: expect.any(Number), p99Ms: expect.any(Number) }]);
      expect(Math.abs(items[0]!.p95Ms! / 250 - 1)).toBeLessThanOrEqual(ERROR_BOUND);
      const [perf] = await analytics.workers(summaryWindow('1h', clock.now()));
      expect(perf).toMatchObject({ workerId: worker.id, name: 'w', tasks: 4, succeeded: 2, failed: 2, successRate: 0.5 });
      // One task waiting 5 s (the one that failed and may retry waits for its backoff: not ready).
      await engine.enqueue([{ type: 'job', queue: 'live' }]);
      clock.advance(5000);
      const health = await analytics.health();
      expect(health.queues).toEqual([{ name: 'live', paused: false, ready: 1, running: 0, oldestReadyAgeMs: 5000 }]);
      expect(health.workers).toEqual({ online: 1, slots: 10 });
    });
  });
}
