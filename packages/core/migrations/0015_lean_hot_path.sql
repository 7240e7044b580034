-- 0015_lean_hot_path: less work for PostgreSQL on every claim and settlement.
--
-- Instructions per task measured with `cd bench && npm run pg-instructions` (callgrind), claims
-- of 250 and of 5; the figures are in bench/README.md ("What bounds the drain").
--
-- 1. The running set has one index, not two. A claim gives the task's new row version an
--    entry in every index whose predicate it matches; tasks_leases (lease_expires_at) and
--    tasks_running_worker (worker_id) both held every running task. tasks_running holds it
--    once, by worker then lease: heartbeats, deregistration and the lost-worker rescue find a
--    worker's tasks by its first column; the lease rescue (once a second on each node) reads
--    the whole running set, its condition on the lease checked in the index, which costs in
--    proportion to the tasks running, not to the table.
DROP INDEX tasks_leases;
DROP INDEX tasks_running_worker;
CREATE INDEX tasks_running ON tasks (worker_id, lease_expires_at) WHERE state = 'running';

-- 2. Column checks as domains, not table CHECK constraints. PostgreSQL reads a table's CHECK
--    expressions back from their stored text and plans them at every execution of every
--    statement that writes the table, and evaluates all of them on every row it writes,
--    whichever columns changed. A domain's check is planned once per session (the type
--    cache) and evaluated only when a value is assigned to the column: a claim assigns
--    `state` and checks that, and nothing else. The database still refuses an unknown state,
--    dead reason, attempt limit, timeout or negative parent count.
--
--    The domains are created empty and their checks added afterwards: changing a column's
--    type to a domain with a check rewrites the table, to one without only rebuilds the
--    indexes that read the column; ALTER DOMAIN ... ADD CONSTRAINT then checks the existing
--    rows in one scan. On 1,000,000 tasks in every state, on the 2-core bench host under load:
--    about 5 s in all (the column change 3.0 s, each check 0.4 s, tasks_running 0.4 s), under
--    an ACCESS EXCLUSIVE lock on tasks (docs/operations.md, Upgrades).
--    task_attempts reads `state`, so it is dropped and made again unchanged.
CREATE DOMAIN task_state AS text;
CREATE DOMAIN task_dead_reason AS text;
CREATE DOMAIN positive_integer AS integer;
CREATE DOMAIN nonnegative_integer AS integer;

DROP VIEW task_attempts;

ALTER TABLE tasks
  DROP CONSTRAINT tasks_state_check,
  DROP CONSTRAINT tasks_dead_reason_check,
  DROP CONSTRAINT tasks_max_attempts_check,
  DROP CONSTRAINT tasks_timeout_ms_check,
  DROP CONSTRAINT tasks_pending_parents_check,
  ALTER COLUMN state TYPE task_state,
  ALTER COLUMN dead_reason TYPE task_dead_reason,
  ALTER COLUMN max_attempts TYPE positive_integer,
  ALTER COLUMN timeout_ms TYPE positive_integer,
  ALTER COLUMN pending_parents TYPE nonnegative_integer;

ALTER DOMAIN task_state ADD CONSTRAINT task_state_check
  CHECK (VALUE IN ('blocked', 'scheduled', 'queued', 'running', 'retrying', 'succeeded', 'dead', 'cancelled'));
ALTER DOMAIN task_dead_reason ADD CONSTRAINT task_dead_reason_check
  CHECK (VALUE IN ('exhausted', 'unrecoverable', 'poison'));
ALTER DOMAIN positive_integer ADD CONSTRAINT positive_integer_check CHECK (VALUE >= 1);
ALTER DOMAIN nonnegative_integer ADD CONSTRAINT nonnegative_integer_check CHECK (VALUE >= 0);

CREATE VIEW task_attempts AS
  SELECT task_id, attempt, worker_id, started_at, finished_at, outcome, error, logs, trace_id
    FROM attempts
  UNION ALL
  SELECT id, attempt, worker_id, started_at, finished_at,
         CASE state WHEN 'running' THEN 'running' ELSE 'succeeded' END, NULL, logs,
         CASE state WHEN 'succeeded' THEN trace_id END
    FROM tasks
   WHERE started_at IS NOT NULL AND state IN ('running', 'succeeded');
