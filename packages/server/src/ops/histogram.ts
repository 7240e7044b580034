/**
 * A Prometheus histogram for the hot path: each series keeps its bucket counts in a typed
 * array, and an observation is a bucket search and two additions. prom-client's Histogram
 * hashes the label set into a string key, checks every label name and looks the bucket up by
 * its bound as a property name on every `observe`, even on a child from `labels()`: several
 * times the cost of the counting itself, paid per task and per request. Here the caller holds
 * the series (looked up once per label set, or per batch) and the exposition is built at scrape
 * time from the counts, in prom-client's format, through the same Registry.
 */
import type client from 'prom-client';

type LabelValues = Record<string, string | number>;

/** One label set's counts. */
export class HistogramSeries {
  readonly labels: LabelValues;
  /** Observations per bucket, not cumulative: counts[i] ≤ bounds[i] (and above bounds[i-1]); the last, above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  private readonly bounds: Float64Array;

  constructor(bounds: Float64Array, labels: LabelValues) {
    this.bounds = bounds;
    this.labels = labels;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export interface BucketHistogramOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
  /** Upper bounds, ascending (`+Inf` is implied). */
  buckets: readonly number[];
  registers: client.Registry[];
}

/**
 * The histogram: its series by label set, exported as `<name>_bucket{le}` (cumulative),
 * `_sum` and `_count`. Registered in a prom-client Registry as a metric of its own (the
 * Registry asks a metric only for its name, type and `get()`).
 */
export class BucketHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: readonly string[];
  private readonly bounds: Float64Array;
  private readonly byKey = new Map<string, HistogramSeries>();

  constructor(opts: BucketHistogramOptions) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames;
    for (let i = 1; i < opts.buckets.length; i++) {
      if (!(opts.buckets[i]! > opts.buckets[i - 1]!)) throw new RangeError(`${opts.name}: buckets must ascend`);
    }
    this.bounds = Float64Array.from(opts.buckets);
    for (const r of opts.registers) r.registerMetric(this as unknown as client.Metric);
  }

  /**
   * The series of `labels` (every label name, in any order), made at first use. The lookup
   * builds a key: callers on a hot path keep the series they got.
   */
  series(labels: LabelValues): HistogramSeries {
    let key = '';
    for (const name of this.labelNames) {
      const v = labels[name];
      if (v === undefined) throw new TypeError(`${this.name}: label ${name} missing`);
      key += `${v}\u0000`;
    }
    let s = this.byKey.get(key);
    if (!s) {
      s = new HistogramSeries(this.bounds, Object.fromEntries(this.labelNames.map((n) => [n, labels[n]!])));
      this.byKey.set(key, s);
    }
    return s;
  }

  /** Shorthand for one observation through the label set (not for a hot path). */
  observe(labels: LabelValues, value: number): void {
    this.series(labels).observe(value);
  }

  /** Forgets every series (prom-client's Registry.resetMetrics). */
  reset(): void {
    this.byKey.clear();
  }

  /** The samples, as prom-client's Histogram gives them to the Registry. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: object[] }> {
    const values: object[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.byKey.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: this.bounds[i] }, sharedLabels: s.labels, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket });
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
