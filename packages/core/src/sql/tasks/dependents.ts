/**
 * Dependencies: what a task's end does to the tasks that wait for it (its dependents), and the
 * statements that create and read edges. docs/workflows.md describes the rules.
 *
 * A child's `pending_parents` counts its parents that have not succeeded (for an `on_finish`
 * edge, a batch's completion task: not finished). Every change of it happens in the statement
 * that ended the parent: the fragments below are CTEs spliced into those statements, over a
 * CTE of the tasks that statement ended. Concurrent parents of one child serialise on the
 * child's row lock, and each decrement reads the row's latest version (READ COMMITTED
 * re-checks an updated row), so no decrement is lost. Only a task with `has_children` is looked
 * at: a plain task costs one boolean in the settle statement and the index probes of empty
 * arrays, and `= ANY(ARRAY(...))` keeps every probe an index scan whatever the planner guesses
 * (as claimCtes does).
 */
import type { Statement } from '../../db/types.ts';

/** The states of a task that has not finished. */
export const UNFINISHED = `'blocked', 'scheduled', 'queued', 'retrying', 'running'`;

/**
 * The state a blocked task takes when its last parent is done: its run time decides, as at
 * enqueue. Needs the `clock` CTE as `c`.
 */
const READY_STATE = `CASE WHEN k.run_at > c.t THEN 'scheduled' ELSE 'queued' END`;

/** Adds `n` to the counter at `path` of a batch completion task's payload. */
const bump = (payload: string, path: string, n: string) =>
  `jsonb_set(${payload}, '{batch,${path}}', to_jsonb(coalesce((${payload} #>> '{batch,${path}}')::integer, 0) + ${n}))`;

/**
 * CTEs `unblock_edges` and `unblocked`: the children of the tasks of CTE `src` (columns id,
 * has_children) that just succeeded. Each child's pending count drops by its parents among
 * them; at zero a blocked child is ready (queued or scheduled). A batch's completion task also
 * counts the success in its payload. Returns the children (id, queue, state, run_at) for the
 * wake-up. Two settlements that share children may lock them in different orders: PostgreSQL
 * then aborts one as a deadlock, which the engine runs again (engine/settle.ts, runSettle).
 * Locking the children in id order first would rule that out, at the cost of a second write
 * of every child: the 10,000 children of a fan-out took 1.0 s to unblock with that lock and
 * 0.65 s without, on the shared 2-core bench host (`cd bench && npm run workflows`, the gap
 * after the first task), during which no worker has anything to run.
 */
export function unblockAfterSuccess(src: string): string {
  return `unblock_edges AS (
  SELECT d.child, count(*)::integer AS n, bool_or(d.on_finish) AS finish
    FROM task_dependencies d
   WHERE d.parent = ANY(ARRAY(SELECT id FROM ${src} WHERE has_children))
   GROUP BY d.child
),
unblocked AS (
  UPDATE tasks k
     SET pending_parents = greatest(k.pending_parents - e.n, 0),
         state = CASE WHEN k.state = 'blocked' AND k.pending_parents <= e.n THEN ${READY_STATE} ELSE k.state END,
         payload = CASE WHEN e.finish THEN ${bump('k.payload', 'succeeded', 'e.n')} ELSE k.payload END
    FROM unblock_edges e, clock c
   WHERE k.id = e.child AND k.id = ANY(ARRAY(SELECT child FROM unblock_edges))
  RETURNING k.id, k.queue, k.state, k.run_at
)`;
}

/**
 * CTEs for the tasks of CTE `src` (columns id, state, has_children, workflow_id) that just
 * ended `dead` or `cancelled`:
 * - `finish_dependents`: a batch's completion task counts them (payload `batch.dead`,
 *   `batch.cancelled`) and is ready once every member is done;
 * - `doomed`: every descendant over success edges (recursive), which can never run;
 * - `cancelled_dependents`: those descendants still `blocked` are cancelled, and under the
 *   workflow policy `cancel_all` every other unfinished task of the workflow too (a running
 *   one is asked to stop, as a cancel does).
 * Needs `WITH RECURSIVE` and the `clock` CTE. Gives rows (id, queue, state, run_at) in
 * `finish_dependents` for the wake-up.
 */
export function dependentsOfEnded(src: string): string {
  const ended = `SELECT id FROM ${src} WHERE state IN ('dead', 'cancelled')`;
  return `ended_badly AS (
  SELECT id, state, has_children, workflow_id FROM ${src}
   WHERE state IN ('dead', 'cancelled') AND (has_children OR workflow_id IS NOT NULL)
),
finish_edges AS (
  SELECT d.child, count(*) FILTER (WHERE e.state = 'dead')::integer AS dead,
         count(*) FILTER (WHERE e.state = 'cancelled')::integer AS cancelled
    FROM ended_badly e JOIN task_dependencies d ON d.parent = e.id AND d.on_finish
   WHERE e.has_children
   GROUP BY d.child
),
finish_dependents AS (
  UPDATE tasks k
     SET pending_parents = greatest(k.pending_parents - f.dead - f.cancelled, 0),
         state = CASE WHEN k.state = 'blocked' AND k.pending_parents <= f.dead + f.cancelled THEN ${READY_STATE} ELSE k.state END,
         payload = ${bump(bump('k.payload', 'dead', 'f.dead'), 'cancelled', 'f.cancelled')}
    FROM finish_edges f, clock c
   WHERE k.id = f.child AND k.id = ANY(ARRAY(SELECT child FROM finish_edges))
  RETURNING k.id, k.queue, k.state, k.run_at
),
doomed AS (
  SELECT d.child AS id FROM ended_badly e JOIN task_dependencies d ON d.parent = e.id AND NOT d.on_finish
   WHERE e.has_children
  UNION
  SELECT d.child FROM doomed x JOIN task_dependencies d ON d.parent = x.id AND NOT d.on_finish
),
cancel_all AS (
  SELECT w.id FROM workflows w
   WHERE w.id = ANY(ARRAY(SELECT workflow_id FROM ended_badly)) AND w.failure_policy = 'cancel_all'
),
cancelled_dependents AS (
  UPDATE tasks k
     SET state = CASE WHEN k.state = 'running' THEN 'running' ELSE 'cancelled' END,
         cancel_requested = (k.state = 'running'),
         finished_at = CASE WHEN k.state = 'running' THEN NULL ELSE c.t END
    FROM clock c
   WHERE k.id = ANY(ARRAY(
           SELECT id FROM doomed
           UNION
           SELECT m.task_id FROM workflow_tasks m WHERE m.workflow_id = ANY(ARRAY(SELECT id FROM cancel_all))))
     AND k.state IN (${UNFINISHED})
     AND (k.state = 'blocked' OR k.workflow_id = ANY(ARRAY(SELECT id FROM cancel_all)))
     AND k.id <> ALL(ARRAY(${ended}))
     AND k.id <> ALL(ARRAY(SELECT child FROM finish_edges))
  RETURNING k.id
)`;
}

/**
 * taskDependenciesAdd: edges from each parent to each child, pairwise.
 * $1 bigint[] parents, $2 bigint[] children, $3 boolean on_finish (for every edge)
 * Keeps: each parent is marked `has_children`, so its end looks for them.
 */
export const taskDependenciesAdd: Statement = {
  name: 'tf_task_dependencies_add',
  text: `
WITH edges AS (
  INSERT INTO task_dependencies (parent, child, on_finish)
  SELECT p, c, $3::boolean FROM unnest($1::bigint[], $2::bigint[]) AS e(p, c)
  ON CONFLICT DO NOTHING
)
UPDATE tasks SET has_children = true
 WHERE id = ANY(ARRAY(SELECT DISTINCT p FROM unnest($1::bigint[]) AS p)) AND NOT has_children`,
};

/**
 * taskBlockMany: tasks just inserted (in the caller's transaction) join a workflow and wait for
 * their parents. $1 bigint[] ids, $2 text[] refs, $3 integer[] parent counts (pairwise),
 * $4 workflow id or null, $5 boolean: the parents' results are handed to the child (has_parents)
 * Keeps: a task with parents is `blocked` with `pending_parents` = its count; one without
 * keeps its state; each task of a workflow is listed in `workflow_tasks`.
 */
export const taskBlockMany: Statement = {
  name: 'tf_task_block_many',
  text: `
WITH members AS (
  INSERT INTO workflow_tasks (workflow_id, task_id) SELECT $4::bigint, id FROM unnest($1::bigint[]) AS id WHERE $4::bigint IS NOT NULL
)
UPDATE tasks t
   SET workflow_id = $4::bigint, workflow_ref = i.ref, pending_parents = i.n,
       state = CASE WHEN i.n > 0 THEN 'blocked' ELSE t.state END,
       has_parents = $5::boolean AND i.n > 0
  FROM unnest($1::bigint[], $2::text[], $3::integer[]) AS i(id, ref, n)
 WHERE t.id = i.id`,
};

/**
 * taskRecountParents: a task that depends on existing tasks by id re-counts its parents that
 * have not succeeded, and is ready at zero or cancelled when a parent is dead or cancelled.
 * Run after the submit committed: the parents are locked FOR SHARE first, which waits for a
 * success of theirs still in flight and holds back any later one until this commits; a later
 * one then sees the edge and decrements the fresh count. So the count is right whichever
 * committed first. $1 bigint[] child ids, $2 now
 */
export const taskRecountParents: Statement = {
  name: 'tf_task_recount_parents',
  text: `
WITH clock AS (SELECT coalesce($2::timestamptz, now()) AS t),
parents AS (
  SELECT p.id, p.state FROM tasks p
   WHERE p.id = ANY(ARRAY(SELECT d.parent FROM task_dependencies d WHERE d.child = ANY($1::bigint[])))
   ORDER BY p.id FOR SHARE
),
counts AS (
  SELECT d.child, count(*) FILTER (WHERE p.state <> 'succeeded')::integer AS n,
         bool_or(p.state IN ('dead', 'cancelled')) AS doomed
    FROM task_dependencies d JOIN parents p ON p.id = d.parent
   WHERE d.child = ANY($1::bigint[])
   GROUP BY d.child
)
UPDATE tasks k
   SET pending_parents = n.n,
       state = CASE WHEN n.doomed THEN 'cancelled' WHEN n.n = 0 THEN ${READY_STATE} ELSE 'blocked' END,
       finished_at = CASE WHEN n.doomed THEN c.t END
  FROM counts n, clock c
 WHERE k.id = n.child AND k.state = 'blocked' AND (k.pending_parents <> n.n OR n.doomed OR n.n = 0)
RETURNING k.id, k.queue, k.state, k.run_at`,
};

/**
 * taskBlockedLoose: blocked tasks that depend on tasks by id, outside any workflow: the
 * maintenance re-count's victims (in case a node died between a submit and its re-count).
 * Only tasks created before $3 (a submit still between its commit and its own re-count is
 * left to it). $1 after id (exclusive), $2 limit, $3 created before
 */
export const taskBlockedLoose: Statement = {
  name: 'tf_task_blocked_loose',
  text: `SELECT id FROM tasks WHERE state = 'blocked' AND workflow_id IS NULL AND id > $1 AND created_at < $3 ORDER BY id LIMIT $2`,
};

/** taskWithChildren: which of the given tasks have children. $1 bigint[] ids */
export const taskWithChildren: Statement = {
  name: 'tf_task_with_children',
  text: `SELECT id FROM tasks WHERE id = ANY($1::bigint[]) AND has_children`,
};

/**
 * For the claim (claimCtes): the results of the parents of task `t` over success edges, as
 * one JSON object text keyed by each parent's workflow reference (its id when it has none);
 * null for a task without parents, for which the sub-query never runs (CASE evaluates it only
 * when `has_parents`), so a plain claim costs one boolean per task.
 */
export function parentsJson(t: string): string {
  return `CASE WHEN ${t}.has_parents THEN (
    SELECT jsonb_object_agg(coalesce(p.workflow_ref, p.id::text), p.result)::text
      FROM task_dependencies d JOIN tasks p ON p.id = d.parent
     WHERE d.child = ${t}.id AND NOT d.on_finish) END`;
}
