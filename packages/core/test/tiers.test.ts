/**
 * Which rollup rows answer a window (analytics/tiers.ts), without a database: the ranges
 * cover the window exactly, in order, none finer than its resolution, and as few rows as
 * docs/analytics.md says, at every alignment of the window.
 */
import { describe, expect, it } from 'vitest';
import { coverWindow, summaryWindow, TIERS, type RowRange } from '@taskflow/core';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const ms = (r: RowRange) => TIERS.find((t) => t.resolution === r.resolution)!.ms;
const rows = (ranges: RowRange[]) => ranges.reduce((n, r) => n + (r.to.getTime() - r.from.getTime()) / ms(r), 0);

function expectExactCover(ranges: RowRange[], from: number, to: number): void {
  let at = from;
  for (const r of ranges) {
    expect(r.from.getTime()).toBe(at);
    expect(r.from.getTime() % ms(r)).toBe(0);
    expect(r.to.getTime() % ms(r)).toBe(0);
    expect(r.to.getTime()).toBeGreaterThan(r.from.getTime());
    at = r.to.getTime();
  }
  expect(at).toBe(to);
}

describe('the rows of a window', () => {
  it.each([
    ['24h', HOUR, 9],
    ['48h', HOUR, 10],
    ['6h', MINUTE, 65],
    ['7d', 24 * HOUR, 7],
  ] as const)('covers a %s window (steps of %i ms) exactly, in at most %i rows, at every alignment', (window, step, most) => {
    let worst = 0;
    for (let until = T0; until < T0 + 2 * 24 * HOUR; until += step) {
      const w = summaryWindow(window, new Date(until));
      const ranges = coverWindow(w.resolution, w.from, w.to);
      expectExactCover(ranges, w.from.getTime(), w.to.getTime());
      expect(ranges.every((r) => ms(r) >= TIERS.find((t) => t.resolution === w.resolution)!.ms)).toBe(true);
      worst = Math.max(worst, rows(ranges));
    }
    expect(worst).toBe(most);
  });

  it('reads hour rows where no coarser row fits', () => {
    expect(coverWindow('hour', new Date(T0 + HOUR), new Date(T0 + 4 * HOUR))).toEqual([
      { resolution: 'hour', from: new Date(T0 + HOUR), to: new Date(T0 + 4 * HOUR) },
    ]);
    expect(coverWindow('minute', new Date(T0 + 5 * HOUR + 50 * MINUTE), new Date(T0 + 13 * HOUR + 10 * MINUTE))).toEqual([
      { resolution: 'minute', from: new Date(T0 + 5 * HOUR + 50 * MINUTE), to: new Date(T0 + 6 * HOUR) },
      { resolution: '6h', from: new Date(T0 + 6 * HOUR), to: new Date(T0 + 12 * HOUR) },
      { resolution: 'hour', from: new Date(T0 + 12 * HOUR), to: new Date(T0 + 13 * HOUR) },
      { resolution: 'minute', from: new Date(T0 + 13 * HOUR), to: new Date(T0 + 13 * HOUR + 10 * MINUTE) },
    ]);
  });
});
