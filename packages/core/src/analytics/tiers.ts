/**
 * Which rollup rows answer a window: the coarsest rows that lie wholly inside it, and finer
 * ones only at its edges. Rows of every tier merge exactly (the same counts, the same
 * histogram buckets), so the answer is the one the window's own resolution would give, from
 * fewer rows: what an answer costs is the histogram entries it merges (bench/analytics.ts).
 * A sliding 24-hour window is at most 9 rows per (queue, type) instead of 24 hour rows, a
 * 48-hour one at most 10 instead of 48, six hours of minutes at most 65 instead of 360
 * (test/tiers.test.ts).
 */
export type Resolution = 'minute' | 'hour' | '6h' | 'day';

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** The tiers, finest first, and the length of their rows. All are aligned on the Unix epoch (UTC). */
export const TIERS: readonly { resolution: Resolution; ms: number }[] = [
  { resolution: 'minute', ms: MINUTE },
  { resolution: 'hour', ms: HOUR },
  { resolution: '6h', ms: 6 * HOUR },
  { resolution: 'day', ms: 24 * HOUR },
];

/** Rows of one tier: bucket starts in [from, to). */
export interface RowRange {
  resolution: Resolution;
  from: Date;
  to: Date;
}

const floorTo = (t: number, unit: number) => Math.floor(t / unit) * unit;
const ceilTo = (t: number, unit: number) => Math.ceil(t / unit) * unit;

/**
 * The row ranges that cover [from, to) exactly, no row finer than `finest` (the window is
 * aligned to it), oldest first.
 */
export function coverWindow(finest: Resolution, from: Date, to: Date): RowRange[] {
  const lowest = TIERS.findIndex((t) => t.resolution === finest);
  const cover = (a: number, b: number, tier: number): RowRange[] => {
    if (a >= b) return [];
    const { resolution, ms } = TIERS[tier]!;
    if (tier === lowest) return [{ resolution, from: new Date(a), to: new Date(b) }];
    const lo = ceilTo(a, ms);
    const hi = floorTo(b, ms);
    if (lo >= hi) return cover(a, b, tier - 1);
    return [...cover(a, lo, tier - 1), { resolution, from: new Date(lo), to: new Date(hi) }, ...cover(hi, b, tier - 1)];
  };
  return cover(from.getTime(), to.getTime(), TIERS.length - 1);
}

/** The ranges as the statements take them: three parallel arrays (sql/analyticsReads.ts, RANGES). */
export function rangeParams(ranges: readonly RowRange[]): [string[], Date[], Date[]] {
  return [ranges.map((r) => r.resolution), ranges.map((r) => r.from), ranges.map((r) => r.to)];
}
