/** Statements of workflows and batches (the task side of dependencies is sql/tasks/dependents.ts). */
import type { Statement } from '../db/types.ts';
import { UNFINISHED } from './tasks/dependents.ts';

/** The columns of a workflow read, with its tasks counted per state (over workflow_tasks). */
const WORKFLOW_COLUMNS = `w.id, w.name, w.kind, w.failure_policy, w.task_count, w.completion_task_id, w.created_at,
       (SELECT jsonb_object_agg(state, n) FROM (SELECT t.state, count(*)::integer AS n
                                                  FROM workflow_tasks m JOIN tasks t ON t.id = m.task_id
                                                 WHERE m.workflow_id = w.id GROUP BY t.state) s) AS counts`;

/**
 * workflowInsert: a workflow's row, before its tasks (in the submit's transaction).
 * $1 name, $2 kind, $3 failure policy, $4 task count
 */
export const workflowInsert: Statement = {
  name: 'tf_workflow_insert',
  text: `INSERT INTO workflows (name, kind, failure_policy, task_count) VALUES ($1, $2, $3, $4) RETURNING id`,
};

/** workflowSetCompletion: a batch's completion task. $1 workflow id, $2 task id */
export const workflowSetCompletion: Statement = {
  name: 'tf_workflow_set_completion',
  text: `UPDATE workflows SET completion_task_id = $2 WHERE id = $1`,
};

/** workflowGet: one workflow with its counts. $1 id */
export const workflowGet: Statement = {
  name: 'tf_workflow_get',
  text: `SELECT ${WORKFLOW_COLUMNS} FROM workflows w WHERE w.id = $1`,
};

/** workflowList: a page of workflows, newest first. $1 kind or null, $2 id cursor (exclusive) or null, $3 limit */
export const workflowList: Statement = {
  name: 'tf_workflow_list',
  text: `
SELECT ${WORKFLOW_COLUMNS} FROM workflows w
 WHERE ($1::text IS NULL OR w.kind = $1) AND ($2::bigint IS NULL OR w.id < $2)
 ORDER BY w.id DESC LIMIT $3`,
};

/**
 * workflowCancel: every unfinished task of a workflow is cancelled; a running one is asked to
 * stop (as taskCancel does). Nothing cascades: every task it could reach is cancelled here.
 * $1 workflow id, $2 now
 */
export const workflowCancel: Statement = {
  name: 'tf_workflow_cancel',
  text: `
WITH clock AS (SELECT coalesce($2::timestamptz, now()) AS t)
UPDATE tasks k
   SET state = CASE WHEN k.state = 'running' THEN 'running' ELSE 'cancelled' END,
       cancel_requested = (k.state = 'running'),
       finished_at = CASE WHEN k.state = 'running' THEN NULL ELSE c.t END
  FROM clock c
 WHERE k.id = ANY(ARRAY(SELECT task_id FROM workflow_tasks WHERE workflow_id = $1)) AND k.state IN (${UNFINISHED})
RETURNING k.id`,
};

/**
 * workflowRetry: the dead and cancelled tasks of a finished workflow run again with a fresh
 * retry budget (as taskRequeue): a task whose parents have all succeeded is queued, the others
 * (the descendants of a dead task) are blocked again; their pending counts are still right,
 * since only a success ever lowers them.
 * $1 workflow id, $2 now
 */
export const workflowRetry: Statement = {
  name: 'tf_workflow_retry',
  text: `
WITH clock AS (SELECT coalesce($2::timestamptz, now()) AS t)
UPDATE tasks k
   SET state = CASE WHEN k.pending_parents > 0 THEN 'blocked' ELSE 'queued' END,
       run_at = c.t, attempt_base = k.attempt, lease_losses = 0, dead_reason = NULL, finished_at = NULL,
       cancel_requested = false, worker_id = NULL
  FROM clock c
 WHERE k.id = ANY(ARRAY(SELECT task_id FROM workflow_tasks WHERE workflow_id = $1)) AND k.state IN ('dead', 'cancelled')
RETURNING k.id, k.queue, k.state`,
};
