/**
 * What one pass of the firing duty does with a due schedule: which fire times it fires, which
 * it records as missed, and the next fire time. Pure: the database's time comes in as `now`.
 */
import type { FireTimes } from './fireTimes.ts';
import type { MisfirePolicy } from './scheduleTypes.ts';

export interface PlannedFire {
  fireTime: number;
  /** `fire`: create the task (the overlap policy may still skip it). */
  kind: 'fire' | 'skipped_misfire';
  /** `skipped_misfire`: the last missed fire the record stands for. */
  skippedThrough: number | null;
}

export interface FirePlan {
  fires: PlannedFire[];
  /** The next fire time not handled by this plan; null when none is left. */
  next: number | null;
}

export interface MisfireRules {
  misfirePolicy: MisfirePolicy;
  misfireGraceMs: number;
  catchUpMax: number;
  catchUpMaxAgeMs: number | null;
}

/**
 * The fires due at `now` from `first` (the schedule's next_fire_at, a fire time). A fire more
 * than `misfireGraceMs` late is missed: the policy keeps none (`skip`), the latest (`once`), or
 * the latest `catchUpMax` no older than `catchUpMaxAgeMs` (`catch_up`); the missed ones not
 * kept become one `skipped_misfire` record at the first of them. Fires within the grace all
 * fire, at most `max` of them; the rest wait for the next pass (`next`).
 */
export function planFires(times: FireTimes, first: number, now: number, rules: MisfireRules, max: number): FirePlan {
  const fires: PlannedFire[] = [];
  const cutoff = now - rules.misfireGraceMs;
  if (first < cutoff) {
    const keep = rules.misfirePolicy === 'skip' ? 0 : rules.misfirePolicy === 'once' ? 1 : rules.catchUpMax;
    const oldest = rules.misfirePolicy === 'catch_up' && rules.catchUpMaxAgeMs !== null ? now - rules.catchUpMaxAgeMs : first;
    const kept: number[] = [];
    for (let t = cutoff; kept.length < keep; ) {
      const f = times.lastBefore(t);
      if (f === null || f < first || f < oldest) break;
      kept.unshift(f);
      t = f;
    }
    const skippedBefore = kept[0] ?? cutoff;
    if (first < skippedBefore) {
      fires.push({ fireTime: first, kind: 'skipped_misfire', skippedThrough: times.lastBefore(skippedBefore) ?? first });
    }
    for (const f of kept) fires.push({ fireTime: f, kind: 'fire', skippedThrough: null });
  }
  let next = times.firstAtOrAfter(Math.max(first, cutoff));
  for (let n = 0; next !== null && next <= now && n < max; n++) {
    fires.push({ fireTime: next, kind: 'fire', skippedThrough: null });
    next = times.firstAtOrAfter(next + 1);
  }
  return { fires, next };
}
