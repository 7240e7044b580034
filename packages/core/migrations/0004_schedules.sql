-- 0004_schedules: cron and interval schedules, and the record of every fire.
--
-- A schedule creates a task from its template at each fire time. Every node fires schedules
-- (docs/schedules.md): the row lock on `schedules` (FOR UPDATE SKIP LOCKED) only saves work;
-- what makes a fire happen exactly once is the primary key of `schedule_fires`, written in the
-- same transaction as the task it created. A node killed mid-fire rolls back the task, the
-- fire row and the advance of next_fire_at together; another node fires it again.

CREATE TABLE schedules (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name                text NOT NULL UNIQUE,
  -- Exactly one of the two: a croner expression (with seconds) read in `timezone`, or a fixed
  -- interval in real time.
  cron                text,
  interval_ms         bigint CHECK (interval_ms >= 1000),
  timezone            text NOT NULL DEFAULT 'UTC',
  -- The task each fire creates: the fields of a submission but its run time and idempotency key.
  template            jsonb NOT NULL,
  paused              boolean NOT NULL DEFAULT false,
  -- Fires at or after starts_at and before ends_at.
  starts_at           timestamptz,
  ends_at             timestamptz,
  -- A fire later than misfire_grace_ms is missed, and the policy decides: skip (none of the
  -- missed), once (the latest missed), catch_up (the latest catch_up_max missed that are at
  -- most catch_up_max_age_ms old).
  misfire_policy      text NOT NULL DEFAULT 'skip' CHECK (misfire_policy IN ('skip', 'once', 'catch_up')),
  misfire_grace_ms    integer NOT NULL DEFAULT 60000 CHECK (misfire_grace_ms >= 1000),
  catch_up_max        integer NOT NULL DEFAULT 10 CHECK (catch_up_max BETWEEN 1 AND 1000),
  catch_up_max_age_ms bigint CHECK (catch_up_max_age_ms >= 1000),
  -- While the last fire's task is unfinished: allow another, skip this fire, or replace
  -- (cancel the old task, then create the new one).
  overlap_policy      text NOT NULL DEFAULT 'allow' CHECK (overlap_policy IN ('allow', 'skip', 'replace')),
  -- The next fire time not yet fired; NULL when no fire is left (ends_at passed).
  next_fire_at        timestamptz,
  last_fire_time      timestamptz,
  last_task_id        bigint,
  created_at          timestamptz NOT NULL,
  updated_at          timestamptz NOT NULL,
  CHECK ((cron IS NULL) <> (interval_ms IS NULL)),
  CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at)
);

-- The firing duty's scan: due schedules, soonest first. Partial: paused and finished
-- schedules are never looked at.
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE NOT paused AND next_fire_at IS NOT NULL;

-- One row per (schedule, fire time): the key that makes a fire happen once. `task_id` is the
-- task it created (NULL when skipped); no foreign key to tasks, so that purging or pruning
-- tasks never waits on this table. A run of missed fires that were skipped is one row, at the
-- first of them, `skipped_through` the last.
CREATE TABLE schedule_fires (
  schedule_id     bigint NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
  fire_time       timestamptz NOT NULL,
  task_id         bigint,
  outcome         text NOT NULL CHECK (outcome IN ('created', 'replaced', 'skipped_overlap', 'skipped_misfire')),
  skipped_through timestamptz,
  fired_at        timestamptz NOT NULL,
  PRIMARY KEY (schedule_id, fire_time)
);

-- The task a fire created carries its schedule and fire time. Nullable without a default:
-- adding them rewrites nothing, and a task inserted by a producer writes nothing more. No
-- foreign key and no index, which every insert would pay for.
ALTER TABLE tasks ADD COLUMN schedule_id bigint, ADD COLUMN fire_time timestamptz;
