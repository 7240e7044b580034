/** Statements on `stats_snapshot`: the queue gauges of the metrics (engine/stats.ts). */
import type { Statement } from '../db/types.ts';

/**
 * statsElect: in the refresh's transaction, whether this node refreshes the snapshot now: it
 * holds the transaction's advisory lock (no other node is refreshing) and the snapshot is
 * older than $3 ms (none refreshed it within the period). Keeps: one count of the tasks per
 * period across all nodes, whatever their number.
 * $1 lock key text, $2 now, $3 period ms
 */
export const statsElect: Statement = {
  name: 'tf_stats_elect',
  text: `
SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))
       AND NOT EXISTS (SELECT 1 FROM stats_snapshot
                        WHERE taken_at > coalesce($2::timestamptz, now()) - $3 * interval '1 millisecond') AS elected`,
};

/**
 * statsRefresh: counts the unfinished and dead tasks of every queue, the oldest ready and
 * running task, and the live workers and slots serving each queue, into the snapshot. Run once
 * per period by one node (statsElect), never per scrape. Each state is read on its own, so
 * that each branch is served by that state's partial index (tasks_ready, tasks_running,
 * tasks_unfinished, tasks_dead) and the refresh reads the unfinished and dead tasks only, not
 * the history: one scan of the whole table for `state IN (...)` read every finished task too
 * (a refresh with 20,000 queued among 120,000 tasks took 240 ms that way, 23 ms this way, on
 * the 2-core bench host). Finished successes and cancellations are history (retention prunes
 * them) and not counted. Ages are at `taken_at`, on the database clock.
 * $1 now
 */
export const statsRefresh: Statement = {
  name: 'tf_stats_refresh',
  text: `
WITH clock AS (SELECT coalesce($1::timestamptz, now()) AS t),
per_state AS (
  SELECT queue, 'queued' AS state, count(*)::integer AS n, min(run_at) AS ready, NULL::timestamptz AS running
    FROM tasks WHERE state = 'queued' GROUP BY queue
  UNION ALL
  SELECT queue, 'running', count(*)::integer, NULL, min(started_at) FROM tasks WHERE state = 'running' GROUP BY queue
  UNION ALL
  SELECT queue, state, count(*)::integer, NULL, NULL FROM tasks WHERE state IN ('blocked', 'retrying', 'scheduled') GROUP BY queue, state
  UNION ALL
  SELECT queue, 'dead', count(*)::integer, NULL, NULL FROM tasks WHERE state = 'dead' GROUP BY queue
),
counts AS (
  SELECT queue, jsonb_object_agg(state, n) AS counts, min(ready) AS ready, min(running) AS running FROM per_state GROUP BY queue
),
live AS (
  SELECT w.id, w.concurrency, w.queues FROM workers w, clock c WHERE w.state = 'active' AND w.expires_at > c.t
),
serving AS (
  SELECT q ->> 'name' AS queue, count(*)::integer AS workers, sum(l.concurrency)::integer AS slots
    FROM live l, jsonb_array_elements(l.queues) q GROUP BY 1
)
INSERT INTO stats_snapshot (id, taken_at, queues, workers)
SELECT true, c.t,
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                   'queue', q.name, 'paused', q.paused, 'counts', coalesce(n.counts, '{}'),
                   'oldest_ready_age', coalesce(greatest(date_part('epoch', c.t - n.ready), 0), 0),
                   'oldest_running_age', coalesce(greatest(date_part('epoch', c.t - n.running), 0), 0),
                   'workers', coalesce(s.workers, 0), 'slots', coalesce(s.slots, 0)) ORDER BY q.name)
                   FROM queues q LEFT JOIN counts n ON n.queue = q.name
                   LEFT JOIN serving s ON s.queue = q.name), '[]'),
       (SELECT count(*)::integer FROM live)
  FROM clock c
ON CONFLICT (id) DO UPDATE SET taken_at = excluded.taken_at, queues = excluded.queues, workers = excluded.workers`,
};

/** statsRead: the snapshot (no row before the first refresh). */
export const statsRead: Statement = {
  name: 'tf_stats_read',
  text: `SELECT date_part('epoch', taken_at) AS taken_at, queues, workers FROM stats_snapshot`,
};
