/**
 * Wall-clock time in an IANA time zone, and back to instants, with the daylight-saving rule of
 * schedules (docs/schedules.md): a wall-clock time that does not exist (spring forward) stands
 * for the end of the gap; one that occurs twice (fall back) for its first occurrence.
 *
 * A wall-clock time is written as the milliseconds of the same fields read as UTC
 * (`Date.UTC(year, month, day, hour, minute, second)`): in UTC there is no daylight saving, so
 * croner enumerates every wall-clock time exactly once (engine/fireTimes.ts).
 */

const DAY = 86_400_000;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * The canonical name of a time zone this runtime knows (IANA names and `UTC`; `europe/berlin`
 * becomes `Europe/Berlin`), or null.
 */
export function canonicalTimeZone(name: string): string | null {
  try {
    return formatter(name).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/** The wall-clock time shown in `timeZone` at instant `t` (both in ms). */
export function wallClock(timeZone: string, t: number): number {
  if (timeZone === 'UTC') return t;
  const f: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(t)) if (p.type !== 'literal') f[p.type] = Number(p.value);
  const ms = ((t % 1000) + 1000) % 1000;
  return Date.UTC(f.year!, f.month! - 1, f.day!, f.hour!, f.minute!, f.second!) + ms;
}

function offsetAt(timeZone: string, t: number): number {
  return wallClock(timeZone, t) - t;
}

/** The first instant in (lo, hi] whose offset differs from lo's (a transition lies there). */
function transitionIn(timeZone: string, lo: number, hi: number): number {
  const before = offsetAt(timeZone, lo);
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (offsetAt(timeZone, mid) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * The instant wall-clock time `local` stands for: its only occurrence; the first of two (fall
 * back); the end of the gap it falls in (spring forward). Non-decreasing in `local`. Assumes
 * at most one transition within a day either side, as every zone has.
 */
export function instantOf(timeZone: string, local: number): number {
  if (timeZone === 'UTC') return local;
  const before = offsetAt(timeZone, local - DAY);
  const after = offsetAt(timeZone, local + DAY);
  let first = Number.POSITIVE_INFINITY;
  for (const offset of [before, after]) {
    const t = local - offset;
    if (t < first && wallClock(timeZone, t) === local) first = t;
  }
  if (first !== Number.POSITIVE_INFINITY) return first;
  // In a gap: the clocks jumped from `before` to `after` (> before) between these two instants.
  return transitionIn(timeZone, local - after, local - before);
}

/**
 * The least wall-clock time above every one shown before instant `t`: the wall-clock times at
 * or after it are those whose instant (instantOf) is at or after `t`. Past a fall back, it
 * stays at the wall-clock time the clocks were turned back from until they reach it again.
 */
export function wallClockFloor(timeZone: string, t: number): number {
  if (timeZone === 'UTC') return t;
  let highest = wallClock(timeZone, t - 1);
  const earlier = offsetAt(timeZone, t - DAY);
  if (earlier > offsetAt(timeZone, t - 1)) {
    const back = transitionIn(timeZone, t - DAY, t - 1);
    highest = Math.max(highest, back - 1 + earlier);
  }
  return highest + 1;
}
