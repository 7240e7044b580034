/**
 * Statements of the analytics rollups (migrations 0006 and 0013). The rollup duty is the only
 * writer of `analytics_*`; it reads `tasks` and `attempts` and writes nothing else. The
 * analytics API reads the rollups only (analyticsReads.ts).
 *
 * Buckets are aligned on the Unix epoch with `date_bin`, which works on absolute time: the
 * session's time zone cannot move an hour's bounds.
 */
import type { Statement } from '../db/types.ts';

/**
 * The histogram bucket of a duration (an interval expression): floor(8 * log2(microseconds)),
 * at least 0, at most 336 (about 50 days). Eight buckets per doubling; see histogram.ts for
 * the error bound this gives.
 */
const BUCKET_OF = (d: string) =>
  `least(336, floor(8 * ln(greatest(extract(epoch FROM ${d}) * 1e6, 1)) / ln(2)))::smallint`;

/**
 * analyticsLock: the duty's election, for the transaction: true on the one node that runs
 * this pass. Keyed by schema, so that schemas sharing a database do not wait on each other.
 */
export const analyticsLock: Statement = {
  name: 'tf_analytics_lock',
  text: `SELECT pg_try_advisory_xact_lock(1952870770, hashtext(current_schema())) AS locked`,
};

/**
 * analyticsNoJit: for the pass's transaction. The rollup statement's estimated cost is above
 * jit_above_cost at any size, and compiling it took longer than running it (144 ms of 1.3 s
 * for an hour of 53,000 tasks, measured with bench/analytics.ts).
 */
export const analyticsNoJit = `SET LOCAL jit = off`;

/**
 * analyticsStateRead: the watermark row, locked for this pass, with the time of the pass and
 * a new id mark: max(tasks.id) and a time no earlier than the snapshot that saw it. A task
 * with an id at most the mark got its id before that snapshot, in a transaction that began
 * earlier still, so it was created before `mark_at` (with the database's clock; an injected
 * clock, in tests, stands in for both). And the creation time of the first task there is,
 * where the first pass's backfill need not start earlier.
 * $1 now
 */
export const analyticsStateRead: Statement = {
  name: 'tf_analytics_state_read',
  text: `
SELECT final_through, id_mark, id_mark_at, pending_mark, pending_mark_at, coalesce($1::timestamptz, now()) AS now,
       (SELECT created_at FROM tasks ORDER BY id LIMIT 1) AS first_created_at,
       coalesce((SELECT max(id) FROM tasks), 0) AS mark,
       CASE WHEN $1::timestamptz IS NULL THEN clock_timestamp() ELSE $1::timestamptz END AS mark_at
  FROM analytics_state FOR UPDATE`,
};

/**
 * analyticsStateWrite: the watermark after a pass.
 * $1 final_through, $2 id_mark, $3 id_mark_at, $4 pending_mark, $5 pending_mark_at, $6 now
 * Keeps: id_mark_at <= final_through (the marks' promotion is decided in rollup.ts).
 */
export const analyticsStateWrite: Statement = {
  name: 'tf_analytics_state_write',
  text: `
UPDATE analytics_state SET final_through = $1, id_mark = $2, id_mark_at = $3, pending_mark = $4,
       pending_mark_at = $5, updated_at = coalesce($6::timestamptz, now())`,
};

/**
 * analyticsClearMinutes: removes the minute rows of [$1, $2) of both rollup tables before they
 * are recomputed. A pass is a recomputation, not an increment, so running it twice (two
 * nodes, or a retry after a failure) gives the same rows.
 */
export const analyticsClearMinutes: Statement = {
  name: 'tf_analytics_clear_minutes',
  text: `
WITH w AS (DELETE FROM analytics_worker_rollups WHERE resolution = 'minute' AND bucket >= $1 AND bucket < $2)
DELETE FROM analytics_rollups WHERE resolution = 'minute' AND bucket >= $1 AND bucket < $2`,
};

/**
 * analyticsRollupMinutes: the minute rows of [$1, $2) from the raw tables.
 * $1 from, $2 to (minute-aligned), $3 id mark: every task created at or after $1 has an id
 * above it, $4 null or an id above every task created before $2 (rollup.ts): submissions are
 * counted over that range of the primary key, not over the table.
 * Reads: tasks finished in the window through tasks_finished_brin (succeeded, dead,
 * cancelled: the final state is in the row), the attempts that ended without success through
 * attempts_finished_brin (with their task's queue and type), and the tasks created in it.
 * Durations: the succeeded attempts (in the task row) and the failed ones the worker reported.
 * Each minute also gets a totals row, queue and type '' (no queue or type has that name),
 * without a histogram: the unfiltered throughput reads one row per minute instead of one per
 * (queue, type).
 */
export const analyticsRollupMinutes: Statement = {
  name: 'tf_analytics_rollup_minutes',
  text: `
WITH events AS (
  SELECT t.queue, t.type, t.worker_id, t.finished_at AS at, t.state AS kind,
         CASE WHEN t.state = 'succeeded' THEN ${BUCKET_OF('t.finished_at - t.started_at')} END AS ix
    FROM tasks t
   WHERE t.finished_at >= $1 AND t.finished_at < $2 AND t.state IN ('succeeded', 'dead', 'cancelled')
  UNION ALL
  SELECT t.queue, t.type, a.worker_id, a.finished_at, 'failed',
         CASE WHEN a.outcome = 'failed' THEN ${BUCKET_OF('a.finished_at - a.started_at')} END
    FROM attempts a JOIN tasks t ON t.id = a.task_id
   WHERE a.finished_at >= $1 AND a.finished_at < $2 AND a.outcome IN ('failed', 'lease_expired', 'worker_lost')
  UNION ALL
  SELECT t.queue, t.type, NULL, t.created_at, 'submitted', NULL
    FROM tasks t
   WHERE t.id > $3 AND ($4::bigint IS NULL OR t.id <= $4) AND t.created_at >= $1 AND t.created_at < $2
),
binned AS MATERIALIZED (
  SELECT date_bin('1 minute', at, timestamptz 'epoch') AS bucket, queue, type, worker_id, kind, ix FROM events
),
hist AS (
  SELECT bucket, queue, type, array_agg(ix ORDER BY ix) AS hist_ix, array_agg(n ORDER BY ix) AS hist_n
    FROM (SELECT bucket, queue, type, ix, count(*)::integer AS n FROM binned WHERE ix IS NOT NULL
           GROUP BY bucket, queue, type, ix) h
   GROUP BY bucket, queue, type
),
counts AS (
  SELECT bucket, coalesce(queue, '') AS queue, coalesce(type, '') AS type,
         count(*) FILTER (WHERE kind = 'submitted')::integer AS submitted,
         count(*) FILTER (WHERE kind = 'succeeded')::integer AS succeeded,
         count(*) FILTER (WHERE kind = 'failed')::integer AS failed,
         count(*) FILTER (WHERE kind = 'dead')::integer AS dead,
         count(*) FILTER (WHERE kind = 'cancelled')::integer AS cancelled
    FROM binned GROUP BY GROUPING SETS ((bucket, queue, type), (bucket))
),
worker_hist AS (
  SELECT bucket, worker_id, array_agg(ix ORDER BY ix) AS hist_ix, array_agg(n ORDER BY ix) AS hist_n
    FROM (SELECT bucket, worker_id, ix, count(*)::integer AS n FROM binned
           WHERE ix IS NOT NULL AND worker_id IS NOT NULL GROUP BY bucket, worker_id, ix) h
   GROUP BY bucket, worker_id
),
workers AS (
  INSERT INTO analytics_worker_rollups (resolution, bucket, worker_id, succeeded, failed, hist_ix, hist_n)
  SELECT 'minute', c.bucket, c.worker_id, c.succeeded, c.failed, coalesce(h.hist_ix, '{}'), coalesce(h.hist_n, '{}')
    FROM (SELECT bucket, worker_id,
                 count(*) FILTER (WHERE kind = 'succeeded')::integer AS succeeded,
                 count(*) FILTER (WHERE kind = 'failed')::integer AS failed
            FROM binned WHERE worker_id IS NOT NULL AND kind IN ('succeeded', 'failed')
           GROUP BY bucket, worker_id) c
    LEFT JOIN worker_hist h USING (bucket, worker_id)
)
INSERT INTO analytics_rollups (resolution, bucket, queue, type, submitted, succeeded, failed, dead, cancelled, hist_ix, hist_n)
SELECT 'minute', c.bucket, c.queue, c.type, c.submitted, c.succeeded, c.failed, c.dead, c.cancelled,
       coalesce(h.hist_ix, '{}'), coalesce(h.hist_n, '{}')
  FROM counts c LEFT JOIN hist h USING (bucket, queue, type)`,
};

/**
 * Removes the `level` rows of [$1, $2) of both tables before they are recomputed. A statement
 * of its own: a data-modifying CTE runs after the main query, so its deletions would come
 * after the insert of the same keys.
 */
const clearLevel = (level: string) => `
WITH w AS (DELETE FROM analytics_worker_rollups WHERE resolution = '${level}' AND bucket >= $1 AND bucket < $2)
DELETE FROM analytics_rollups WHERE resolution = '${level}' AND bucket >= $1 AND bucket < $2`;

/**
 * Recomputes the `level` rows of [$1, $2) (aligned to `stride`) of both tables from their
 * `source` rows: counts summed, histograms merged bucket by bucket (exact: the buckets are
 * the same at every resolution).
 */
const rollupLevel = (level: string, source: string, stride: string) => `
WITH m AS (
  SELECT date_bin('${stride}', bucket, timestamptz 'epoch') AS b, * FROM analytics_rollups
   WHERE resolution = '${source}' AND bucket >= $1 AND bucket < $2
),
hist AS (
  SELECT b, queue, type, array_agg(ix ORDER BY ix) AS hist_ix, array_agg(n ORDER BY ix) AS hist_n
    FROM (SELECT b, queue, type, u.ix, sum(u.n)::integer AS n FROM m, unnest(m.hist_ix, m.hist_n) AS u(ix, n)
           GROUP BY b, queue, type, u.ix) h
   GROUP BY b, queue, type
),
wm AS (
  SELECT date_bin('${stride}', bucket, timestamptz 'epoch') AS b, * FROM analytics_worker_rollups
   WHERE resolution = '${source}' AND bucket >= $1 AND bucket < $2
),
worker_hist AS (
  SELECT b, worker_id, array_agg(ix ORDER BY ix) AS hist_ix, array_agg(n ORDER BY ix) AS hist_n
    FROM (SELECT b, worker_id, u.ix, sum(u.n)::integer AS n FROM wm, unnest(wm.hist_ix, wm.hist_n) AS u(ix, n)
           GROUP BY b, worker_id, u.ix) h
   GROUP BY b, worker_id
),
workers AS (
  INSERT INTO analytics_worker_rollups (resolution, bucket, worker_id, succeeded, failed, hist_ix, hist_n)
  SELECT '${level}', c.b, c.worker_id, c.succeeded, c.failed, coalesce(h.hist_ix, '{}'), coalesce(h.hist_n, '{}')
    FROM (SELECT b, worker_id, sum(succeeded)::integer AS succeeded, sum(failed)::integer AS failed
            FROM wm GROUP BY b, worker_id) c
    LEFT JOIN worker_hist h USING (b, worker_id)
)
INSERT INTO analytics_rollups (resolution, bucket, queue, type, submitted, succeeded, failed, dead, cancelled, hist_ix, hist_n)
SELECT '${level}', c.b, c.queue, c.type, c.submitted, c.succeeded, c.failed, c.dead, c.cancelled,
       coalesce(h.hist_ix, '{}'), coalesce(h.hist_n, '{}')
  FROM (SELECT b, queue, type, sum(submitted)::integer AS submitted, sum(succeeded)::integer AS succeeded,
               sum(failed)::integer AS failed, sum(dead)::integer AS dead, sum(cancelled)::integer AS cancelled
          FROM m GROUP BY b, queue, type) c
  LEFT JOIN hist h USING (b, queue, type)`;

/** analyticsClearHours: the hour rows of [$1, $2), before analyticsRollupHours. */
export const analyticsClearHours: Statement = { name: 'tf_analytics_clear_hours', text: clearLevel('hour') };

/** analyticsRollupHours: the hour rows of [$1, $2) (hour-aligned) from the minute rows. */
export const analyticsRollupHours: Statement = { name: 'tf_analytics_rollup_hours', text: rollupLevel('hour', 'minute', '1 hour') };

/** analyticsClear6h: the 6-hour rows of [$1, $2), before analyticsRollup6h. */
export const analyticsClear6h: Statement = { name: 'tf_analytics_clear_6h', text: clearLevel('6h') };

/**
 * analyticsRollup6h: the 6-hour rows (from 00:00, 06:00, 12:00 and 18:00 UTC) of [$1, $2)
 * (6-hour-aligned) from the hour rows: the middle of a window of hours reads 6 rows as one
 * (analytics/tiers.ts).
 */
export const analyticsRollup6h: Statement = { name: 'tf_analytics_rollup_6h', text: rollupLevel('6h', 'hour', '6 hours') };

/** analyticsClearDays: the day rows of [$1, $2), before analyticsRollupDays. */
export const analyticsClearDays: Statement = { name: 'tf_analytics_clear_days', text: clearLevel('day') };

/**
 * analyticsRollupDays: the day rows (UTC days) of [$1, $2) (day-aligned) from the 6-hour rows.
 * A window of a week merges 7 rows per (queue, type) instead of 168.
 */
export const analyticsRollupDays: Statement = { name: 'tf_analytics_rollup_days', text: rollupLevel('day', '6h', '1 day') };

/**
 * analyticsPrune: drops minute rows older than $1, hour and 6-hour rows older than $2 and day
 * rows older than $3 (retention of the rollups; the raw tables have their own).
 */
export const analyticsPrune: Statement = {
  name: 'tf_analytics_prune',
  text: `
WITH w AS (
  DELETE FROM analytics_worker_rollups
   WHERE (resolution = 'minute' AND bucket < $1) OR (resolution IN ('hour', '6h') AND bucket < $2) OR (resolution = 'day' AND bucket < $3)
)
DELETE FROM analytics_rollups
 WHERE (resolution = 'minute' AND bucket < $1) OR (resolution IN ('hour', '6h') AND bucket < $2) OR (resolution = 'day' AND bucket < $3)`,
};

/**
 * analyticsSummarize: summarizes the BRIN ranges filled since the last summary, where no
 * autovacuum does it ($1: PGlite, which has none; or PostgreSQL with autovacuum off). Not
 * where autovacuum runs: the call takes the table's SHARE UPDATE EXCLUSIVE lock, and waiting
 * on a running autovacuum would cancel it.
 * $1 boolean: summarize whatever autovacuum's setting
 */
export const analyticsSummarize: Statement = {
  name: 'tf_analytics_summarize',
  text: `
SELECT brin_summarize_new_values('tasks_finished_brin'::regclass) + brin_summarize_new_values('attempts_finished_brin'::regclass) AS ranges
 WHERE $1::boolean OR current_setting('autovacuum') = 'off'`,
};

/**
 * analyticsCreatedAt: the creation time of the first task at or after id $1 (and its id),
 * for the search of an id mark when there is none (rollup.ts).
 */
export const analyticsCreatedAt: Statement = {
  name: 'tf_analytics_created_at',
  text: `SELECT id, created_at FROM tasks WHERE id >= $1 ORDER BY id LIMIT 1`,
};
