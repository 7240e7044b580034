/**
 * What an analytics window may be, and the rollup rows it is aligned to: minute rows for
 * short windows and fine buckets, hour rows up to two days, day rows beyond, so that no
 * answer reads more than about 1,440 rows per (queue, type); within a window, tiers.ts reads
 * coarser rows where they fit. Limits keep every answer within the rows that are kept.
 */
import { InvalidInputError } from '../errors.ts';
import type { AnalyticsWindow } from './analytics.ts';
import { DEFAULT_ROLLUP_OPTIONS } from './rollup.ts';
import type { Resolution } from './tiers.ts';

export type { Resolution } from './tiers.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Throughput bucket sizes by name. */
export const THROUGHPUT_BUCKETS = { '1m': MINUTE, '5m': 5 * MINUTE, '15m': 15 * MINUTE, '1h': HOUR, '6h': 6 * HOUR, '1d': DAY } as const;
export type ThroughputBucket = keyof typeof THROUGHPUT_BUCKETS;

export const WINDOW_LIMITS = {
  /** Most buckets in one throughput answer. */
  maxPoints: 1440,
  /** Longest window read from minute rows (their retention). */
  minuteWindowMaxMs: DEFAULT_ROLLUP_OPTIONS.minuteRetentionMs,
  /** Longest window read from hour rows (their retention). */
  hourWindowMaxMs: DEFAULT_ROLLUP_OPTIONS.hourRetentionMs,
  /** Longest window read from day rows (their retention). */
  dayWindowMaxMs: DEFAULT_ROLLUP_OPTIONS.dayRetentionMs,
  /** Longest window of the per-(queue, type) and per-worker answers. */
  summaryWindowMaxMs: 90 * DAY,
  /** Summary windows up to this are read from minute rows. */
  summaryMinuteMaxMs: 6 * HOUR,
  /** Summary windows up to this (and over summaryMinuteMaxMs) are read from hour rows; longer ones from day rows. */
  summaryHourMaxMs: 2 * DAY,
};

/** `90m`, `24h`, `7d` → ms; null when not of that form. */
export function parseDuration(text: string): number | null {
  const m = /^([1-9][0-9]{0,5})([mhd])$/.exec(text);
  if (!m) return null;
  return Number(m[1]) * { m: MINUTE, h: HOUR, d: DAY }[m[2] as 'm' | 'h' | 'd'];
}

const ceilTo = (t: number, unit: number) => Math.ceil(t / unit) * unit;
const human = (ms: number) => (ms % DAY === 0 ? `${ms / DAY}d` : ms % HOUR === 0 ? `${ms / HOUR}h` : `${ms / MINUTE}m`);

function windowMs(text: string): number {
  const ms = parseDuration(text);
  if (ms === null) throw new InvalidInputError('window', 'must be a number of minutes, hours or days: 90m, 24h, 7d');
  return ms;
}

/**
 * The window of a throughput answer: `window` long, ending at the end of the bucket that holds
 * `until`. Throws InvalidInputError naming `window` or `bucket`.
 */
export function throughputWindow(window: string, bucket: string, until: Date): AnalyticsWindow & { bucketMs: number } {
  const bucketMs = THROUGHPUT_BUCKETS[bucket as ThroughputBucket];
  if (bucketMs === undefined) throw new InvalidInputError('bucket', `must be one of: ${Object.keys(THROUGHPUT_BUCKETS).join(', ')}`);
  const ms = windowMs(window);
  if (ms < bucketMs || ms % bucketMs !== 0) throw new InvalidInputError('window', `must be a whole number of buckets (${bucket})`);
  if (ms / bucketMs > WINDOW_LIMITS.maxPoints) {
    throw new InvalidInputError('window', `is too large: at most ${WINDOW_LIMITS.maxPoints} buckets (${human(bucketMs * WINDOW_LIMITS.maxPoints)} of ${bucket})`);
  }
  const resolution: Resolution = bucketMs >= DAY ? 'day' : bucketMs >= 6 * HOUR ? '6h' : bucketMs >= HOUR ? 'hour' : 'minute';
  const max = {
    minute: WINDOW_LIMITS.minuteWindowMaxMs, hour: WINDOW_LIMITS.hourWindowMaxMs, '6h': WINDOW_LIMITS.hourWindowMaxMs, day: WINDOW_LIMITS.dayWindowMaxMs,
  }[resolution];
  if (ms > max) throw new InvalidInputError('window', `is too large for bucket ${bucket}: at most ${human(max)}`);
  const to = ceilTo(until.getTime() + 1, bucketMs);
  return { resolution, from: new Date(to - ms), to: new Date(to), bucketMs };
}

/**
 * The window of a percentile, failure-rate or per-worker answer: `window` long, ending at the
 * end of the minute (windows up to 6 h), of the hour (up to 2 d, whole hours) or of the UTC
 * day (longer ones, whole days) that holds `until`. Throws InvalidInputError naming `window`.
 */
export function summaryWindow(window: string, until: Date): AnalyticsWindow {
  const ms = windowMs(window);
  if (ms > WINDOW_LIMITS.summaryWindowMaxMs) throw new InvalidInputError('window', `is too large: at most ${human(WINDOW_LIMITS.summaryWindowMaxMs)}`);
  const resolution: Resolution = ms <= WINDOW_LIMITS.summaryMinuteMaxMs ? 'minute' : ms <= WINDOW_LIMITS.summaryHourMaxMs ? 'hour' : 'day';
  const unit = { minute: MINUTE, hour: HOUR, '6h': 6 * HOUR, day: DAY }[resolution];
  if (ms % unit !== 0) {
    throw new InvalidInputError('window', resolution === 'hour'
      ? `must be whole hours when longer than ${human(WINDOW_LIMITS.summaryMinuteMaxMs)}`
      : `must be whole days when longer than ${human(WINDOW_LIMITS.summaryHourMaxMs)}`);
  }
  const to = ceilTo(until.getTime() + 1, unit);
  return { resolution, from: new Date(to - ms), to: new Date(to) };
}
