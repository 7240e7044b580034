/**
 * The fire times of a schedule: a cron expression read in a time zone, or a fixed interval.
 *
 * Cron expressions are parsed and matched by croner, on wall-clock time (zonedTime.ts): croner
 * runs in UTC, where every wall-clock time occurs once, and each match becomes an instant by
 * the schedules' daylight-saving rule, for every expression alike: a time in the spring-forward
 * gap fires once, at the end of the gap; a time in the fall-back hour fires once, at its first
 * occurrence. That is croner's own rule for fixed-time expressions (`0 30 2 * * *`); for the
 * others (`0 *\/15 * * * *`, `0 30 * * * *`) croner skips gap times and fires the repeated hour
 * twice, which Taskflow does not (docs/schedules.md, "Daylight saving").
 */
import { Cron } from 'croner';
import { instantOf, wallClockFloor } from './zonedTime.ts';

/** What fire times depend on. */
export interface FireSpec {
  cron: string | null;
  intervalMs: number | null;
  timezone: string;
  startsAt: Date | null;
  endsAt: Date | null;
}

/** Parses a cron expression as schedules read it; throws croner's error (naming the field) if invalid. */
export function parseCron(expression: string): Cron {
  const cron = new Cron(expression, { timezone: 'UTC', paused: true });
  // An expression can be valid and never match (`0 0 0 30 2 *`, the 30th of February).
  if (cron.nextRun(new Date(0)) === null) throw new TypeError('the expression never matches a time');
  return cron;
}

/**
 * A schedule's fire times, as instants (ms), within its start (inclusive) and end (exclusive).
 * An interval schedule's fires are `anchor + k × intervalMs` for whole k: the anchor is any fire
 * time (its next_fire_at, or its first).
 */
export class FireTimes {
  private readonly spec: FireSpec;
  private readonly cron: Cron | undefined;
  private readonly anchor: number;
  private readonly start: number;
  private readonly end: number;

  constructor(spec: FireSpec, anchor?: number) {
    this.spec = spec;
    this.start = spec.startsAt?.getTime() ?? Number.NEGATIVE_INFINITY;
    this.end = spec.endsAt?.getTime() ?? Number.POSITIVE_INFINITY;
    if (spec.cron !== null) this.cron = parseCron(spec.cron);
    this.anchor = anchor ?? spec.startsAt?.getTime() ?? 0;
  }

  /** The first fire time at or after `t`, or null when none is left. */
  firstAtOrAfter(t: number): number | null {
    const from = Math.max(t, this.start);
    let f: number | null;
    if (this.cron) {
      const local = this.cron.nextRun(new Date(wallClockFloor(this.spec.timezone, from) - 1));
      f = local === null ? null : instantOf(this.spec.timezone, local.getTime());
    } else {
      const i = this.spec.intervalMs!;
      f = this.anchor + Math.ceil((from - this.anchor) / i) * i;
    }
    return f !== null && f < this.end ? f : null;
  }

  /** The last fire time before `t`, or null when there is none. */
  lastBefore(t: number): number | null {
    const before = Math.min(t, this.end);
    let f: number | null;
    if (this.cron) {
      const [local] = this.cron.previousRuns(1, new Date(wallClockFloor(this.spec.timezone, before)));
      f = local === undefined ? null : instantOf(this.spec.timezone, local.getTime());
    } else {
      const i = this.spec.intervalMs!;
      f = this.anchor + (Math.ceil((before - this.anchor) / i) - 1) * i;
    }
    return f !== null && f >= this.start ? f : null;
  }

  /** Up to `n` fire times at or after `t`, in order. */
  upcoming(t: number, n: number): number[] {
    const out: number[] = [];
    let f = this.firstAtOrAfter(t);
    while (f !== null && out.length < n) {
      out.push(f);
      f = this.firstAtOrAfter(f + 1);
    }
    return out;
  }
}
