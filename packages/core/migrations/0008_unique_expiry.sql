-- 0008_unique_expiry: unique tasks and expiry (docs/tasks.md).
--
-- Unique keys live in a side table, not in an index on `tasks`: claims and settlements
-- rewrite every task row (a state change is never a HOT update), and each new row version
-- would get an entry in a key index. Here a key costs one row, written at submit only.
-- A key's holder is `task_id`; it holds the key while `until` is in the future (a window), or,
-- when `until` is NULL, while the task is unfinished. A submit that finds the key held returns
-- the holder; otherwise it takes the key over in the same statement (INSERT ... ON CONFLICT DO
-- UPDATE: race-free across nodes). tasks.unique_key repeats the key for reads and for the
-- deletion of dead tasks, which deletes their keys (taskPurgeDead).
CREATE TABLE task_unique_keys (
  queue      text NOT NULL,
  unique_key text NOT NULL,
  task_id    bigint NOT NULL,
  until      timestamptz,
  PRIMARY KEY (queue, unique_key)
);

ALTER TABLE tasks
  ADD COLUMN unique_key    text,
  -- No attempt starts at or after this time: the claim skips the task, the expiry duty
  -- cancels it with cancel_reason 'expired'.
  ADD COLUMN expires_at    timestamptz,
  -- Why a task was cancelled: NULL when asked (POST /tasks/:id/cancel), 'expired'.
  ADD COLUMN cancel_reason text;

-- The expiry duty's scan: waiting tasks that have a deadline. Empty (and never written) while
-- no task has one.
CREATE INDEX tasks_expiring ON tasks (expires_at)
  WHERE expires_at IS NOT NULL AND state IN ('scheduled', 'queued', 'retrying');
