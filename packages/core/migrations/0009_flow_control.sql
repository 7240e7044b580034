-- 0009_flow_control: queue settings (concurrency and rate limits, admission, default retry
-- policy), the keys tasks carry for them, and the rate buckets.
--
-- A queue with a concurrency or rate limit, or fair claims (`limited`), is claimed by its own statement
-- (sql/flow.ts) under a lock of its queue row; every other queue keeps the plain claim, whose
-- only change is to skip limited queues as it skips paused ones. See docs/flow-control.md.

ALTER TABLE queues
  -- Running attempts (unexpired leases) at most, over the whole queue.
  ADD COLUMN max_running          integer CHECK (max_running >= 1),
  -- Running attempts at most per concurrency key.
  ADD COLUMN key_max_running      integer CHECK (key_max_running >= 1),
  -- Starts at most `rate_limit` per `rate_interval_ms`, `rate_burst` at once (GCRA), over the queue.
  ADD COLUMN rate_limit           integer CHECK (rate_limit >= 1),
  ADD COLUMN rate_interval_ms     integer CHECK (rate_interval_ms >= 1),
  ADD COLUMN rate_burst           integer CHECK (rate_burst >= 1),
  -- The same per rate key.
  ADD COLUMN key_rate_limit       integer CHECK (key_rate_limit >= 1),
  ADD COLUMN key_rate_interval_ms integer CHECK (key_rate_interval_ms >= 1),
  ADD COLUMN key_rate_burst       integer CHECK (key_rate_burst >= 1),
  -- Admission: a submit is refused (429) beyond this many waiting tasks, or while the oldest
  -- ready task has waited longer than this.
  ADD COLUMN max_depth            integer CHECK (max_depth >= 1),
  ADD COLUMN max_age_ms           bigint CHECK (max_age_ms >= 1),
  -- Retry policy of a task submitted without one.
  ADD COLUMN default_max_attempts integer CHECK (default_max_attempts >= 1),
  ADD COLUMN default_backoff      jsonb,
  ADD CONSTRAINT queues_rate_whole CHECK (
    (rate_limit IS NULL) = (rate_interval_ms IS NULL) AND (rate_limit IS NULL) = (rate_burst IS NULL)),
  ADD CONSTRAINT queues_key_rate_whole CHECK (
    (key_rate_limit IS NULL) = (key_rate_interval_ms IS NULL) AND (key_rate_limit IS NULL) = (key_rate_burst IS NULL)),
  -- Claims take the keys round by round even without a limit.
  ADD COLUMN fair boolean NOT NULL DEFAULT false,
  -- Claimed by the flow claim (fair, and under the queue's lock), not the plain one.
  ADD COLUMN limited boolean GENERATED ALWAYS AS (
    fair OR max_running IS NOT NULL OR key_max_running IS NOT NULL OR rate_limit IS NOT NULL OR key_rate_limit IS NOT NULL) STORED;

-- The keys a task is limited by (null: none). No default, so adding them rewrites nothing.
ALTER TABLE tasks ADD COLUMN concurrency_key text, ADD COLUMN rate_key text;

-- The ready tasks that carry a key, by fairness key (the concurrency key, else the rate key), in
-- claim order within it: the flow claim finds the distinct keys by a loose scan of it and takes
-- the head of each. Partial, so tasks without keys (every task of a plain queue) cost nothing.
CREATE INDEX tasks_ready_flow ON tasks (queue, (coalesce(concurrency_key, rate_key)), priority DESC, run_at, id)
  WHERE state = 'queued' AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL);

-- GCRA state: the theoretical arrival time of the next start, per queue (key '') and per rate
-- key. Written in the claim transaction, under the queue's lock.
CREATE TABLE rate_buckets (
  queue text NOT NULL,
  key   text NOT NULL,
  tat   timestamptz NOT NULL,
  PRIMARY KEY (queue, key)
);
