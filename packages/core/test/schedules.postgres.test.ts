import { describe, expect, it, onTestFinished } from 'vitest';
import { Engine, ManualClock, openPostgres, silentLogger } from '@taskflow/core';
import { describeScheduleConformance } from './conformance/schedules.suite.ts';
import { useTestDatabases } from './support/db.ts';
import { TEST_DATABASE_URL } from './support/env.ts';

describeScheduleConformance('postgres');

describe('schedules fired by several engines at once (postgres)', () => {
  const dbs = useTestDatabases('postgres');

  it('fire each (schedule, fire time) exactly once when every engine runs every pass', async () => {
    // Four engines on pools of their own, on one schema, sharing the clock: each pass, all of
    // them fire at once, contending for the same schedules.
    const first = await dbs.fresh({ poolSize: 2 });
    const others = await Promise.all(
      [1, 2, 3].map(() => openPostgres({ connectionString: TEST_DATABASE_URL, schema: first.schema, poolSize: 2, logger: silentLogger })),
    );
    onTestFinished(() => Promise.all(others.map((db) => db.close())).then(() => undefined));
    const clock = new ManualClock(new Date('2030-01-01T00:00:00Z'));
    const engines = [first, ...others].map((db) => new Engine({ db, clock }));
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      ids.push((await engines[0]!.createSchedule({ name: `s${i}`, cron: '* * * * * *', template: { type: 't', queue: 'race' } })).id);
    }
    const STEPS = 20;
    let created = 0;
    for (let step = 0; step < STEPS; step++) {
      // Every other step is late by a second and a half: two fires each, as after a stall.
      clock.advance(step % 2 === 0 ? 1000 : 1500);
      const passes = await Promise.all(engines.map((e) => e.fireDueSchedules()));
      created += passes.reduce((n, p) => n + p.created, 0);
    }
    const expected = Math.floor((clock.now().getTime() - Date.parse('2030-01-01T00:00:00Z')) / 1000);
    const { rows } = await first.query(
      `SELECT schedule_id, count(*)::integer AS fires, count(DISTINCT fire_time)::integer AS times FROM tasks
        WHERE schedule_id IS NOT NULL GROUP BY schedule_id ORDER BY schedule_id`,
    );
    expect(rows).toEqual(ids.map((id) => ({ schedule_id: id, fires: expected, times: expected })));
    expect(created).toBe(10 * expected);
    const fires = await first.query(`SELECT count(*)::integer AS n FROM schedule_fires WHERE outcome = 'created' AND task_id IS NOT NULL`);
    expect(fires.rows[0]!.n).toBe(10 * expected);
  });
});
