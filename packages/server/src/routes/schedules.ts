/**
 * Schedules (docs/schedules.md). What a schema cannot check is checked here before anything is
 * stored, as the same 400 naming the field: the expression, interval and time zone (as the
 * engine will read them), start before end, and the template exactly as a task submission.
 */
import { checkScheduleTiming, type Engine, type Schedule, type ScheduleFire, type ScheduleTemplate } from '@taskflow/core';
import type * as C from '@taskflow/contracts';
import type { Handlers } from '../http/route.ts';
import { badRequest } from '../http/problems.ts';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';
import { assertStorableText } from '../http/storable.ts';
import { parseTime, toEngineInput } from './tasks.ts';

export interface ScheduleRouteDeps {
  engine: Engine;
  maxPayloadBytes: number;
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function scheduleJson(s: Schedule): C.Schedule {
  return {
    ...s,
    template: s.template as C.ScheduleTemplate,
    startsAt: iso(s.startsAt), endsAt: iso(s.endsAt), nextFireAt: iso(s.nextFireAt), lastFireTime: iso(s.lastFireTime),
    createdAt: s.createdAt.toISOString(), updatedAt: s.updatedAt.toISOString(),
  };
}

function fireJson(f: ScheduleFire): C.ScheduleFire {
  return { ...f, fireTime: f.fireTime.toISOString(), skippedThrough: iso(f.skippedThrough), firedAt: f.firedAt.toISOString() };
}

/** The template as a task submission would be checked (payload size, exclusive fields, storable text). */
function template(t: C.ScheduleTemplate, maxPayloadBytes: number): ScheduleTemplate {
  const { payloadJson: _checked, ...input } = toEngineInput(t, '/body/template', maxPayloadBytes);
  return input;
}

/** The timing fields of a creation or a change, checked; times parsed. */
function timing(body: C.SchedulePatch, current?: Schedule) {
  assertStorableText(body.name, '/body/name');
  const merged = { cron: current?.cron, intervalMs: current?.intervalMs, timezone: current?.timezone, ...body };
  if (body.cron !== undefined && body.intervalMs === undefined) merged.intervalMs = null;
  if (body.intervalMs !== undefined && body.cron === undefined) merged.cron = null;
  const wrong = checkScheduleTiming(merged);
  if (wrong) throw badRequest(`/body/${wrong.field}`, wrong.message);
  const startsAt = typeof body.startsAt === 'string' ? parseTime(body.startsAt, '/body/startsAt') : body.startsAt;
  const endsAt = typeof body.endsAt === 'string' ? parseTime(body.endsAt, '/body/endsAt') : body.endsAt;
  const start = startsAt === undefined ? current?.startsAt : startsAt;
  const end = endsAt === undefined ? current?.endsAt : endsAt;
  if (start && end && end <= start) throw badRequest('/body/endsAt', 'must be later than startsAt');
  return { startsAt, endsAt };
}

export function scheduleHandlers(deps: ScheduleRouteDeps): Pick<
  Handlers,
  | 'createSchedule' | 'listSchedules' | 'getSchedule' | 'updateSchedule' | 'deleteSchedule' | 'pauseSchedule' | 'resumeSchedule'
  | 'previewSchedule' | 'listScheduleFires'
> {
  const { engine, maxPayloadBytes } = deps;
  return {
    async createSchedule(req, reply) {
      const body = req.body;
      if (body.cron === undefined && body.intervalMs === undefined) throw badRequest('/body/cron', 'or intervalMs is required (exactly one of them)');
      const times = timing(body);
      const s = await engine.createSchedule({ ...body, ...times, template: template(body.template, maxPayloadBytes) });
      reply.code(201).header('location', `/api/v1/schedules/${s.id}`);
      return scheduleJson(s);
    },
    async listSchedules(req) {
      const cursor = decodeCursor(req.query.cursor, ['id'] as const);
      const limit = req.query.limit ?? 50;
      const items = await engine.listSchedules({ afterId: cursor?.id, limit });
      return { items: items.map(scheduleJson), nextCursor: items.length === limit ? encodeCursor({ id: items.at(-1)!.id }) : null };
    },
    async getSchedule(req) {
      return scheduleJson(await engine.getSchedule(req.params.id));
    },
    async updateSchedule(req) {
      const current = await engine.getSchedule(req.params.id);
      const body = req.body;
      const times = timing(body, current);
      const patch = { ...body, ...times, template: body.template ? template(body.template, maxPayloadBytes) : undefined };
      for (const k of Object.keys(patch) as (keyof typeof patch)[]) if (patch[k] === undefined) delete patch[k];
      return scheduleJson(await engine.updateSchedule(req.params.id, patch));
    },
    async deleteSchedule(req) {
      return scheduleJson(await engine.deleteSchedule(req.params.id));
    },
    async pauseSchedule(req) {
      return scheduleJson(await engine.setSchedulePaused(req.params.id, true));
    },
    async resumeSchedule(req) {
      return scheduleJson(await engine.setSchedulePaused(req.params.id, false));
    },
    async previewSchedule(req) {
      const p = await engine.previewSchedule(req.params.id, req.query.count ?? 10);
      return { now: p.now.toISOString(), fireTimes: p.fireTimes.map((d) => d.toISOString()) };
    },
    async listScheduleFires(req) {
      const cursor = decodeCursor(req.query.cursor, ['before'] as const);
      const before = cursor ? new Date(cursor.before) : undefined;
      if (before && Number.isNaN(before.getTime())) throw badRequest('/query/cursor', 'is not a cursor this server issued');
      const limit = req.query.limit ?? 50;
      const fires = await engine.listScheduleFires(req.params.id, { before, limit });
      return {
        items: fires.map(fireJson),
        nextCursor: fires.length === limit ? encodeCursor({ before: fires.at(-1)!.fireTime.toISOString() }) : null,
      };
    },
  };
}
