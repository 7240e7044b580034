/** Statements on `queues`. Only the engine calls these. */
import type { Statement } from '../db/types.ts';

/**
 * queueStats: every queue (or one, $1) with its task counts per state, the oldest ready
 * task's run time and its settings (the columns of sql/flow.ts SETTINGS_COLUMNS). Counting reads every task of the queue: an operator's call, not a hot one.
 * $1 queue or null, $2 now
 */
export const queueStats = `
WITH counts AS (
  SELECT queue, json_object_agg(state, n) AS counts
    FROM (SELECT queue, state, count(*)::integer AS n FROM tasks
           WHERE ($1::text IS NULL OR queue = $1) GROUP BY queue, state) s
   GROUP BY queue
),
ready AS (
  SELECT queue, min(run_at) AS oldest FROM tasks
   WHERE state = 'queued' AND ($1::text IS NULL OR queue = $1) GROUP BY queue
)
SELECT q.name, q.paused, q.paused_at, q.created_at, coalesce(c.counts, '{}') AS counts,
       q.max_running, q.key_max_running, q.rate_limit, q.rate_interval_ms, q.rate_burst, q.key_rate_limit,
       q.key_rate_interval_ms, q.key_rate_burst, q.max_depth, q.max_age_ms, q.default_max_attempts, q.default_backoff, q.fair, q.limited,
       r.oldest AS oldest_ready_at, coalesce($2::timestamptz, now()) AS now
  FROM queues q LEFT JOIN counts c ON c.queue = q.name LEFT JOIN ready r ON r.queue = q.name
 WHERE ($1::text IS NULL OR q.name = $1)
 ORDER BY q.name`;

/**
 * queueSetPaused: pauses or resumes a queue, creating it if needed (a queue can be paused
 * before its first task). Claims skip a paused queue; nothing else changes.
 * $1 name, $2 paused, $3 now
 */
export const queueSetPaused: Statement = {
  name: 'tf_queue_set_paused',
  text: `
INSERT INTO queues (name, paused, paused_at)
VALUES ($1, $2, CASE WHEN $2 THEN coalesce($3::timestamptz, now()) END)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, paused_at = excluded.paused_at
RETURNING name`,
};
