/**
 * The duration histograms of the analytics rollups: fixed, log-spaced buckets, the same at
 * every resolution, so that rows merge exactly by adding counts bucket by bucket.
 *
 * Bucket i holds the durations d (in microseconds) with floor(8 · log2(max(d, 1))) = i, that
 * is [2^(i/8), 2^((i+1)/8)) µs: eight buckets per doubling, each 9.05% wide. A percentile is
 * read as the geometric middle of the bucket that holds it, 2^((i + 1/2)/8) µs, so for any
 * duration of at least 1 µs it is within a factor 2^(1/16) of the exact one: at most 4.43%
 * above or 4.24% below (ERROR_BOUND). The exact percentile is the nearest-rank one: the
 * smallest recorded duration d such that at least p·n durations are ≤ d.
 *
 * The SQL side (sql/analytics.ts, BUCKET_OF) computes the index; this side only reads it.
 */

/** Buckets per doubling of the duration. */
export const BUCKETS_PER_DOUBLING = 8;

/** Largest relative error of a percentile read from a histogram: 2^(1/16) − 1. */
export const ERROR_BOUND = 2 ** (1 / (2 * BUCKETS_PER_DOUBLING)) - 1;

/** Bucket index → count, as the rollups store it (merged over rows by adding). */
export type Histogram = Map<number, number>;

/** The bucket of a duration in milliseconds (the SQL's formula, for tests and fabrication). */
export function bucketOf(ms: number): number {
  const us = Math.max(ms * 1000, 1);
  return Math.min(336, Math.floor((BUCKETS_PER_DOUBLING * Math.log(us)) / Math.LN2));
}

/** The value a bucket stands for, ms: its geometric middle. */
export function bucketValueMs(ix: number): number {
  return 2 ** ((ix + 0.5) / BUCKETS_PER_DOUBLING) / 1000;
}

/** Adds `n` durations in bucket `ix`. */
export function addToHistogram(h: Histogram, ix: number, n: number): void {
  h.set(ix, (h.get(ix) ?? 0) + n);
}

/**
 * Adds a stored histogram, given as its two arrays' elements comma-separated (`ix` the
 * buckets, `n` their counts), as the reads return it (sql/analyticsReads.ts, analyticsHistograms).
 */
export function addStored(h: Histogram, ix: string, n: string): void {
  const ixs = ix.split(',');
  const ns = n.split(',');
  for (let k = 0; k < ixs.length; k++) addToHistogram(h, Number(ixs[k]), Number(ns[k]));
}

export function histogramCount(h: Histogram): number {
  let n = 0;
  for (const c of h.values()) n += c;
  return n;
}

/**
 * The nearest-rank percentile `p` (0 < p ≤ 1) of a histogram, ms; null when it is empty.
 */
export function percentileMs(h: Histogram, p: number): number | null {
  const total = histogramCount(h);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(p * total));
  let seen = 0;
  for (const ix of [...h.keys()].sort((a, b) => a - b)) {
    seen += h.get(ix)!;
    if (seen >= rank) return bucketValueMs(ix);
  }
  return null; // unreachable: seen reaches total
}

/** p50, p95 and p99 of a histogram, ms. */
export function percentiles(h: Histogram): { p50: number | null; p95: number | null; p99: number | null } {
  return { p50: percentileMs(h, 0.5), p95: percentileMs(h, 0.95), p99: percentileMs(h, 0.99) };
}
