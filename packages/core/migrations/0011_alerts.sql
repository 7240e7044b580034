-- 0011_alerts: built-in alert rules, their evaluation state and their history
-- (packages/core/src/alerts/, docs/operations.md "Alerts").
--
-- Every node evaluates every enabled rule (a duty of its own); a rule's state moves by a
-- compare-and-set on `version` (alertRuleTransition), in the transaction that also writes the
-- history row and the notification tasks. Two nodes that saw the same version race for one
-- UPDATE: the loser matches no row and writes nothing, so a change of state is recorded and
-- notified once however many nodes evaluate.
CREATE TABLE alert_rules (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name           text NOT NULL UNIQUE,
  kind           text NOT NULL CHECK (kind IN ('queue_depth', 'oldest_ready_age', 'failure_rate', 'dead_letter_growth',
                                              'workers_online_below', 'no_completions', 'schedule_missed_fire')),
  threshold      double precision NOT NULL,
  -- The look-back of the windowed kinds (failure_rate, dead_letter_growth, no_completions,
  -- schedule_missed_fire); NULL for the others.
  window_ms      bigint CHECK (window_ms >= 1000),
  -- failure_rate: the fewest ended attempts in the window for the rate to count (fewer: it
  -- does not hold, however many of them failed).
  min_attempts   integer NOT NULL DEFAULT 1 CHECK (min_attempts >= 1),
  -- pending becomes firing once the condition has held this long.
  for_ms         bigint NOT NULL DEFAULT 0 CHECK (for_ms >= 0),
  severity       text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
  scope_queue    text,
  scope_type     text,
  scope_schedule bigint,
  -- [{type:'webhook', url, secret} | {type:'email', to:[...]}]. Secrets are stored here and
  -- never returned by the API nor written into a notification task.
  channels       jsonb NOT NULL DEFAULT '[]',
  enabled        boolean NOT NULL DEFAULT true,
  -- A silenced rule changes state and is recorded, and sends nothing, until silenced_until.
  silenced_until timestamptz,
  silence_reason text,
  -- Evaluation state: inactive, pending (since state_since), firing (since state_since).
  state          text NOT NULL DEFAULT 'inactive' CHECK (state IN ('inactive', 'pending', 'firing')),
  state_since    timestamptz,
  last_value     double precision,
  evaluated_at   timestamptz,
  -- The compare-and-set token of the evaluation: bumped by every change of state.
  version        bigint NOT NULL DEFAULT 0,
  -- Seeded by migration (a default rule) rather than created over the API.
  builtin        boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Every fired and resolved transition. Rows outlive their rule (no foreign key): the name,
-- severity and threshold are copied. `notifications`: the tasks enqueued on taskflow.alerts
-- for it (0 when silenced or the rule has no channel).
CREATE TABLE alert_history (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rule_id       bigint NOT NULL,
  rule_name     text NOT NULL,
  kind          text NOT NULL,
  state         text NOT NULL CHECK (state IN ('firing', 'resolved')),
  value         double precision,
  threshold     double precision NOT NULL,
  severity      text NOT NULL,
  scope         jsonb NOT NULL,
  at            timestamptz NOT NULL,
  silenced      boolean NOT NULL,
  notifications integer NOT NULL
);
CREATE INDEX alert_history_rule ON alert_history (rule_id, id);

-- The defaults of deploy/prometheus/taskflow-alerts.yml that the database can evaluate, with no
-- channel: they show in GET /api/v1/alerts/firing, the history and the health summary.
INSERT INTO alert_rules (name, kind, threshold, window_ms, min_attempts, for_ms, severity, builtin) VALUES
  ('TaskflowQueueBacklogHigh', 'queue_depth', 1000, NULL, 1, 900000, 'warning', true),
  ('TaskflowQueueLatencyHigh', 'oldest_ready_age', 300000, NULL, 1, 300000, 'warning', true),
  ('TaskflowTaskFailureRateHigh', 'failure_rate', 0.05, 600000, 20, 300000, 'warning', true),
  ('TaskflowTasksDeadLettered', 'dead_letter_growth', 10, 900000, 1, 0, 'warning', true),
  ('TaskflowWorkersLow', 'workers_online_below', 1, NULL, 1, 300000, 'critical', true),
  ('TaskflowNoCompletions', 'no_completions', 1, 900000, 1, 300000, 'critical', true),
  ('TaskflowScheduleMissedFire', 'schedule_missed_fire', 0, 900000, 1, 0, 'warning', true);
