/**
 * The insert of a batch in which some task has a unique key (docs/tasks.md, "Unique tasks").
 * A separate statement, so that batches without unique keys pay nothing for them.
 */
import type { Statement } from '../../db/types.ts';
import { iso } from './columns.ts';
import { IDED, INSERT_INPUT, INSERTED_COLUMNS, INSERTED_VALUES, QUEUE_UPSERT, writeKeys } from './insert.ts';

/**
 * Whether the existing row `k` of task_unique_keys still holds its key: its window has not
 * passed, or, without a window, its task is not seen finished. A holder this statement cannot
 * see was committed after the statement began (keys and their tasks are written together),
 * so it counts as unfinished; deleted tasks take their keys with them (taskPurgeDead).
 */
const HELD = `(k.until > (SELECT t FROM clock)
   OR (k.until IS NULL AND NOT EXISTS (SELECT 1 FROM tasks x WHERE x.id = k.task_id
                                        AND x.state IN ('succeeded', 'dead', 'cancelled'))))`;

/**
 * taskInsertManyUnique: inserts a batch of tasks, some with unique keys (and perhaps some with
 * idempotency keys), in one statement. $1..$25 as INSERT_INPUT says.
 *
 * Each task gets its id first (`ided`, in input order). Then each distinct (queue, unique key)
 * of the batch, for the first task that names it, is written to task_unique_keys: a key not
 * held yet, or no longer held (HELD), goes to that task; a held key stays with its holder.
 * ON CONFLICT DO UPDATE locks the key's row (waiting for a concurrent submission of the same
 * key to commit, then reading the row it committed), so two submissions never both take a key,
 * on any node; the update always returns the row, so the holder is known even when it was
 * committed after this statement began. Keys are written in (queue, key) order, bytewise
 * (COLLATE "C"), so that two batches with keys in common take them in the same order and
 * cannot deadlock. Then the idempotency keys of the tasks that got their unique key (or have
 * none) are written (writeKeys), and the tasks are inserted: those without a unique key or
 * with theirs, and without an idempotency key or with theirs written.
 *
 * Every unique key is taken before any idempotency key (`got` joins the count of all the
 * unique keys, so no row of it comes out before the last key is taken): with the engine's
 * sorting of both, every statement takes keys in one total order, unique keys first.
 *
 * Keeps: at most one holder per (queue, unique key); a task is created only with its keys, in
 * the same statement. Returns one row per task in input order (`ord`): its drawn `id`, the
 * key's `holder` (null without a unique key), `inserted`, and for an inserted task its state,
 * run_at and created_at (RFC 3339). A task not inserted is a duplicate of `holder` (when that
 * is not its own id) or an idempotency replay; a task that got its unique key but hit an
 * existing idempotency key holds it without existing, and the engine gives that key back
 * (taskUniqueKeyRelease) in the same transaction.
 */
export const taskInsertManyUnique: Statement = {
  name: 'tf_task_insert_many_unique',
  text: `
WITH ${INSERT_INPUT},
${QUEUE_UPSERT},
${IDED},
keys AS (
  INSERT INTO task_unique_keys AS k (queue, unique_key, task_id, until)
  SELECT DISTINCT ON (queue COLLATE "C", unique_key COLLATE "C") queue, unique_key, id,
         now + unique_for_ms * interval '1 millisecond'
    FROM ided WHERE unique_key IS NOT NULL
   ORDER BY queue COLLATE "C", unique_key COLLATE "C", ord
  ON CONFLICT (queue, unique_key) DO UPDATE
     SET task_id = CASE WHEN ${HELD} THEN k.task_id ELSE excluded.task_id END,
         until = CASE WHEN ${HELD} THEN k.until ELSE excluded.until END
  RETURNING k.queue, k.unique_key, k.task_id
),
got AS (
  SELECT i.*, i.unique_key IS NULL OR k.task_id IS NOT NULL AS got_unique
    FROM ided i CROSS JOIN (SELECT count(*) FROM keys) AS all_taken
    LEFT JOIN keys k ON k.task_id = i.id
),
${writeKeys('got', ' AND got_unique')},
ins AS (
  INSERT INTO tasks (id, ${INSERTED_COLUMNS}) OVERRIDING SYSTEM VALUE
  SELECT id, ${INSERTED_VALUES}
    FROM got g
   WHERE g.got_unique AND (g.idempotency_key IS NULL OR g.id IN (SELECT task_id FROM idem))
   ORDER BY ord
  RETURNING id, state, ${iso('run_at')} AS run_at, ${iso('created_at')} AS created_at
)
SELECT i.ord, i.id::text AS id, k.task_id::text AS holder, ins.id IS NOT NULL AS inserted,
       ins.state, ins.run_at, ins.created_at
  FROM ided i
  LEFT JOIN ins ON ins.id = i.id
  LEFT JOIN keys k ON k.queue = i.queue AND k.unique_key = i.unique_key
 ORDER BY i.ord`,
};

/**
 * taskUniqueKeyRelease: gives back keys taken by tasks that were not created (their
 * idempotency key already existed), so that no key is held by a task that does not exist.
 * $1 text[] queues, $2 text[] keys, $3 bigint[] task ids (one per key)
 */
export const taskUniqueKeyRelease: Statement = {
  name: 'tf_task_unique_key_release',
  text: `
DELETE FROM task_unique_keys k
 USING unnest($1::text[], $2::text[], $3::bigint[]) AS d(queue, unique_key, task_id)
 WHERE k.queue = d.queue AND k.unique_key = d.unique_key AND k.task_id = d.task_id`,
};
