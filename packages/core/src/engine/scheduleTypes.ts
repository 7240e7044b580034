/** The public types of schedules (docs/schedules.md). */
import type { TaskInput } from './types.ts';

/**
 * What happens to fires missed by more than `misfireGraceMs` (every node down, or the schedule
 * paused): `skip` none of them; `once` the latest one; `catch_up` the latest `catchUpMax` of
 * them no older than `catchUpMaxAgeMs`. Skipped ones are recorded as one `skipped_misfire` fire.
 */
export type MisfirePolicy = 'skip' | 'once' | 'catch_up';

/**
 * What a fire does while the task of the schedule's last fire is unfinished: `allow` creates
 * another, `skip` records the fire as `skipped_overlap`, `replace` cancels the old task (a
 * running one is asked to stop) and creates the new one.
 */
export type OverlapPolicy = 'allow' | 'skip' | 'replace';

/** The task a schedule creates at each fire: a submission without run time or idempotency key. */
export type ScheduleTemplate = Omit<TaskInput, 'runAt' | 'delayMs' | 'idempotencyKey' | 'payloadJson' | 'traceparent' | 'tracestate' | 'dependsOn'>;

/** A new schedule. Exactly one of `cron` and `intervalMs`. */
export interface ScheduleInput {
  /** Unique among schedules. */
  name: string;
  /** A croner expression: 5 fields, or 6 with seconds first (7 with years); read in `timezone`. */
  cron?: string | null;
  /** A fixed interval in real time, ms (at least 1000), from `startsAt` (or creation + interval). */
  intervalMs?: number | null;
  /** IANA time zone the cron expression is read in. @defaultValue `UTC` */
  timezone?: string;
  template: ScheduleTemplate;
  /** @defaultValue false */
  paused?: boolean;
  /** No fire before this time (inclusive). @defaultValue none */
  startsAt?: Date | null;
  /** No fire at or after this time (exclusive). @defaultValue none */
  endsAt?: Date | null;
  /** @defaultValue `skip` */
  misfirePolicy?: MisfirePolicy;
  /** How late a fire may be and still be on time, ms. @defaultValue 60000 */
  misfireGraceMs?: number;
  /** `catch_up`: most missed fires run. @defaultValue 10 */
  catchUpMax?: number;
  /** `catch_up`: oldest missed fire run, ms before now. @defaultValue no limit */
  catchUpMaxAgeMs?: number | null;
  /** @defaultValue `allow` */
  overlapPolicy?: OverlapPolicy;
}

/** A change to a schedule: the fields given replace the current ones (null clears). */
export type SchedulePatch = Partial<ScheduleInput>;

export interface Schedule {
  id: string;
  name: string;
  cron: string | null;
  intervalMs: number | null;
  timezone: string;
  template: ScheduleTemplate;
  paused: boolean;
  startsAt: Date | null;
  endsAt: Date | null;
  misfirePolicy: MisfirePolicy;
  misfireGraceMs: number;
  catchUpMax: number;
  catchUpMaxAgeMs: number | null;
  overlapPolicy: OverlapPolicy;
  /** The next fire time not yet fired; null when none is left (past `endsAt`). */
  nextFireAt: Date | null;
  lastFireTime: Date | null;
  /** The task of the last fire that created one. */
  lastTaskId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * `created`: a task was created. `replaced`: created after cancelling the last fire's task.
 * `skipped_overlap`: the last fire's task was unfinished (overlap `skip`). `skipped_misfire`:
 * missed fires not run, from `fireTime` through `skippedThrough`. `refused`: the task was
 * refused (the queue full, the template no longer a valid task, or its payload over `maxPayloadBytes`; see `reason`); no task.
 */
export type FireOutcome = 'created' | 'replaced' | 'skipped_overlap' | 'skipped_misfire' | 'refused';

export interface ScheduleFire {
  scheduleId: string;
  fireTime: Date;
  taskId: string | null;
  outcome: FireOutcome;
  /** `skipped_misfire`: the last missed fire this row stands for. */
  skippedThrough: Date | null;
  /** `refused`: why, as the refusal's code and message (`queue_full: ...`); null otherwise. */
  reason: string | null;
  firedAt: Date;
}
