/**
 * The insert of a workflow's or a batch's tasks (engine/workflows.ts): the tasks, their
 * membership and their edges in one statement, each task written once, in its final state.
 * A separate statement, so that a plain submission pays nothing for graphs.
 */
import type { Statement } from '../../db/types.ts';
import { iso } from './columns.ts';
import { insertInput, INSERTED_COLUMNS, INSERTED_STATE, insertedValues, QUEUE_UPSERT } from './insert.ts';

/**
 * taskInsertGraph: inserts the tasks of a workflow or a batch with their workflow, reference
 * and parent counts, lists them in `workflow_tasks` and writes the edges between them.
 * $1..$25 as INSERT_INPUT says (no idempotency or unique keys: a graph is submitted whole);
 * $26 workflow id; per task, in input order: $27 ref text[], $28 pending parents integer[],
 * $29 has_children boolean[]; $30 boolean: the parents' results go to the children
 * (has_parents; a batch's completion task gets counts instead); $31 integer[] parents and $32
 * integer[] children of the edges, pairwise, as 1-based positions in the input; $33 boolean
 * on_finish of every edge (a batch's completion task waits for its members to finish).
 *
 * Keeps: a task with parents is `blocked` with `pending_parents` its count from the start (no
 * second write: inserting and then blocking the 10,000 children of a fan-out wrote each twice,
 * a third time for `has_children` when they had a join); a parent has `has_children`, so its
 * end looks for its children. Ids are drawn first (`ided`), and the edges find theirs by
 * position in the array of them (`ids`): no join, whose row estimates for arrays (10 rows) could
 * make it a nested loop over 10,000 tasks times 20,000 edges. The answer is taskInsertManyWithoutKeys's one row (ids in input order), in which a
 * blocked task is `odd` only when it was given a run time (the engine knows which it blocked).
 */
export const taskInsertGraph: Statement = {
  name: 'tf_task_insert_graph',
  text: `
WITH ${insertInput({ unnest: ', unnest($27::text[]), unnest($28::integer[]), unnest($29::boolean[])', names: ', ref, pending, has_children' })},
${QUEUE_UPSERT},
ided AS (
  SELECT i.*, nextval('tasks_id_seq') AS id, CASE WHEN i.pending > 0 THEN 'blocked' ELSE ${INSERTED_STATE} END AS st
    FROM input i
),
ins AS (
  INSERT INTO tasks (id, ${INSERTED_COLUMNS}, workflow_id, workflow_ref, pending_parents, has_parents, has_children)
  OVERRIDING SYSTEM VALUE
  SELECT id, ${insertedValues('st')}, $26::bigint, ref, pending, $30::boolean AND pending > 0, has_children
    FROM ided
   ORDER BY ord
),
members AS (
  INSERT INTO workflow_tasks (workflow_id, task_id) SELECT $26::bigint, id FROM ided
),
ids AS (SELECT array_agg(id ORDER BY ord) AS a FROM ided),
edges AS (
  INSERT INTO task_dependencies (parent, child, on_finish)
  SELECT ids.a[e.p], ids.a[e.c], $33::boolean FROM unnest($31::integer[], $32::integer[]) AS e(p, c), ids
)
SELECT (SELECT ${iso('t')} FROM clock) AS now, array_to_string((SELECT a FROM ids), ',') AS ids,
       string_agg(id::text || ' ' || st || ' ' || ${iso('due')}, ',')
         FILTER (WHERE st NOT IN ('queued', 'blocked') OR due <> now) AS odd
  FROM ided`,
};
