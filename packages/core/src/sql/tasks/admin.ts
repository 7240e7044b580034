/** An operator's transitions: cancel, update, retry and the dead-letter queue. */
import type { Statement } from '../../db/types.ts';
import { TASK_COLUMNS } from './columns.ts';
import { dependentsOfEnded } from './dependents.ts';

/**
 * taskCancel: a task not yet running is cancelled at once; a running one is flagged, and its
 * worker learns it at the next heartbeat. Terminal tasks are left alone (no row returned).
 * A task cancelled at once takes its dependents with it (dependentsOfEnded); `ready_queues`
 * lists the queues (comma-separated) in which a batch's completion task became ready.
 * $1 id, $2 now
 */
export const taskCancel: Statement = {
  name: 'tf_task_cancel',
  text: `
WITH RECURSIVE clock AS (SELECT coalesce($2::timestamptz, now()) AS t),
upd AS (
  UPDATE tasks t
     SET state = CASE WHEN t.state = 'running' THEN 'running' ELSE 'cancelled' END,
         cancel_requested = (t.state = 'running'),
         finished_at = CASE WHEN t.state = 'running' THEN NULL ELSE c.t END
    FROM clock c
   WHERE t.id = $1 AND t.state IN ('blocked', 'scheduled', 'queued', 'retrying', 'running')
  RETURNING ${TASK_COLUMNS}, t.has_children
),
${dependentsOfEnded('upd')}
SELECT ${TASK_COLUMNS},
       (SELECT string_agg(DISTINCT queue, ',') FROM finish_dependents WHERE state = 'queued') AS ready_queues
  FROM upd`,
};

/**
 * Back to `queued` now with a fresh retry budget (attempt_base moves up to attempt; the fencing
 * token keeps counting), as after a manual retry or a DLQ requeue; back to `blocked` instead
 * when parents are still pending (a task cancelled while it waited on them). A deadline that
 * has passed is dropped (an operator retrying an expired task means it to run); a later one
 * stays. Needs a `clock` CTE.
 */
const REQUEUE = `UPDATE tasks t
   SET state = CASE WHEN t.pending_parents > 0 THEN 'blocked' ELSE 'queued' END, run_at = c.t, attempt_base = t.attempt, lease_losses = 0,
       dead_reason = NULL, finished_at = NULL, cancel_requested = false, worker_id = NULL,
       cancel_reason = NULL, expires_at = CASE WHEN t.expires_at > c.t THEN t.expires_at END
  FROM clock c`;

/**
 * taskRequeue: a dead or cancelled task runs again from `queued` with a fresh retry budget
 * (attempt_base moves up to attempt; the fencing token keeps counting). Used by retry and by
 * DLQ requeue; $2 restricts the source states.
 * $1 bigint[] ids, $2 text[] states allowed, $3 now
 */
export const taskRequeue: Statement = {
  name: 'tf_task_requeue',
  text: `
WITH clock AS (SELECT coalesce($3::timestamptz, now()) AS t)
${REQUEUE}
 WHERE t.id = ANY($1::bigint[]) AND t.state = ANY($2::text[])
RETURNING t.id, t.queue, t.state`,
};

/**
 * taskUpdate: changes priority and/or run time of a task that is not running or finished.
 * A new run time re-derives scheduled/queued.
 * $1 id, $2 priority (null = keep), $3 run_at (null = keep), $4 now
 */
export const taskUpdate: Statement = {
  name: 'tf_task_update',
  text: `
WITH clock AS (SELECT coalesce($4::timestamptz, now()) AS t)
UPDATE tasks t
   SET priority = coalesce($2::integer, t.priority),
       run_at = coalesce($3::timestamptz, t.run_at),
       state = CASE WHEN t.state IN ('scheduled', 'queued')
                    THEN CASE WHEN coalesce($3::timestamptz, t.run_at) > c.t THEN 'scheduled' ELSE 'queued' END
                    ELSE t.state END
  FROM clock c
 WHERE t.id = $1 AND t.state IN ('blocked', 'scheduled', 'queued', 'retrying')
RETURNING t.id, t.queue, t.state`,
};

/**
 * What every statement that deletes tasks deletes with them, from its CTE `gone` (`RETURNING
 * id, queue, unique_key, idempotency_key`): their attempts, the unique keys they hold, and
 * their idempotency keys (a key is never held by a task that does not exist; a deleted task's
 * idempotency key may be used again).
 */
export const DELETED_WITH_TASKS = `history AS (DELETE FROM attempts a USING gone WHERE a.task_id = gone.id),
unique_keys AS (
  DELETE FROM task_unique_keys k USING gone
   WHERE gone.unique_key IS NOT NULL AND k.queue = gone.queue AND k.unique_key = gone.unique_key AND k.task_id = gone.id
),
idempotency_keys AS (
  DELETE FROM task_idempotency_keys k USING gone
   WHERE gone.idempotency_key IS NOT NULL AND k.queue = gone.queue AND k.idempotency_key = gone.idempotency_key AND k.task_id = gone.id
)`;

/**
 * taskPurgeDead: deletes dead tasks, and with them what DELETED_WITH_TASKS names, optionally of
 * one queue. $1 queue or null. Returns the number deleted.
 */
export const taskPurgeDead: Statement = {
  name: 'tf_task_purge_dead',
  text: `
WITH gone AS (
  DELETE FROM tasks WHERE state = 'dead' AND ($1::text IS NULL OR queue = $1) RETURNING id, queue, unique_key, idempotency_key
),
${DELETED_WITH_TASKS}
SELECT count(*)::integer AS purged FROM gone`,
};

/**
 * taskRequeueDeadWhere: every dead task of a queue (and type), back to `queued` with a fresh
 * retry budget, as taskRequeue does. $1 queue or null, $2 type or null, $3 now
 */
export const taskRequeueDeadWhere: Statement = {
  name: 'tf_task_requeue_dead_where',
  text: `
WITH clock AS (SELECT coalesce($3::timestamptz, now()) AS t)
${REQUEUE}
 WHERE t.state = 'dead' AND ($1::text IS NULL OR t.queue = $1) AND ($2::text IS NULL OR t.type = $2)
RETURNING t.id, t.queue, t.state`,
};

/** taskExisting: which of the ids exist. $1 bigint[] */
export const taskExisting: Statement = {
  name: 'tf_task_existing',
  text: `SELECT id FROM tasks WHERE id = ANY($1::bigint[])`,
};
