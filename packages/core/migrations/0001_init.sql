-- 0001_init: the engine's tables.
--
-- Every table lives in the schema named by the connection's search_path (TASKFLOW_SCHEMA,
-- default "taskflow"); no statement names a schema, so the same files serve every schema.
-- Forward-only: once landed, this file is never edited; changes come as 0002_*.sql and on.

-- Backoff delay for the retry of attempt number `attempt` (1-based, counted since the last
-- manual requeue) under a policy {type, delayMs, factor, maxDelayMs, jitter}.
--   fixed:       delayMs
--   linear:      delayMs * attempt
--   exponential: delayMs * factor^(attempt-1)          (factor defaults to 2)
-- capped at maxDelayMs, then reduced by up to `jitter` (0..1) of itself at random, so that a
-- burst of failures does not retry in lockstep. The exponent is clamped at 60 so that huge
-- attempt numbers cannot overflow float8.
CREATE FUNCTION backoff_delay_ms(policy jsonb, attempt integer) RETURNS double precision
LANGUAGE sql VOLATILE AS $$
  SELECT least(
           coalesce((policy->>'maxDelayMs')::float8, 'Infinity'::float8),
           CASE policy->>'type'
             WHEN 'fixed'  THEN (policy->>'delayMs')::float8
             WHEN 'linear' THEN (policy->>'delayMs')::float8 * greatest(attempt, 1)
             ELSE (policy->>'delayMs')::float8
                  * power(coalesce((policy->>'factor')::float8, 2), least(greatest(attempt, 1) - 1, 60))
           END)
         * (1 - coalesce((policy->>'jitter')::float8, 0) * random())
$$;

-- Queues exist implicitly (the first enqueue creates the row); the row carries operator state.
CREATE TABLE queues (
  name       text PRIMARY KEY,
  paused     boolean NOT NULL DEFAULT false,
  paused_at  timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per task. The row also records its latest attempt (worker_id, started_at,
-- finished_at, logs); earlier attempts, and every attempt that did not succeed, are in
-- `attempts`. Keeping the successful attempt in the row saves one insert per task on the
-- hot path; the `task_attempts` view below puts the two together.
CREATE TABLE tasks (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue            text NOT NULL,
  type             text NOT NULL,
  state            text NOT NULL CHECK (state IN
                     ('blocked', 'scheduled', 'queued', 'running', 'retrying',
                      'succeeded', 'dead', 'cancelled')),
  priority         integer NOT NULL DEFAULT 0,
  run_at           timestamptz NOT NULL,
  payload          jsonb,
  payload_bytes    bytea,
  content_type     text,
  result           jsonb,
  -- Fencing token: the number of claims so far. Only a result carrying the current value
  -- is accepted.
  attempt          integer NOT NULL DEFAULT 0,
  -- `attempt` at the last manual requeue/retry: the retry budget counts attempt - attempt_base.
  attempt_base     integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL CHECK (max_attempts >= 1),
  backoff          jsonb NOT NULL,
  timeout_ms       integer NOT NULL CHECK (timeout_ms > 0),
  tags             text[] NOT NULL DEFAULT '{}',
  idempotency_key  text,
  worker_id        uuid,
  lease_expires_at timestamptz,
  cancel_requested boolean NOT NULL DEFAULT false,
  -- Attempts that ended with the worker gone (lease expired, worker lost), for quarantine.
  lease_losses     integer NOT NULL DEFAULT 0,
  last_error       jsonb,
  logs             jsonb,
  dead_reason      text CHECK (dead_reason IN ('exhausted', 'unrecoverable', 'poison')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  CHECK (payload IS NULL OR payload_bytes IS NULL)
);

-- The ready set, in claim order. Partial, so the hot path never touches history.
CREATE INDEX tasks_ready ON tasks (queue, priority DESC, run_at, id) WHERE state = 'queued';
-- Scheduled and retrying tasks, by the time they become ready (the promoter's scan).
CREATE INDEX tasks_due ON tasks (run_at) WHERE state IN ('scheduled', 'retrying');
-- Running tasks by lease expiry (the rescuer's scan) and by worker (heartbeats, reaping).
CREATE INDEX tasks_leases ON tasks (lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_running_worker ON tasks (worker_id) WHERE state = 'running';
-- An idempotency key is unique within its queue.
CREATE UNIQUE INDEX tasks_idempotency ON tasks (queue, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
-- Listing and the DLQ: newest first within a state.
CREATE INDEX tasks_state_id ON tasks (state, id);

-- Finished attempts that are not a task's final success (that one stays in the task row).
CREATE TABLE attempts (
  task_id     bigint NOT NULL,
  attempt     integer NOT NULL,
  worker_id   uuid,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  outcome     text NOT NULL CHECK (outcome IN
                ('failed', 'lease_expired', 'worker_lost', 'abandoned', 'cancelled')),
  error       jsonb,
  logs        jsonb,
  PRIMARY KEY (task_id, attempt)
);

-- Every attempt of every task: the finished ones plus the one the task row holds (running,
-- or the final success).
CREATE VIEW task_attempts AS
  SELECT task_id, attempt, worker_id, started_at, finished_at, outcome, error, logs
    FROM attempts
  UNION ALL
  SELECT id, attempt, worker_id, started_at, finished_at,
         CASE state WHEN 'running' THEN 'running' ELSE 'succeeded' END, NULL, logs
    FROM tasks
   WHERE started_at IS NOT NULL AND state IN ('running', 'succeeded');

CREATE TABLE workers (
  id            uuid PRIMARY KEY,
  name          text NOT NULL,
  queues        jsonb NOT NULL,
  concurrency   integer NOT NULL,
  metadata      jsonb NOT NULL DEFAULT '{}',
  state         text NOT NULL CHECK (state IN ('active', 'stopped', 'lost')),
  registered_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  stopped_at    timestamptz
);
CREATE INDEX workers_expiry ON workers (expires_at) WHERE state = 'active';

CREATE TABLE api_keys (
  id           uuid PRIMARY KEY,
  name         text NOT NULL,
  prefix       text NOT NULL,
  key_hash     text NOT NULL UNIQUE,
  scopes       text[] NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
