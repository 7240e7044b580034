-- 0012_idempotency_keys: idempotency keys in a side table, as unique keys are (0008).
--
-- The unique index tasks_idempotency on tasks (queue, idempotency_key) made every keyed task
-- pay for its key three times: at its insert (the index entry, checked by ON CONFLICT's
-- speculative insertion), and again at its claim and its settlement, which change `state`,
-- are never HOT updates, and so give each new row version a new entry in every index whose
-- predicate it matches, each checked for uniqueness. Here a key costs one row, written with
-- its task by the submission only; claims and settlements never touch it.
-- (bench/pg-instructions.ts, variants base and keyed, measures both designs.)
--
-- A key's holder is `task_id`; the row lives as long as the task: whatever deletes tasks
-- deletes their keys in the same statement (taskPurgeDead). tasks.idempotency_key repeats the
-- key for reads and for that deletion.
--
-- The key columns compare bytewise (COLLATE "C"): the table is only ever searched for equal
-- keys, for which every deterministic collation agrees, and a bytewise comparison costs a
-- fraction of the locale's (strcoll) at each step of the primary key's B-tree, which every
-- keyed insert searches twice (ON CONFLICT's check, then the insert).
CREATE TABLE task_idempotency_keys (
  queue           text COLLATE "C" NOT NULL,
  idempotency_key text COLLATE "C" NOT NULL,
  task_id         bigint NOT NULL,
  PRIMARY KEY (queue, idempotency_key)
);

INSERT INTO task_idempotency_keys (queue, idempotency_key, task_id)
SELECT queue, idempotency_key, id FROM tasks WHERE idempotency_key IS NOT NULL;

DROP INDEX tasks_idempotency;
