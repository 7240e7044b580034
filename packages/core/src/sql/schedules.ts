/**
 * Statements on `schedules` and `schedule_fires` (migration 0004). Only the engine calls these
 * (engine/schedules.ts for an operator's changes, engine/firing.ts for the firing duty).
 *
 * Fire times are computed in Node (croner, engine/fireTimes.ts) from the database's time, which
 * every statement that needs it reads as `coalesce($n::timestamptz, now())`.
 */
import type { Statement } from '../db/types.ts';

/** The columns every schedule read returns (engine/schedules.ts, toSchedule). */
export const SCHEDULE_COLUMNS = `s.id, s.name, s.cron, s.interval_ms, s.timezone, s.template, s.paused, s.starts_at, s.ends_at,
  s.misfire_policy, s.misfire_grace_ms, s.catch_up_max, s.catch_up_max_age_ms, s.overlap_policy, s.next_fire_at,
  s.last_fire_time, s.last_task_id, s.created_at, s.updated_at`;

/**
 * The fields an operator sets, in parameter order ($2..$14 of scheduleInsert and
 * scheduleUpdate): name, cron, interval_ms, timezone, template, paused, starts_at, ends_at,
 * misfire_policy, misfire_grace_ms, catch_up_max, catch_up_max_age_ms, overlap_policy.
 */
const SETTABLE = `name, cron, interval_ms, timezone, template, paused, starts_at, ends_at,
  misfire_policy, misfire_grace_ms, catch_up_max, catch_up_max_age_ms, overlap_policy`;

/** clockNow: the time statements use. $1 now (null: the database's). */
export const clockNow: Statement = {
  name: 'tf_clock_now',
  text: `SELECT coalesce($1::timestamptz, now()) AS now`,
};

/**
 * scheduleInsert: a new schedule. $1 now, $2..$14 as SETTABLE says, $15 next_fire_at.
 * Keeps: names are unique; a name already taken inserts nothing (no row returned), so two
 * operators creating the same name never fail each other with a unique violation.
 */
export const scheduleInsert: Statement = {
  name: 'tf_schedule_insert',
  text: `
WITH clock AS (SELECT coalesce($1::timestamptz, now()) AS t)
INSERT INTO schedules AS s (${SETTABLE}, next_fire_at, created_at, updated_at)
SELECT $2::text, $3::text, $4::bigint, $5::text, $6::jsonb, $7::boolean, $8::timestamptz, $9::timestamptz, $10::text,
       $11::integer, $12::integer, $13::bigint, $14::text, $15::timestamptz, c.t, c.t
  FROM clock c
ON CONFLICT (name) DO NOTHING
RETURNING ${SCHEDULE_COLUMNS}`,
};

/**
 * scheduleUpdate: replaces what an operator sets, and next_fire_at. $1 id, $2..$14 as
 * SETTABLE says, $15 next_fire_at, $16 now. Run under scheduleLock in the same transaction
 * (the caller computed next_fire_at from the row it locked). A name another schedule holds
 * is a unique violation (the caller checks first, under the lock).
 */
export const scheduleUpdate: Statement = {
  name: 'tf_schedule_update',
  text: `
UPDATE schedules s
   SET (${SETTABLE}, next_fire_at, updated_at) =
       ($2::text, $3::text, $4::bigint, $5::text, $6::jsonb, $7::boolean, $8::timestamptz, $9::timestamptz, $10::text,
        $11::integer, $12::integer, $13::bigint, $14::text,
        $15::timestamptz, coalesce($16::timestamptz, now()))
 WHERE s.id = $1
RETURNING ${SCHEDULE_COLUMNS}`,
};

/** scheduleGet: one schedule. $1 id */
export const scheduleGet: Statement = {
  name: 'tf_schedule_get',
  text: `SELECT ${SCHEDULE_COLUMNS} FROM schedules s WHERE s.id = $1`,
};

/** scheduleGetByName: one schedule by name. $1 name */
export const scheduleGetByName: Statement = {
  name: 'tf_schedule_get_by_name',
  text: `SELECT ${SCHEDULE_COLUMNS} FROM schedules s WHERE s.name = $1`,
};

/**
 * scheduleLock: one schedule, locked until the transaction ends, with the time. Changes to a
 * schedule wait for a fire in progress and the other way round. $1 id, $2 now
 */
export const scheduleLock: Statement = {
  name: 'tf_schedule_lock',
  text: `SELECT ${SCHEDULE_COLUMNS}, coalesce($2::timestamptz, now()) AS now FROM schedules s WHERE s.id = $1 FOR UPDATE`,
};

/** scheduleList: schedules by id, after $1 (null: from the first), at most $2. */
export const scheduleList: Statement = {
  name: 'tf_schedule_list',
  text: `SELECT ${SCHEDULE_COLUMNS} FROM schedules s WHERE $1::bigint IS NULL OR s.id > $1 ORDER BY s.id LIMIT $2`,
};

/** scheduleDelete: a schedule and its fire records (ON DELETE CASCADE); its tasks stay. $1 id */
export const scheduleDelete: Statement = {
  name: 'tf_schedule_delete',
  text: `DELETE FROM schedules s WHERE s.id = $1 RETURNING ${SCHEDULE_COLUMNS}`,
};

/**
 * scheduleSetPaused: pauses or resumes. Fires that pass while paused are missed fires, which
 * the misfire policy handles once the schedule is resumed. $1 id, $2 paused, $3 now
 */
export const scheduleSetPaused: Statement = {
  name: 'tf_schedule_set_paused',
  text: `
UPDATE schedules s SET paused = $2, updated_at = coalesce($3::timestamptz, now())
 WHERE s.id = $1
RETURNING ${SCHEDULE_COLUMNS}`,
};

/**
 * scheduleLockDue: the soonest due schedule no other node is firing, locked, with the time.
 * $1 now, $2 bigint[] ids to pass over (those that failed earlier in this pass).
 * Keeps: each node fires a different schedule at a time (SKIP LOCKED), and a schedule another
 * node fired meanwhile is re-checked under the lock and no longer due. This saves work only:
 * a fire happens once by the key of schedule_fires (scheduleFireInsert), not by this lock.
 * Served by schedules_due.
 */
export const scheduleLockDue: Statement = {
  name: 'tf_schedule_lock_due',
  text: `
WITH clock AS (SELECT coalesce($1::timestamptz, now()) AS t)
SELECT ${SCHEDULE_COLUMNS}, c.t AS now
  FROM schedules s, clock c
 WHERE NOT s.paused AND s.next_fire_at <= c.t AND s.id <> ALL($2::bigint[])
 ORDER BY s.next_fire_at
 LIMIT 1
   FOR UPDATE OF s SKIP LOCKED`,
};

/**
 * scheduleFireInsert: records a fire. $1 schedule id, $2 fire time, $3 outcome, $4
 * skipped_through, $5 now. Returns the row only if this call inserted it.
 * Keeps: one row per (schedule, fire time), written in the transaction that creates the fire's
 * task, so a fire creates its task exactly once across all nodes: a concurrent insert of the
 * same key waits for this transaction and then inserts nothing (or takes over if it rolled
 * back). The caller creates the task only when a row came back.
 */
export const scheduleFireInsert: Statement = {
  name: 'tf_schedule_fire_insert',
  text: `
INSERT INTO schedule_fires (schedule_id, fire_time, outcome, skipped_through, fired_at)
VALUES ($1, $2, $3, $4, coalesce($5::timestamptz, now()))
ON CONFLICT (schedule_id, fire_time) DO NOTHING
RETURNING fire_time`,
};

/**
 * scheduleFireLink: ties a fire and the task it created together: the fire row gets the task
 * id, the task its schedule and fire time (two columns no index or claim reads; its state is
 * not touched). $1 schedule id, $2 fire time, $3 task id
 */
export const scheduleFireLink: Statement = {
  name: 'tf_schedule_fire_link',
  text: `
WITH fire AS (
  UPDATE schedule_fires SET task_id = $3 WHERE schedule_id = $1 AND fire_time = $2
)
UPDATE tasks SET schedule_id = $1, fire_time = $2 WHERE id = $3`,
};

/**
 * scheduleFireSavepoint, scheduleFireRollback: a fire's task is created after a savepoint, so
 * that a refusal (an insert PostgreSQL rejects aborts the statement and with it everything after
 * the savepoint) is undone alone and recorded (scheduleFireRefused) in the same transaction.
 */
export const scheduleFireSavepoint: Statement = { name: 'tf_schedule_fire_savepoint', text: 'SAVEPOINT tf_fire' };
export const scheduleFireRollback: Statement = { name: 'tf_schedule_fire_rollback', text: 'ROLLBACK TO SAVEPOINT tf_fire' };

/**
 * scheduleFireRefused: a recorded fire whose task was refused (the queue's admission control,
 * or a template that is no longer a valid task) becomes `refused`, with why. $1 schedule id,
 * $2 fire time, $3 reason
 */
export const scheduleFireRefused: Statement = {
  name: 'tf_schedule_fire_refused',
  text: `UPDATE schedule_fires SET outcome = 'refused', reason = $3, task_id = NULL WHERE schedule_id = $1 AND fire_time = $2`,
};

/**
 * scheduleAdvance: after a fire, the next fire time not yet fired (null: none left) and the
 * last fire's bookkeeping. $1 id, $2 next_fire_at, $3 last_fire_time, $4 last_task_id (null:
 * keep; a skipped fire created no task).
 */
export const scheduleAdvance: Statement = {
  name: 'tf_schedule_advance',
  text: `
UPDATE schedules
   SET next_fire_at = $2, last_fire_time = coalesce($3, last_fire_time), last_task_id = coalesce($4, last_task_id)
 WHERE id = $1`,
};

/** scheduleFireList: fires of a schedule, newest first, before $2 (null: the newest), at most $3. $1 schedule id */
export const scheduleFireList: Statement = {
  name: 'tf_schedule_fire_list',
  text: `
SELECT schedule_id, fire_time, task_id, outcome, skipped_through, fired_at, reason
  FROM schedule_fires
 WHERE schedule_id = $1 AND ($2::timestamptz IS NULL OR fire_time < $2)
 ORDER BY fire_time DESC
 LIMIT $3`,
};

/**
 * scheduleNextDue: milliseconds until the soonest fire of an active schedule (null: none;
 * zero or less: one is due). Served by schedules_due. $1 now
 */
export const scheduleNextDue: Statement = {
  name: 'tf_schedule_next_due',
  text: `SELECT (extract(epoch FROM (min(next_fire_at) - coalesce($1::timestamptz, now()))) * 1000)::float8 AS ms
           FROM schedules WHERE NOT paused AND next_fire_at IS NOT NULL`,
};
