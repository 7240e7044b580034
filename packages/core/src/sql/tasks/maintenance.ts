/** What the background duties run besides rescue: promotion of due tasks, expiry, and vacuum. */
import type { Statement } from '../../db/types.ts';
import { dependentsOfEnded } from './dependents.ts';

/**
 * taskPromoteDue: scheduled and retrying tasks whose run time has come become `queued`, at most
 * $2 per call. Safe on every node at once (SKIP LOCKED).
 * $1 now, $2 limit
 */
export const taskPromoteDue: Statement = {
  name: 'tf_task_promote_due',
  text: `
WITH clock AS (SELECT coalesce($1::timestamptz, now()) AS t),
due AS (
  SELECT id FROM tasks, clock c
   WHERE state IN ('scheduled', 'retrying') AND run_at <= c.t
   ORDER BY run_at LIMIT $2 FOR UPDATE OF tasks SKIP LOCKED
)
UPDATE tasks t SET state = 'queued' FROM due WHERE t.id = due.id
RETURNING t.queue, t.state`,
};

/**
 * taskNextDue: milliseconds until the earliest scheduled or retrying task becomes ready (null
 * when there is none; zero or less when one is due). Served by `tasks_due`. $1 now
 */
export const taskNextDue: Statement = {
  name: 'tf_task_next_due',
  text: `SELECT (extract(epoch FROM (min(run_at) - coalesce($1::timestamptz, now()))) * 1000)::float8 AS ms
           FROM tasks WHERE state IN ('scheduled', 'retrying')`,
};

/**
 * taskExpire: waiting tasks (scheduled, queued, retrying) whose deadline has come
 * (expires_at <= now) become `cancelled` with cancel_reason `expired`, at most $2 per call,
 * oldest deadline first. Served by `tasks_expiring`; safe on every node at once (SKIP LOCKED).
 * The claim already steps over such a task (claimCtes), so no attempt starts once its deadline
 * has come, whether or not this has run. An expired task takes its dependents with it, as a
 * cancel does (dependentsOfEnded). Returns the expired tasks (kind 'settled') and the
 * dependents made ready (kind 'dependent').
 * $1 now, $2 limit
 */
export const taskExpire: Statement = {
  name: 'tf_task_expire',
  text: `
WITH RECURSIVE clock AS (SELECT coalesce($1::timestamptz, now()) AS t),
due AS (
  SELECT id FROM tasks, clock c
   WHERE expires_at <= c.t AND expires_at IS NOT NULL AND state IN ('scheduled', 'queued', 'retrying')
   ORDER BY expires_at LIMIT $2 FOR UPDATE OF tasks SKIP LOCKED
),
upd AS (
  UPDATE tasks t SET state = 'cancelled', cancel_reason = 'expired', finished_at = c.t
    FROM due, clock c
   WHERE t.id = due.id
  RETURNING t.id, t.queue, t.state, t.run_at, t.has_children, t.workflow_id
),
${dependentsOfEnded('upd')}
SELECT id, queue, state, run_at, 'settled' AS kind FROM upd
UNION ALL
SELECT id, queue, state, run_at, 'dependent' FROM finish_dependents`,
};

/**
 * tasksVacuum: removes the row versions that claims and settlements left behind, and their
 * index entries (migration 0003 sets vacuum_index_cleanup on, so the ready index is never
 * skipped). Run by the embedded driver's maintenance (PGlite has no autovacuum); PostgreSQL's
 * autovacuum does it on a server. Not a prepared statement: VACUUM takes no parameters and
 * cannot run in a transaction.
 */
export const tasksVacuum = 'VACUUM tasks';
