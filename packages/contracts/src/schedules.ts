/**
 * Schedules (docs/schedules.md): a cron expression in a time zone, or a fixed interval, that
 * creates a task from its template at each fire time, exactly once across all nodes.
 */
import { Type, type Static } from 'typebox';
import { Cursor, Limit, Page, TaskId, Timestamp } from './common.ts';
import { TaskInput } from './tasks.ts';

export const ScheduleId = Type.String({ pattern: '^[1-9][0-9]{0,18}$', description: 'Schedule id: a positive integer, as a string.', examples: ['7'] });

// No trace context either: a fixed one would tie every fire to one producer's trace. No
// dependsOn: a fire's task waits for nothing.
const {
  runAt: _runAt, delayMs: _delayMs, idempotencyKey: _key, traceparent: _tp, tracestate: _ts,
  uniqueKey: _unique, uniqueForMs: _uniqueFor, expiresAt: _expiresAt, dependsOn: _deps,
  ...templateFields
} = TaskInput.properties;

export const ScheduleTemplate = Type.Object(templateFields, {
  additionalProperties: false,
  description: 'The task each fire creates: the fields of a task submission, without runAt, delayMs, idempotencyKey, the trace context, uniqueKey, uniqueForMs and expiresAt (each fire is its own task, due at once; ttlMs counts from the fire). Checked as a submission would be.',
});
export type ScheduleTemplate = Static<typeof ScheduleTemplate>;

export const MisfirePolicy = Type.Enum(['skip', 'once', 'catch_up'], {
  description: 'Fires more than misfireGraceMs late (every node down, or the schedule paused): `skip` none of them, `once` the latest, `catch_up` the latest catchUpMax no older than catchUpMaxAgeMs. Default skip.',
});
export const OverlapPolicy = Type.Enum(['allow', 'skip', 'replace'], {
  description: 'While the last fire\'s task is unfinished: `allow` another, `skip` this fire, `replace` (cancel the old task, create the new one). Default allow.',
});

const name = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f]+$', description: 'Unique name; no control characters, at most 200 characters.' });
const cron = Type.String({
  minLength: 1, maxLength: 200,
  description: 'A croner expression: 5 fields (minute first), 6 (seconds first) or 7 (years last); nicknames such as @daily. Read in `timezone`. Exclusive with intervalMs.',
  examples: ['0 30 2 * * *'],
});
const intervalMs = Type.Integer({ minimum: 1000, maximum: 315_360_000_000, description: 'A fixed interval in real time, ms, from startsAt (or one interval after creation). Exclusive with cron.' });
const timezone = Type.String({ minLength: 1, maxLength: 64, description: 'IANA time zone the cron expression is read in (default UTC).', examples: ['Europe/Berlin'] });
const misfireGraceMs = Type.Integer({ minimum: 1000, maximum: 2_147_483_647, description: 'How late a fire may be and still be on time, ms (default 60000).' });
const catchUpMax = Type.Integer({ minimum: 1, maximum: 1000, description: 'catch_up: most missed fires run (default 10).' });
const catchUpMaxAgeMs = Type.Integer({ minimum: 1000, maximum: 315_360_000_000, description: 'catch_up: no missed fire older than this is run, ms (default: no limit).' });
const startsAt = Type.Union([Timestamp, Type.Null()], { description: 'No fire before this time (inclusive).' });
const endsAt = Type.Union([Timestamp, Type.Null()], { description: 'No fire at or after this time (exclusive).' });

export const ScheduleInput = Type.Object(
  {
    name,
    cron: Type.Optional(cron),
    intervalMs: Type.Optional(intervalMs),
    timezone: Type.Optional(timezone),
    template: ScheduleTemplate,
    paused: Type.Optional(Type.Boolean({ description: 'Created paused (default false).' })),
    startsAt: Type.Optional(startsAt),
    endsAt: Type.Optional(endsAt),
    misfirePolicy: Type.Optional(MisfirePolicy),
    misfireGraceMs: Type.Optional(misfireGraceMs),
    catchUpMax: Type.Optional(catchUpMax),
    catchUpMaxAgeMs: Type.Optional(Type.Union([catchUpMaxAgeMs, Type.Null()])),
    overlapPolicy: Type.Optional(OverlapPolicy),
  },
  { additionalProperties: false },
);
export type ScheduleInput = Static<typeof ScheduleInput>;

export const SchedulePatch = Type.Object(
  {
    name: Type.Optional(name),
    cron: Type.Optional(cron),
    intervalMs: Type.Optional(intervalMs),
    timezone: Type.Optional(timezone),
    template: Type.Optional(ScheduleTemplate),
    startsAt: Type.Optional(startsAt),
    endsAt: Type.Optional(endsAt),
    misfirePolicy: Type.Optional(MisfirePolicy),
    misfireGraceMs: Type.Optional(misfireGraceMs),
    catchUpMax: Type.Optional(catchUpMax),
    catchUpMaxAgeMs: Type.Optional(Type.Union([catchUpMaxAgeMs, Type.Null()])),
    overlapPolicy: Type.Optional(OverlapPolicy),
  },
  {
    additionalProperties: false,
    description: 'The fields given replace the current ones (null clears startsAt, endsAt, catchUpMaxAgeMs); cron replaces an interval and the other way round. A change of cron, intervalMs, timezone, startsAt or endsAt restarts the schedule from now; other changes keep its next fire time.',
  },
);
export type SchedulePatch = Static<typeof SchedulePatch>;

export const Schedule = Type.Object({
  id: ScheduleId,
  name: Type.String(),
  cron: Type.Union([Type.String(), Type.Null()]),
  intervalMs: Type.Union([Type.Integer(), Type.Null()]),
  timezone: Type.String({ description: 'Canonical IANA name.' }),
  template: ScheduleTemplate,
  paused: Type.Boolean(),
  startsAt: Type.Union([Timestamp, Type.Null()]),
  endsAt: Type.Union([Timestamp, Type.Null()]),
  misfirePolicy: MisfirePolicy,
  misfireGraceMs: Type.Integer(),
  catchUpMax: Type.Integer(),
  catchUpMaxAgeMs: Type.Union([Type.Integer(), Type.Null()]),
  overlapPolicy: OverlapPolicy,
  nextFireAt: Type.Union([Timestamp, Type.Null()], { description: 'The next fire time not yet fired; null when none is left (past endsAt).' }),
  lastFireTime: Type.Union([Timestamp, Type.Null()]),
  lastTaskId: Type.Union([TaskId, Type.Null()], { description: 'The task of the last fire that created one.' }),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type Schedule = Static<typeof Schedule>;

export const ScheduleFire = Type.Object({
  scheduleId: ScheduleId,
  fireTime: Timestamp,
  taskId: Type.Union([TaskId, Type.Null()], { description: 'The task the fire created; null when it created none.' }),
  outcome: Type.Enum(['created', 'replaced', 'skipped_overlap', 'skipped_misfire', 'refused'], {
    description: '`replaced`: created after cancelling the last fire\'s task. `skipped_misfire`: missed fires not run, from fireTime through skippedThrough. `refused`: the task was refused (its queue full, the template no longer a valid task, or its payload over the payload limit); see reason.',
  }),
  skippedThrough: Type.Union([Timestamp, Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()], {
    description: '`refused`: why, as the refusal\'s code and message (`queue_full: ...`, `invalid_input: ...`); null otherwise.',
  }),
  firedAt: Timestamp,
});
export type ScheduleFire = Static<typeof ScheduleFire>;

export const ScheduleParams = Type.Object({ id: ScheduleId });
export const ScheduleListQuery = Type.Object({ limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) }, { additionalProperties: false });
export type ScheduleListQuery = Static<typeof ScheduleListQuery>;
export const SchedulePage = Page(Schedule);
export type SchedulePage = Static<typeof SchedulePage>;
export const ScheduleFirePage = Page(ScheduleFire);
export type ScheduleFirePage = Static<typeof ScheduleFirePage>;

export const SchedulePreviewQuery = Type.Object(
  { count: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 10, description: 'How many fire times (1–100).' })) },
  { additionalProperties: false },
);
export const SchedulePreview = Type.Object({
  now: Timestamp,
  fireTimes: Type.Array(Timestamp, { description: 'The next fire times after `now` (the database\'s clock), within startsAt and endsAt.' }),
});
export type SchedulePreview = Static<typeof SchedulePreview>;
