/**
 * The typed-array histogram of the hot path (ops/histogram.ts) exported through prom-client's
 * Registry: cumulative buckets with `le` inclusive, `+Inf`, sum and count per label set, the same
 * text prom-client's own Histogram writes for the same observations.
 */
import { describe, expect, it } from 'vitest';
import client from 'prom-client';
import { BucketHistogram } from '../src/ops/histogram.ts';
import { parseExposition, valueOf } from './exposition.ts';

const BUCKETS = [0.01, 0.1, 1];
const OBSERVED: [string, number][] = [['a', 0.005], ['a', 0.01], ['a', 0.5], ['a', 7], ['b', 0.1], ['a', 0.1]];

describe('BucketHistogram', () => {
  it('counts each observation in the buckets at or above it, with sum and count per label set', async () => {
    const registry = new client.Registry();
    const h = new BucketHistogram({ name: 'h_seconds', help: 'h', labelNames: ['queue', 'code'], buckets: BUCKETS, registers: [registry] });
    const a = h.series({ queue: 'a', code: 200 });
    for (const [q, v] of OBSERVED) (q === 'a' ? a : h.series({ code: 200, queue: 'b' })).observe(v);
    const samples = parseExposition(await registry.metrics());
    const at = (queue: string, le: string) => valueOf(samples, 'h_seconds_bucket', { queue, code: '200', le });
    expect([at('a', '0.01'), at('a', '0.1'), at('a', '1'), at('a', '+Inf')]).toEqual([2, 3, 4, 5]);
    expect([at('b', '0.01'), at('b', '0.1'), at('b', '1'), at('b', '+Inf')]).toEqual([0, 1, 1, 1]);
    expect(valueOf(samples, 'h_seconds_count', { queue: 'a', code: '200' })).toBe(5);
    expect(valueOf(samples, 'h_seconds_sum', { queue: 'a', code: '200' })).toBeCloseTo(7.615, 9);
    expect(h.series({ queue: 'a', code: 200 })).toBe(a);
  });

  it('writes the exposition prom-client\'s Histogram writes for the same observations', async () => {
    const ours = new client.Registry();
    const theirs = new client.Registry();
    const h = new BucketHistogram({ name: 'h_seconds', help: 'h', labelNames: ['queue'], buckets: BUCKETS, registers: [ours] });
    const p = new client.Histogram({ name: 'h_seconds', help: 'h', labelNames: ['queue'], buckets: BUCKETS, registers: [theirs] });
    for (const [queue, v] of OBSERVED) {
      h.observe({ queue }, v);
      p.observe({ queue }, v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('refuses a label set without every label, and buckets out of order', () => {
    const h = new BucketHistogram({ name: 'x', help: 'x', labelNames: ['queue'], buckets: BUCKETS, registers: [] });
    expect(() => h.series({})).toThrow(/label queue missing/);
    expect(() => new BucketHistogram({ name: 'y', help: 'y', labelNames: [], buckets: [1, 0.5], registers: [] })).toThrow(/ascend/);
  });
});
