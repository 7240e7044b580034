/**
 * Schedules as an operator changes them: create, read, update, pause, delete, preview. The
 * firing itself is firing.ts. Times are the database's (the engine's clock): next_fire_at is
 * computed from the time the statement's transaction reads.
 */
import type { Executor } from '../db/types.ts';
import { AlreadyExistsError, InvalidInputError, NotFoundError, mapStorageError } from '../errors.ts';
import * as S from '../sql/schedules.ts';
import type { EngineContext } from './context.ts';
import { FireTimes, parseCron, type FireSpec } from './fireTimes.ts';
import { isTaskId } from './ids.ts';
import type { Row } from './rows.ts';
import type { Schedule, ScheduleFire, ScheduleInput, SchedulePatch } from './scheduleTypes.ts';
import { canonicalTimeZone } from './zonedTime.ts';

const DEFAULTS = {
  timezone: 'UTC', paused: false, startsAt: null, endsAt: null, misfirePolicy: 'skip', misfireGraceMs: 60_000,
  catchUpMax: 10, catchUpMaxAgeMs: null, overlapPolicy: 'allow', cron: null, intervalMs: null,
} as const;

/** A schedule's settable fields, every one present (defaults applied). */
type Settings = Required<Omit<ScheduleInput, 'cron' | 'intervalMs'>> & { cron: string | null; intervalMs: number | null };

/**
 * The first field of a schedule's timing that is wrong, with what was expected, or null. The
 * HTTP edge calls it to name the field; the engine calls it again before storing.
 */
export function checkScheduleTiming(s: { cron?: string | null; intervalMs?: number | null; timezone?: string }): { field: string; message: string } | null {
  const hasCron = s.cron !== undefined && s.cron !== null;
  const hasInterval = s.intervalMs !== undefined && s.intervalMs !== null;
  if (hasCron === hasInterval) return { field: 'cron', message: 'exactly one of cron and intervalMs must be given' };
  if (hasCron) {
    try {
      parseCron(s.cron!);
    } catch (err) {
      return { field: 'cron', message: `is not a valid cron expression: ${(err as Error).message}` };
    }
  } else if (!Number.isInteger(s.intervalMs) || s.intervalMs! < 1000) {
    return { field: 'intervalMs', message: 'must be an integer of at least 1000 (ms)' };
  }
  if (s.timezone !== undefined && canonicalTimeZone(s.timezone) === null) {
    return { field: 'timezone', message: `is not a known IANA time zone: ${s.timezone}` };
  }
  return null;
}

function validated(s: Settings): Settings {
  const wrong = checkScheduleTiming(s);
  if (wrong) throw new InvalidInputError(wrong.field, `${wrong.field} ${wrong.message}`);
  if (s.startsAt && s.endsAt && s.endsAt <= s.startsAt) throw new InvalidInputError('endsAt', 'endsAt must be later than startsAt');
  return { ...s, timezone: canonicalTimeZone(s.timezone)! };
}

/** The first fire time at or after `from` (or after creation: an interval starts one interval on). */
function firstFire(s: Settings, now: number): number | null {
  const spec: FireSpec = s;
  const anchor = s.intervalMs !== null && !s.startsAt ? now + s.intervalMs : undefined;
  return new FireTimes(spec, anchor).firstAtOrAfter(anchor ?? now + 1);
}

function params(s: Settings): unknown[] {
  return [
    s.name, s.cron, s.intervalMs, s.timezone, JSON.stringify(s.template), s.paused, s.startsAt, s.endsAt,
    s.misfirePolicy, s.misfireGraceMs, s.catchUpMax, s.catchUpMaxAgeMs, s.overlapPolicy,
  ];
}

const date = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string));
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function toSchedule(r: Row): Schedule {
  return {
    id: String(r.id), name: r.name, cron: r.cron, intervalMs: num(r.interval_ms), timezone: r.timezone, template: r.template,
    paused: r.paused, startsAt: date(r.starts_at), endsAt: date(r.ends_at), misfirePolicy: r.misfire_policy,
    misfireGraceMs: r.misfire_grace_ms, catchUpMax: r.catch_up_max, catchUpMaxAgeMs: num(r.catch_up_max_age_ms),
    overlapPolicy: r.overlap_policy, nextFireAt: date(r.next_fire_at), lastFireTime: date(r.last_fire_time),
    lastTaskId: r.last_task_id === null ? null : String(r.last_task_id), createdAt: date(r.created_at)!, updatedAt: date(r.updated_at)!,
  };
}

function toFire(r: Row): ScheduleFire {
  return {
    scheduleId: String(r.schedule_id), fireTime: date(r.fire_time)!, taskId: r.task_id === null ? null : String(r.task_id),
    outcome: r.outcome, skippedThrough: date(r.skipped_through), reason: r.reason ?? null, firedAt: date(r.fired_at)!,
  };
}

async function nowOf(ctx: EngineContext, executor: Executor): Promise<number> {
  const { rows } = await executor.query(S.clockNow, [ctx.now()]);
  return new Date(rows[0]!.now).getTime();
}

/** Tells the duty when the schedule fires next (it may sleep longer than that). */
function hurry(ctx: EngineContext, s: Schedule, now: number): void {
  if (!s.paused && s.nextFireAt) ctx.announceSchedule(Math.max(0, s.nextFireAt.getTime() - now));
}

/** See Engine.createSchedule. */
export async function createSchedule(ctx: EngineContext, input: ScheduleInput): Promise<Schedule> {
  const s = validated({ ...DEFAULTS, ...input } as Settings);
  const { schedule, now } = await ctx.db.transaction(async (tx) => {
    const now = await nowOf(ctx, tx);
    const next = firstFire(s, now);
    const { rows } = await tx.query(S.scheduleInsert, [ctx.now(), ...params(s), next === null ? null : new Date(next)]).catch((err) => {
      throw mapStorageError(err);
    });
    if (rows.length === 0) throw new AlreadyExistsError('schedule', 'name', s.name);
    return { schedule: toSchedule(rows[0]!), now };
  });
  hurry(ctx, schedule, now);
  return schedule;
}

/** See Engine.getSchedule. */
export async function getSchedule(ctx: EngineContext, id: string): Promise<Schedule> {
  const rows = isTaskId(id) ? (await ctx.db.query(S.scheduleGet, [id])).rows : [];
  if (rows.length === 0) throw new NotFoundError('schedule', id);
  return toSchedule(rows[0]!);
}

/** See Engine.getScheduleByName. */
export async function getScheduleByName(ctx: EngineContext, name: string): Promise<Schedule> {
  const { rows } = await ctx.db.query(S.scheduleGetByName, [name]);
  if (rows.length === 0) throw new NotFoundError('schedule', name);
  return toSchedule(rows[0]!);
}

/** See Engine.listSchedules. */
export async function listSchedules(ctx: EngineContext, page: { afterId?: string; limit: number }): Promise<Schedule[]> {
  const { rows } = await ctx.db.query(S.scheduleList, [page.afterId ?? null, page.limit]);
  return rows.map(toSchedule);
}

/**
 * See Engine.updateSchedule. A change of timing (expression, interval, time zone, start, end)
 * starts the schedule afresh from now: its next fire is the first after now. Other changes keep
 * the next fire time, and with it the fires missed so far.
 */
export async function updateSchedule(ctx: EngineContext, id: string, patch: SchedulePatch): Promise<Schedule> {
  if (!isTaskId(id)) throw new NotFoundError('schedule', id);
  const { schedule, now } = await ctx.db.transaction(async (tx) => {
    const { rows } = await tx.query(S.scheduleLock, [id, ctx.now()]);
    if (rows.length === 0) throw new NotFoundError('schedule', id);
    const current = toSchedule(rows[0]!);
    const now = new Date(rows[0]!.now).getTime();
    const merged: Settings = { ...current, ...patch } as Settings;
    if (patch.cron !== undefined && patch.cron !== null && patch.intervalMs === undefined) merged.intervalMs = null;
    if (patch.intervalMs !== undefined && patch.intervalMs !== null && patch.cron === undefined) merged.cron = null;
    const s = validated(merged);
    if (s.name !== current.name) {
      const taken = await tx.query(S.scheduleGetByName, [s.name]);
      if (taken.rows.length > 0) throw new AlreadyExistsError('schedule', 'name', s.name);
    }
    const same = (a: unknown, b: unknown) => (a instanceof Date && b instanceof Date ? a.getTime() === b.getTime() : a === b);
    const retimed = (['cron', 'intervalMs', 'timezone', 'startsAt', 'endsAt'] as const).some((k) => !same(s[k], current[k]));
    const next = retimed ? firstFire(s, now) : current.nextFireAt?.getTime() ?? null;
    const updated = await tx.query(S.scheduleUpdate, [id, ...params(s), next === null ? null : new Date(next), ctx.now()]).catch((err) => {
      throw mapStorageError(err);
    });
    return { schedule: toSchedule(updated.rows[0]!), now };
  });
  hurry(ctx, schedule, now);
  return schedule;
}

/** See Engine.setSchedulePaused. */
export async function setSchedulePaused(ctx: EngineContext, id: string, paused: boolean): Promise<Schedule> {
  const rows = isTaskId(id) ? (await ctx.db.query(S.scheduleSetPaused, [id, paused, ctx.now()])).rows : [];
  if (rows.length === 0) throw new NotFoundError('schedule', id);
  const schedule = toSchedule(rows[0]!);
  hurry(ctx, schedule, (ctx.now() ?? new Date()).getTime());
  return schedule;
}

/** See Engine.deleteSchedule. */
export async function deleteSchedule(ctx: EngineContext, id: string): Promise<Schedule> {
  const rows = isTaskId(id) ? (await ctx.db.query(S.scheduleDelete, [id])).rows : [];
  if (rows.length === 0) throw new NotFoundError('schedule', id);
  return toSchedule(rows[0]!);
}

/**
 * See Engine.previewSchedule: the next `count` fire times after the database's now, within
 * start and end (a paused schedule's too: what it would fire once resumed).
 */
export async function previewSchedule(ctx: EngineContext, id: string, count: number): Promise<{ now: Date; fireTimes: Date[] }> {
  const s = await getSchedule(ctx, id);
  const now = await nowOf(ctx, ctx.db);
  const times = new FireTimes(s, s.nextFireAt?.getTime() ?? undefined);
  return { now: new Date(now), fireTimes: times.upcoming(now + 1, count).map((t) => new Date(t)) };
}

/** See Engine.listScheduleFires. */
export async function listScheduleFires(
  ctx: EngineContext, id: string, page: { before?: Date; limit: number },
): Promise<ScheduleFire[]> {
  await getSchedule(ctx, id);
  const { rows } = await ctx.db.query(S.scheduleFireList, [id, page.before ?? null, page.limit]);
  return rows.map(toFire);
}
