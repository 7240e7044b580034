/**
 * The analytics API's statements: the rollup rows of a window (analytics/tiers.ts chooses
 * them), never `tasks` or `attempts`, except the health summary, which reads the ready and
 * running sets through their indexes. The rollup duty writes them (analytics.ts).
 */
import type { Statement } from '../db/types.ts';

/**
 * The row ranges of a window (analytics/tiers.ts): $1 resolutions, $2 starts, $3 ends, one
 * range per element, each read through the primary key. A window's rows come from several
 * tiers (coarse in the middle, fine at the edges), all of which merge exactly.
 */
const RANGES = `unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS w(resolution, lo, hi)`;

/** The rows of the ranges (of the totals too, queue and type ''). */
const ROLLUP_JOIN = `${RANGES}
  JOIN analytics_rollups r ON r.resolution = w.resolution AND r.bucket >= w.lo AND r.bucket < w.hi`;

/** The (queue, type) rows, of queue $4 and type $5 when given. */
const QUEUE_TYPE = `r.queue <> '' AND ($4::text IS NULL OR r.queue = $4) AND ($5::text IS NULL OR r.type = $5)`;

const ROLLUP_ROWS = `${ROLLUP_JOIN}\n WHERE ${QUEUE_TYPE}`;

/** Counts per time bucket of $6 seconds (aligned on the epoch), oldest first. */
const THROUGHPUT_SELECT = `
SELECT date_bin(make_interval(secs => $6), r.bucket, timestamptz 'epoch') AS at,
       sum(r.submitted)::bigint AS submitted, sum(r.succeeded)::bigint AS succeeded,
       sum(r.failed)::bigint AS failed, sum(r.dead)::bigint AS dead`;

/**
 * analyticsThroughput: counts per time bucket of $6 seconds (aligned on the epoch) of queue $4
 * and/or type $5, oldest first; buckets with no row are absent.
 * $1-$3 the row ranges, $4 queue or null, $5 type or null, $6 bucket seconds
 */
export const analyticsThroughput: Statement = {
  name: 'tf_analytics_throughput',
  text: `${THROUGHPUT_SELECT}
  FROM ${ROLLUP_ROWS}
 GROUP BY 1 ORDER BY 1`,
};

/**
 * analyticsThroughputTotals: the same for all queues and types, from the totals rows (queue
 * and type ''): one row per minute or hour instead of one per (queue, type).
 * $1-$3 the row ranges, $4 and $5 unused (null), $6 bucket seconds
 */
export const analyticsThroughputTotals: Statement = {
  name: 'tf_analytics_throughput_totals',
  text: `${THROUGHPUT_SELECT}
  FROM ${ROLLUP_JOIN}
 WHERE r.queue = '' AND r.type = '' AND $4::text IS NULL AND $5::text IS NULL
 GROUP BY 1 ORDER BY 1`,
};

/**
 * analyticsTotals: counts per (queue, type) over a window.
 * $1-$3 the row ranges, $4 queue or null, $5 type or null
 */
export const analyticsTotals: Statement = {
  name: 'tf_analytics_totals',
  text: `
SELECT r.queue, r.type, sum(r.submitted)::bigint AS submitted, sum(r.succeeded)::bigint AS succeeded,
       sum(r.failed)::bigint AS failed, sum(r.dead)::bigint AS dead, sum(r.cancelled)::bigint AS cancelled
  FROM ${ROLLUP_ROWS}
 GROUP BY r.queue, r.type ORDER BY r.queue, r.type`,
};

/**
 * analyticsHistograms: the duration histogram of each row of a window that has one, as text
 * (`ix` and `n`: the arrays' elements, comma-separated), merged by the caller
 * (analytics/analytics.ts). Merging here, by unnest and a hash aggregate over (queue, type,
 * bucket), took most of an answer's time: 33,000 to 40,000 entries for an hour of minute rows
 * or a week of day rows (80-100 ms of a 120-170 ms query on the loaded bench machine, where
 * reading the rows as text took 20-60 ms; bench/analytics.ts).
 * $1-$3 the row ranges, $4 queue or null, $5 type or null
 */
export const analyticsHistograms: Statement = {
  name: 'tf_analytics_histograms',
  text: `
SELECT r.queue, r.type, array_to_string(r.hist_ix, ',') AS ix, array_to_string(r.hist_n, ',') AS n
  FROM ${ROLLUP_JOIN}
 WHERE ${QUEUE_TYPE} AND cardinality(r.hist_ix) > 0`,
};

/**
 * analyticsWorkerTotals: per worker, the attempts it ended in a window, and every active
 * worker even without any; most attempts first, at most $4.
 * $1-$3 the row ranges, $4 limit
 */
export const analyticsWorkerTotals: Statement = {
  name: 'tf_analytics_worker_totals',
  text: `
WITH s AS (
  SELECT r.worker_id, sum(r.succeeded)::bigint AS succeeded, sum(r.failed)::bigint AS failed
    FROM ${RANGES}
    JOIN analytics_worker_rollups r ON r.resolution = w.resolution AND r.bucket >= w.lo AND r.bucket < w.hi
   GROUP BY r.worker_id
),
ids AS (SELECT worker_id AS id FROM s UNION SELECT id FROM workers WHERE state = 'active')
SELECT ids.id AS worker_id, k.name, k.state, k.last_seen_at,
       coalesce(s.succeeded, 0) AS succeeded, coalesce(s.failed, 0) AS failed
  FROM ids LEFT JOIN s ON s.worker_id = ids.id LEFT JOIN workers k ON k.id = ids.id
 ORDER BY coalesce(s.succeeded + s.failed, 0) DESC, ids.id
 LIMIT $4`,
};

/**
 * analyticsWorkerHistograms: the duration histograms of workers $4 over a window, row by row
 * as text, merged by the caller (as analyticsHistograms).
 * $1-$3 the row ranges, $4 uuid[]
 */
export const analyticsWorkerHistograms: Statement = {
  name: 'tf_analytics_worker_histograms',
  text: `
SELECT r.worker_id, array_to_string(r.hist_ix, ',') AS ix, array_to_string(r.hist_n, ',') AS n
  FROM ${RANGES}
  JOIN analytics_worker_rollups r ON r.resolution = w.resolution AND r.bucket >= w.lo AND r.bucket < w.hi
 WHERE r.worker_id = ANY ($4::uuid[]) AND cardinality(r.hist_ix) > 0`,
};

/**
 * analyticsHealthQueues: per queue, paused, ready and running counts, and the oldest ready
 * task's wait. Reads the ready set (tasks_ready) and the running set (tasks_running), never
 * the finished tasks: its cost grows with the backlog, not with history.
 * $1 now, $2 limit
 */
export const analyticsHealthQueues: Statement = {
  name: 'tf_analytics_health_queues',
  text: `
WITH ready AS (
  SELECT queue, count(*)::bigint AS ready, min(run_at) AS oldest FROM tasks WHERE state = 'queued' GROUP BY queue
),
running AS (
  SELECT queue, count(*)::bigint AS running FROM tasks WHERE state = 'running' GROUP BY queue
)
SELECT q.name, q.paused, coalesce(r.ready, 0) AS ready, coalesce(x.running, 0) AS running,
       greatest(0, floor(extract(epoch FROM coalesce($1::timestamptz, now()) - r.oldest) * 1000))::bigint AS oldest_ready_age_ms
  FROM queues q LEFT JOIN ready r ON r.queue = q.name LEFT JOIN running x ON x.queue = q.name
 ORDER BY q.name
 LIMIT $2`,
};

/**
 * analyticsHealthSummary: workers online and their slots, the rollup's watermark, the time.
 * $1 now
 */
export const analyticsHealthSummary: Statement = {
  name: 'tf_analytics_health_summary',
  text: `
SELECT (SELECT count(*) FROM workers WHERE state = 'active')::integer AS workers_online,
       (SELECT coalesce(sum(concurrency), 0) FROM workers WHERE state = 'active')::integer AS slots,
       s.final_through, s.updated_at, coalesce($1::timestamptz, now()) AS now
  FROM analytics_state s`,
};
