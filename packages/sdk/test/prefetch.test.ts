/** The adaptive prefetch's rules (pure logic; test/prefetch.test.ts runs it in real workers). */
import { describe, expect, it } from 'vitest';
import { AdaptivePrefetch } from '../src/prefetch.ts';

/** `n` handlers of `ms` each finished. */
const finish = (p: AdaptivePrefetch, n: number, ms: number) => {
  for (let i = 0; i < n; i++) p.taskDone(ms);
};

describe('AdaptivePrefetch', () => {
  it('grows (doubling) while claims come back full, after each slot turnover, up to its cap', () => {
    const p = new AdaptivePrefetch(10, 100);
    p.claimed(10, 10, 5, 30_000);
    expect(p.value).toBe(0); // nothing finished yet: no handler time to bound it by
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      finish(p, 10, 0.1);
      p.claimed(10, 10, 5, 30_000);
      seen.push(p.value);
    }
    expect(seen).toEqual([10, 20, 40, 80, 100, 100]);
  });

  it('does not grow without a slot turnover in between', () => {
    const p = new AdaptivePrefetch(10, 100);
    finish(p, 10, 0.1);
    p.claimed(10, 10, 5, 30_000);
    p.claimed(10, 10, 5, 30_000);
    expect(p.value).toBe(10);
  });

  it('halves when a claim comes back short', () => {
    const p = new AdaptivePrefetch(10, 100);
    for (let i = 0; i < 4; i++) {
      finish(p, 10, 0.1);
      p.claimed(10, 10, 5, 30_000);
    }
    expect(p.value).toBe(80);
    p.claimed(50, 3, 5, 30_000);
    expect(p.value).toBe(40);
    p.claimed(50, 0, 5, undefined);
    expect(p.value).toBe(20);
  });

  it('holds no more than the slots start within two round trips at the observed handler time', () => {
    const p = new AdaptivePrefetch(5, 1000);
    for (let i = 0; i < 10; i++) {
      finish(p, 5, 50); // 50 ms handlers, 10 ms round trips: 5 slots start 2 in 20 ms
      p.claimed(5, 5, 10, 30_000);
    }
    expect(p.value).toBe(2);
  });

  it('holds no more than the slots start in 50 ms, however slow the round trips', () => {
    const p = new AdaptivePrefetch(5, 1000);
    for (let i = 0; i < 10; i++) {
      finish(p, 5, 10);
      p.claimed(5, 5, 2000, 30_000); // 5 × 50 ms / 10 ms
    }
    expect(p.value).toBe(25);
  });

  it('never holds what would wait past half the lease', () => {
    const p = new AdaptivePrefetch(5, 1000);
    for (let i = 0; i < 10; i++) {
      finish(p, 5, 10);
      p.claimed(5, 5, 2000, 40); // a 40 ms lease: 5 × 20 ms / 10 ms
    }
    expect(p.value).toBe(10);
  });
});
