/**
 * Statements on `alert_rules` and `alert_history` (migration 0011), and the values the rules
 * measure. Only alerts/ calls these. Times are the engine's clock: `coalesce($1::timestamptz,
 * now())` in every statement that needs one.
 */
import type { Statement } from '../db/types.ts';

export const RULE_COLUMNS = `r.id, r.name, r.kind, r.threshold, r.window_ms, r.min_attempts, r.for_ms, r.severity, r.scope_queue, r.scope_type,
  r.scope_schedule, r.channels, r.enabled, r.builtin, r.silenced_until, r.silence_reason, r.state, r.state_since, r.last_value,
  r.version, r.created_at, r.updated_at`;

/**
 * The fields an operator sets, in parameter order ($2..$13 of alertRuleInsert and
 * alertRuleUpdate).
 */
const SETTABLE = `name, kind, threshold, window_ms, min_attempts, for_ms, severity, scope_queue, scope_type, scope_schedule, channels, enabled`;
const SETTABLE_PARAMS = `$2::text, $3::text, $4::float8, $5::bigint, $6::integer, $7::bigint, $8::text, $9::text, $10::text, $11::bigint, $12::jsonb, $13::boolean`;

/**
 * alertRuleInsert: a new rule. $1 now, $2..$13 as SETTABLE says. A name taken inserts nothing
 * (no row): two operators creating one name never fail each other with a unique violation.
 */
export const alertRuleInsert: Statement = {
  name: 'tf_alert_rule_insert',
  text: `
INSERT INTO alert_rules AS r (${SETTABLE}, created_at, updated_at)
SELECT ${SETTABLE_PARAMS}, coalesce($1::timestamptz, now()), coalesce($1::timestamptz, now())
ON CONFLICT (name) DO NOTHING
RETURNING ${RULE_COLUMNS}`,
};

/**
 * alertRuleUpdate: replaces what an operator sets. $1 id, $2..$13 as SETTABLE says, $14 now.
 * A change of kind, threshold, window, minimum or scope resets the evaluation
 * to inactive (bumping the version, so an evaluation in flight writes nothing): the next pass
 * starts the rule afresh. A rule firing then is not "resolved" in the history: it is another rule.
 * A name another rule holds is a unique violation (the caller checks first).
 */
export const alertRuleUpdate: Statement = {
  name: 'tf_alert_rule_update',
  text: `
UPDATE alert_rules r
   SET (${SETTABLE}, updated_at) = (${SETTABLE_PARAMS}, coalesce($14::timestamptz, now())),
       state = CASE WHEN reset.yes THEN 'inactive' ELSE r.state END,
       state_since = CASE WHEN reset.yes THEN NULL ELSE r.state_since END,
       version = r.version + CASE WHEN reset.yes THEN 1 ELSE 0 END
  FROM (SELECT (kind, threshold, window_ms, min_attempts, scope_queue, scope_type, scope_schedule)
               IS DISTINCT FROM ($3::text, $4::float8, $5::bigint, $6::integer, $9::text, $10::text, $11::bigint) AS yes
          FROM alert_rules WHERE id = $1) reset
 WHERE r.id = $1
RETURNING ${RULE_COLUMNS}`,
};

/** alertRuleGet: one rule. $1 id */
export const alertRuleGet: Statement = {
  name: 'tf_alert_rule_get',
  text: `SELECT ${RULE_COLUMNS} FROM alert_rules r WHERE r.id = $1`,
};

/** alertRuleByName: one rule. $1 name */
export const alertRuleByName: Statement = {
  name: 'tf_alert_rule_by_name',
  text: `SELECT ${RULE_COLUMNS} FROM alert_rules r WHERE r.name = $1`,
};

/** alertRuleList: rules by id after $1 (a page of $2). */
export const alertRuleList: Statement = {
  name: 'tf_alert_rule_list',
  text: `SELECT ${RULE_COLUMNS} FROM alert_rules r WHERE r.id > $1 ORDER BY r.id LIMIT $2`,
};

/** alertRuleDelete: $1 id. The history stays. */
export const alertRuleDelete: Statement = {
  name: 'tf_alert_rule_delete',
  text: `DELETE FROM alert_rules r WHERE r.id = $1 RETURNING ${RULE_COLUMNS}`,
};

/** alertRuleSilence: $1 id, $2 until (null: lift the silence), $3 reason, $4 now. */
export const alertRuleSilence: Statement = {
  name: 'tf_alert_rule_silence',
  text: `
UPDATE alert_rules r SET silenced_until = $2, silence_reason = $3, updated_at = coalesce($4::timestamptz, now())
 WHERE r.id = $1
RETURNING ${RULE_COLUMNS}`,
};

/**
 * alertRulesToEvaluate: the rules a pass looks at: the enabled ones, and the disabled ones
 * still pending or firing (they resolve). $1 now: returned as the pass's time.
 */
export const alertRulesToEvaluate: Statement = {
  name: 'tf_alert_rules_to_evaluate',
  text: `SELECT ${RULE_COLUMNS}, coalesce($1::timestamptz, now()) AS now FROM alert_rules r
          WHERE r.enabled OR r.state <> 'inactive' ORDER BY r.id`,
};

/**
 * alertRulesClaim: the rules due for evaluation, claimed for this node's pass: those
 * alertRulesToEvaluate takes that no node claimed within the last $2 ms, stamped
 * `evaluated_at`. $1 now (returned as the pass's time), $2 ms since the last claim.
 * Keeps: one pass per rule per interval across every node. A node that sees a rule being
 * claimed skips it (SKIP LOCKED), and one whose snapshot predates a claim that committed
 * re-reads the row under its lock and finds it stamped. `evaluated_at` is the database's
 * now(), never the engine's clock: it paces the duty as its timer does (a ManualClock held
 * still in a test does not stop the duty), while the pass measures at $1. A node that dies
 * after claiming leaves its rules to the first pass of the next interval.
 */
export const alertRulesClaim: Statement = {
  name: 'tf_alert_rules_claim',
  text: `
WITH due AS (
  SELECT id FROM alert_rules
   WHERE (enabled OR state <> 'inactive') AND (evaluated_at IS NULL OR evaluated_at <= now() - $2 * interval '1 millisecond')
   ORDER BY id FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE alert_rules r SET evaluated_at = now() FROM due WHERE r.id = due.id
  RETURNING ${RULE_COLUMNS}
)
SELECT claimed.*, coalesce($1::timestamptz, now()) AS now FROM claimed ORDER BY id`,
};

/**
 * alertRuleTransition: the compare-and-set of a change of state. $1 id, $2 the version the
 * evaluation read, $3 new state, $4 state_since, $5 value.
 * Keeps: one change per version. Of two nodes that evaluated the same version, the second
 * UPDATE waits for the first's row lock, re-reads the row, no longer matches, and returns
 * nothing: that node writes no history and no notification (its transaction holds nothing else).
 */
export const alertRuleTransition: Statement = {
  name: 'tf_alert_rule_transition',
  text: `
UPDATE alert_rules r SET state = $3, state_since = $4, last_value = $5, version = r.version + 1
 WHERE r.id = $1 AND r.version = $2
RETURNING ${RULE_COLUMNS}`,
};

/**
 * alertHistoryInsert: a fired or resolved change. $1 rule id, $2 rule name, $3 kind, $4 state,
 * $5 value, $6 threshold, $7 severity, $8 scope json, $9 at, $10 silenced, $11 notifications.
 */
export const alertHistoryInsert: Statement = {
  name: 'tf_alert_history_insert',
  text: `
INSERT INTO alert_history (rule_id, rule_name, kind, state, value, threshold, severity, scope, at, silenced, notifications)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)
RETURNING id`,
};

/** alertHistorySetNotifications: $1 id, $2 count (known once the tasks exist). */
export const alertHistorySetNotifications: Statement = {
  name: 'tf_alert_history_set_notifications',
  text: `UPDATE alert_history SET notifications = $2 WHERE id = $1`,
};

const HISTORY_COLUMNS = `h.id, h.rule_id, h.rule_name, h.kind, h.state, h.value, h.threshold, h.severity, h.scope, h.at, h.silenced, h.notifications`;

/** alertHistoryList: newest first. $1 rule id or null, $2 before id or null, $3 limit */
export const alertHistoryList: Statement = {
  name: 'tf_alert_history_list',
  text: `
SELECT ${HISTORY_COLUMNS} FROM alert_history h
 WHERE ($1::bigint IS NULL OR h.rule_id = $1) AND ($2::bigint IS NULL OR h.id < $2)
 ORDER BY h.id DESC LIMIT $3`,
};

/** alertHistoryGet: $1 id */
export const alertHistoryGet: Statement = {
  name: 'tf_alert_history_get',
  text: `SELECT ${HISTORY_COLUMNS} FROM alert_history h WHERE h.id = $1`,
};

/** alertFiring: the rules firing now, by id. */
export const alertFiring: Statement = {
  name: 'tf_alert_firing',
  text: `SELECT ${RULE_COLUMNS} FROM alert_rules r WHERE r.state = 'firing' ORDER BY r.id`,
};

/**
 * alertNotificationsWaiting: whether a notification is ready on the alerts queue ($1), through
 * the ready index: the notifier registers its worker only once there is one.
 */
export const alertNotificationsWaiting: Statement = {
  name: 'tf_alert_notifications_waiting',
  text: `SELECT EXISTS (SELECT 1 FROM tasks t WHERE t.state = 'queued' AND t.queue = $1) AS waiting`,
};

// ---------------------------------------------------------------- values
// Each: $1 now, then the rule's scope and the window's start ($4) as named; returns `value`,
// and `work` (are ready or running tasks waiting in the scope) for the `below` kinds.

const TASK_SCOPE = `($2::text IS NULL OR t.queue = $2) AND ($3::text IS NULL OR t.type = $3)`;
/**
 * The window (from $4, exclusive, to $1, inclusive: both given) as a condition on `col`. Bound
 * values rather than an expression on now(): the planner estimates the range from the
 * column's statistics and reads the BRIN index of finished_at (migration 0006) for a short
 * window of a long history; with an expression it took a sequential scan of `tasks`.
 */
const IN_WINDOW = (col: string) => `${col} > $4::timestamptz AND ${col} <= $1::timestamptz`;

/** Ready tasks in the scope (the tasks_ready index). $1 now (unused), $2 queue, $3 type. */
export const alertValueQueueDepth: Statement = {
  name: 'tf_alert_value_queue_depth',
  text: `SELECT count(*)::float8 AS value, $1::timestamptz IS NULL AS unused FROM tasks t WHERE t.state = 'queued' AND ${TASK_SCOPE}`,
};

/**
 * Ready tasks of a type-scoped rule's scope, counted up to $4 (the smallest count above the
 * threshold): enough to know whether the rule holds without reading the whole backlog of a
 * type spread over every queue. $1 now (unused), $2 queue, $3 type, $4 cap.
 */
export const alertValueQueueDepthCapped: Statement = {
  name: 'tf_alert_value_queue_depth_capped',
  text: `
SELECT count(*)::float8 AS value, $1::timestamptz IS NULL AS unused
  FROM (SELECT 1 FROM tasks t WHERE t.state = 'queued' AND ${TASK_SCOPE} LIMIT $4::bigint) capped`,
};

/** How long the oldest ready task of the scope has waited, ms (0: none waits). $1 now, $2 queue, $3 type. */
export const alertValueOldestReadyAge: Statement = {
  name: 'tf_alert_value_oldest_ready_age',
  text: `
SELECT coalesce(greatest(0, extract(epoch FROM coalesce($1::timestamptz, now()) - min(t.run_at)) * 1000), 0)::float8 AS value
  FROM tasks t WHERE t.state = 'queued' AND ${TASK_SCOPE}`,
};

/**
 * Of the attempts that ended in the window, the share that failed (outcomes failed,
 * lease_expired, worker_lost; over those and the successes), 0 when none ended; and how many
 * ended (`samples`, which the rule's min_attempts compares with). Read through
 * the BRIN indexes on finished_at (migration 0006). $1 now, $2 queue, $3 type, $4 window start.
 */
export const alertValueFailureRate: Statement = {
  name: 'tf_alert_value_failure_rate',
  text: `
WITH f AS (
  SELECT count(*)::float8 AS n FROM attempts a JOIN tasks t ON t.id = a.task_id
   WHERE ${IN_WINDOW('a.finished_at')} AND a.outcome IN ('failed', 'lease_expired', 'worker_lost') AND ${TASK_SCOPE}
), s AS (
  SELECT count(*)::float8 AS n FROM tasks t WHERE t.state = 'succeeded' AND ${IN_WINDOW('t.finished_at')} AND ${TASK_SCOPE}
)
SELECT CASE WHEN f.n + s.n = 0 THEN 0 ELSE f.n / (f.n + s.n) END AS value, f.n + s.n AS samples FROM f, s`,
};

/** Tasks of the scope that entered the dead-letter queue in the window. $1 now, $2 queue, $3 type, $4 window start. */
export const alertValueDeadGrowth: Statement = {
  name: 'tf_alert_value_dead_growth',
  text: `SELECT count(*)::float8 AS value FROM tasks t WHERE t.state = 'dead' AND ${IN_WINDOW('t.finished_at')} AND ${TASK_SCOPE}`,
};

/**
 * Tasks of the scope that succeeded in the window, and whether any is ready or running.
 * $1 now, $2 queue, $3 type, $4 window start.
 */
export const alertValueCompletions: Statement = {
  name: 'tf_alert_value_completions',
  text: `
SELECT (SELECT count(*) FROM tasks t WHERE t.state = 'succeeded' AND ${IN_WINDOW('t.finished_at')} AND ${TASK_SCOPE})::float8 AS value,
       EXISTS (SELECT 1 FROM tasks t WHERE t.state IN ('queued', 'running') AND ${TASK_SCOPE}) AS work`,
};

/**
 * Live workers (active, not past their heartbeat deadline) serving the queue ($2; null: any),
 * but the server's own (metadata `internal`: the alert notifier), and whether the queue has ready tasks while not paused. $1 now, $2 queue.
 */
export const alertValueWorkersOnline: Statement = {
  name: 'tf_alert_value_workers_online',
  text: `
SELECT (SELECT count(*) FROM workers w
         WHERE w.state = 'active' AND w.expires_at > coalesce($1::timestamptz, now()) AND w.metadata ->> 'internal' IS NULL
           AND ($2::text IS NULL OR w.queues @> jsonb_build_array(jsonb_build_object('name', $2::text))))::float8 AS value,
       EXISTS (SELECT 1 FROM tasks t JOIN queues q ON q.name = t.queue
                WHERE t.state = 'queued' AND NOT q.paused AND ($2::text IS NULL OR t.queue = $2)) AS work`,
};

/**
 * Missed fires of the schedule ($2; null: every schedule): fires recorded `skipped_misfire`
 * in the window, plus active schedules whose next fire is overdue by more than their grace
 * (no node fired it). $1 now, $2 schedule id, $4 window start ($3 unused, null).
 */
export const alertValueMissedFires: Statement = {
  name: 'tf_alert_value_missed_fires',
  text: `
SELECT ((SELECT count(*) FROM schedule_fires f
          WHERE f.outcome = 'skipped_misfire' AND ${IN_WINDOW('f.fired_at')} AND ($2::bigint IS NULL OR f.schedule_id = $2))
      + (SELECT count(*) FROM schedules s
          WHERE NOT s.paused AND s.next_fire_at IS NOT NULL AND ($2::bigint IS NULL OR s.id = $2)
            AND s.next_fire_at < $1::timestamptz - s.misfire_grace_ms * interval '1 millisecond'))::float8 AS value,
       $3::text IS NULL AS unused`,
};
