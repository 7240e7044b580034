/**
 * Fire times without a database: the schedules' daylight-saving rule against croner's own
 * schedule for fixed-time expressions (which croner fires by the same rule), in zones whose
 * clocks move by an hour or by half an hour, north and south; and the consistency of the two
 * searches the firing duty relies on.
 */
import { describe, expect, it } from 'vitest';
import { Cron } from 'croner';
import { FireTimes } from '../src/engine/fireTimes.ts';
import { wallClock } from '../src/engine/zonedTime.ts';

const spec = (cron: string, timezone: string) => ({ cron, intervalMs: null, timezone, startsAt: null, endsAt: null });
const FROM = Date.parse('2030-01-01T00:00:00Z');

describe('fire times', () => {
  for (const timezone of ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'America/Santiago']) {
    for (const cron of ['0 30 2 * * *', '0 0 1 * * *', '15 2 * * 0', '0 59 1 * * *']) {
      it(`fire a fixed time as croner does over a year (${cron}, ${timezone})`, () => {
        const ours = new FireTimes(spec(cron, timezone)).upcoming(FROM, 370).map((t) => new Date(t).toISOString());
        const croner = new Cron(cron, { timezone, paused: true }).nextRuns(370, new Date(FROM - 1)).map((d) => d.toISOString());
        expect(ours).toEqual(croner);
      });
    }
  }

  it('find, around any instant, the last fire before it and the first at or after it, with none between', () => {
    for (const [cron, timezone] of [['0 */20 * * * *', 'Europe/Berlin'], ['*/7 * * * * *', 'Australia/Lord_Howe'], ['0 30 * * * *', 'America/New_York']] as const) {
      const times = new FireTimes(spec(cron, timezone));
      const check = (t: number) => {
        const before = times.lastBefore(t)!;
        const after = times.firstAtOrAfter(t)!;
        expect(before).toBeLessThan(t);
        expect(after).toBeGreaterThanOrEqual(t);
        expect(times.firstAtOrAfter(before + 1)).toBe(after);
      };
      // Through a year in steps of about five hours, and densely across each of the zone's
      // changes of offset (found between two steps), where the clocks jump or repeat.
      const step = 5 * 3_600_000 + 7_919;
      for (let t = FROM; t < FROM + 366 * 86_400_000; t += step) {
        check(t);
        if (wallClock(timezone, t) - t !== wallClock(timezone, t + step) - (t + step)) {
          for (let u = t; u < t + step; u += 97_003) check(u);
        }
      }
    }
  });

  it('fire an interval on its grid from the anchor, within start and end', () => {
    const times = new FireTimes({ cron: null, intervalMs: 60_000, timezone: 'UTC', startsAt: new Date(FROM), endsAt: new Date(FROM + 180_000) });
    expect(times.upcoming(FROM - 5_000_000, 10).map((t) => t - FROM)).toEqual([0, 60_000, 120_000]);
    expect(times.lastBefore(FROM + 60_001)! - FROM).toBe(60_000);
    expect(times.lastBefore(FROM)).toBeNull();
  });
});
