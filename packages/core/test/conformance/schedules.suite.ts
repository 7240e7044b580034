/**
 * The schedules conformance suite: creation and its refusals, firing exactly once (by the key
 * of schedule_fires, and after a transaction dies mid-fire), start and end, pause and resume,
 * the misfire and overlap policies, preview, daylight saving, run unchanged against each driver
 * (schedules.pglite.test.ts, schedules.postgres.test.ts). Time is a ManualClock: a test moves
 * it and runs the firing duty's pass (`fireDueSchedules`) itself.
 */
import { describe, expect, it } from 'vitest';
import { Cron } from 'croner';
import {
  AlreadyExistsError, Engine, InvalidInputError, ManualClock, NotFoundError, type Database, type DriverName, type Executor,
  type ScheduleInput,
} from '@taskflow/core';
import { useTestDatabases } from '../support/db.ts';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** A database whose transactions fail once, at the first statement named `name`: a node killed mid-fire. */
function dyingOnce(db: Database, name: string): Database {
  let armed = true;
  const tx = (inner: Executor): Executor => ({
    query: (sql, params) => {
      if (armed && typeof sql === 'object' && sql.name === name) {
        armed = false;
        return Promise.reject(new Error('the node died mid-fire'));
      }
      return inner.query(sql, params);
    },
    exec: (sql) => inner.exec(sql),
  });
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'transaction') return <T>(fn: (t: Executor) => Promise<T>) => target.transaction((inner) => fn(tx(inner)));
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

export function describeScheduleConformance(driver: DriverName): void {
  const dbs = useTestDatabases(driver);

  async function setup(start = T0, db?: Database) {
    db ??= await dbs.fresh();
    const clock = new ManualClock(start);
    const engine = new Engine({ db, clock });
    const create = (input: Partial<ScheduleInput> = {}) =>
      engine.createSchedule({ name: 'every-second', cron: '* * * * * *', template: { type: 'tick', queue: 'cron' }, ...input });
    /** Moves the clock by `ms` and runs one pass of the firing duty. */
    const at = async (ms: number) => {
      clock.advance(ms);
      return engine.fireDueSchedules();
    };
    /** The schedule's fires, oldest first, as [ISO fire time, outcome]. */
    const fires = async (id: string) =>
      (await engine.listScheduleFires(id, { limit: 500 })).reverse().map((f) => [f.fireTime.toISOString(), f.outcome]);
    const tasksOf = async (id: string) =>
      (await db.query(`SELECT id, fire_time, state FROM tasks WHERE schedule_id = $1 ORDER BY fire_time`, [id])).rows;
    return { db, clock, engine, create, at, fires, tasksOf };
  }

  const iso = (ms: number) => new Date(ms).toISOString();

  describe(`schedule conformance (${driver})`, () => {
    describe('create', () => {
      it('stores the schedule with its defaults and the first fire time after now', async () => {
        const { engine, create } = await setup(new Date(T0.getTime() + 400));
        const s = await create({ template: { type: 'tick', queue: 'cron', payload: { a: 1 }, priority: 3, tags: ['t'] } });
        expect(s).toMatchObject({
          name: 'every-second', cron: '* * * * * *', intervalMs: null, timezone: 'UTC', paused: false, startsAt: null, endsAt: null,
          misfirePolicy: 'skip', misfireGraceMs: 60_000, catchUpMax: 10, catchUpMaxAgeMs: null, overlapPolicy: 'allow',
          lastFireTime: null, lastTaskId: null, template: { type: 'tick', queue: 'cron', payload: { a: 1 }, priority: 3, tags: ['t'] },
        });
        expect(s.nextFireAt!.toISOString()).toBe('2030-01-01T00:00:01.000Z');
        expect(await engine.getSchedule(s.id)).toEqual(s);
        expect(await engine.getScheduleByName('every-second')).toEqual(s);
      });

      it('starts an interval one interval from now, or at its start', async () => {
        const { engine, create } = await setup();
        const a = await create({ name: 'a', cron: null, intervalMs: 90_000 });
        expect(a.nextFireAt!.getTime()).toBe(T0.getTime() + 90_000);
        const b = await create({ name: 'b', cron: null, intervalMs: 90_000, startsAt: new Date(T0.getTime() + HOUR) });
        expect(b.nextFireAt!.getTime()).toBe(T0.getTime() + HOUR);
        // A start in the past: the next point of its grid after now.
        const c = await create({ name: 'c', cron: null, intervalMs: 90_000, startsAt: new Date(T0.getTime() - 100_000) });
        expect(c.nextFireAt!.getTime()).toBe(T0.getTime() + 80_000);
        expect((await engine.listSchedules({ limit: 10 })).map((s) => s.name)).toEqual(['a', 'b', 'c']);
      });

      it('canonicalises the time zone', async () => {
        const { create } = await setup();
        expect((await create({ timezone: 'europe/berlin' })).timezone).toBe('Europe/Berlin');
      });

      it('refuses bad input naming the field, and stores nothing', async () => {
        const { engine, db, create } = await setup();
        const cases: [Partial<ScheduleInput>, string][] = [
          [{ cron: '61 * * * * *' }, 'cron'],
          [{ cron: 'every day' }, 'cron'],
          [{ cron: '0 0 0 30 2 *' }, 'cron'], // valid, but February has no 30th
          [{ cron: null }, 'cron'], // neither cron nor interval
          [{ intervalMs: 5000 }, 'cron'], // both
          [{ cron: null, intervalMs: 999 }, 'intervalMs'],
          [{ timezone: 'Mars/Olympus_Mons' }, 'timezone'],
          [{ startsAt: new Date(T0.getTime() + HOUR), endsAt: new Date(T0.getTime() + HOUR) }, 'endsAt'],
        ];
        for (const [input, field] of cases) {
          const err = await create(input).catch((e: unknown) => e);
          expect(err, JSON.stringify(input)).toBeInstanceOf(InvalidInputError);
          expect((err as InvalidInputError).field).toBe(field);
        }
        expect((await db.query('SELECT count(*)::integer AS n FROM schedules')).rows[0]!.n).toBe(0);
      });

      it('refuses a name that is taken', async () => {
        const { create } = await setup();
        await create();
        await expect(create()).rejects.toBeInstanceOf(AlreadyExistsError);
      });
    });

    describe('firing', () => {
      it('creates one task per fire time, carrying the schedule and the fire time, and records each fire', async () => {
        const { engine, create, at, fires, tasksOf } = await setup();
        const s = await create({ template: { type: 'tick', queue: 'cron', payload: { n: 1 }, priority: 2, maxAttempts: 7, tags: ['cron'] } });
        expect(await at(999)).toEqual({ schedules: 0, created: 0, failed: 0 });
        expect(await at(1)).toEqual({ schedules: 1, created: 1, failed: 0 });
        expect(await at(0)).toEqual({ schedules: 0, created: 0, failed: 0 }); // fired already
        await at(2500); // 00:03.5: the fires of :02 and :03, late but within the grace
        expect(await fires(s.id)).toEqual([
          ['2030-01-01T00:00:01.000Z', 'created'], ['2030-01-01T00:00:02.000Z', 'created'], ['2030-01-01T00:00:03.000Z', 'created'],
        ]);
        const tasks = await tasksOf(s.id);
        expect(tasks.map((t) => new Date(t.fire_time).toISOString())).toEqual([
          '2030-01-01T00:00:01.000Z', '2030-01-01T00:00:02.000Z', '2030-01-01T00:00:03.000Z',
        ]);
        const task = await engine.getTask(String(tasks[2]!.id));
        expect(task).toMatchObject({
          type: 'tick', queue: 'cron', payload: { n: 1 }, priority: 2, maxAttempts: 7, tags: ['cron'], state: 'queued', scheduleId: s.id,
        });
        expect(task.fireTime!.toISOString()).toBe('2030-01-01T00:00:03.000Z');
        const after = await engine.getSchedule(s.id);
        expect(after.nextFireAt!.toISOString()).toBe('2030-01-01T00:00:04.000Z');
        expect(after.lastFireTime!.toISOString()).toBe('2030-01-01T00:00:03.000Z');
        expect(after.lastTaskId).toBe(task.id);
        const listed = await engine.listScheduleFires(s.id, { limit: 2 });
        expect(listed.map((f) => f.taskId)).toEqual([task.id, String(tasks[1]!.id)]);
        const older = await engine.listScheduleFires(s.id, { limit: 2, before: listed[1]!.fireTime });
        expect(older.map((f) => f.fireTime.toISOString())).toEqual(['2030-01-01T00:00:01.000Z']);
      });

      it('fires a fire time once even when next_fire_at points at it again (the key decides, not the lock)', async () => {
        // Fabricated boundary: the fire of :01 is recorded, yet the schedule says it is next, as
        // a node that read the schedule before another committed its fire would see it.
        const { db, create, at, tasksOf, fires } = await setup();
        const s = await create();
        await at(SECOND);
        await db.query(`UPDATE schedules SET next_fire_at = $2 WHERE id = $1`, [s.id, new Date(T0.getTime() + SECOND)]);
        expect(await at(0)).toMatchObject({ created: 0 });
        expect(await tasksOf(s.id)).toHaveLength(1);
        expect(await fires(s.id)).toEqual([['2030-01-01T00:00:01.000Z', 'created']]);
      });

      it('loses and doubles nothing when a transaction dies mid-fire: all of it rolls back, the next pass fires it', async () => {
        const first = await setup();
        const s = await first.create();
        const dying = await setup(T0, dyingOnce(first.db, 'tf_schedule_fire_link'));
        dying.clock.set(new Date(T0.getTime() + SECOND));
        // The task was inserted and the fire recorded when it died: both must be gone.
        expect(await dying.engine.fireDueSchedules()).toEqual({ schedules: 0, created: 0, failed: 1 });
        expect(await first.tasksOf(s.id)).toHaveLength(0);
        expect(await first.fires(s.id)).toEqual([]);
        expect((await first.engine.getSchedule(s.id)).nextFireAt!.toISOString()).toBe('2030-01-01T00:00:01.000Z');
        expect(await dying.engine.fireDueSchedules()).toEqual({ schedules: 1, created: 1, failed: 0 });
        expect(await first.fires(s.id)).toEqual([['2030-01-01T00:00:01.000Z', 'created']]);
        expect(await first.tasksOf(s.id)).toHaveLength(1);
      });

      it('records a fire whose template the database refuses as refused, with the reason, and moves on', async () => {
        const { db, engine, create, at, tasksOf } = await setup();
        const a = await create({ name: 'a' });
        const b = await create({ name: 'b' });
        // A template the database refuses (made up past the engine's checks).
        await db.query(`UPDATE schedules SET template = '{"type": "t", "timeoutMs": -1}' WHERE id = $1`, [a.id]);
        expect(await at(SECOND)).toEqual({ schedules: 2, created: 1, failed: 0 });
        const [fire] = await engine.listScheduleFires(a.id, { limit: 10 });
        expect(fire).toMatchObject({ fireTime: new Date(T0.getTime() + SECOND), outcome: 'refused', taskId: null });
        expect(fire!.reason).toMatch(/^invalid_input: /);
        expect(await tasksOf(a.id)).toHaveLength(0);
        expect(await tasksOf(b.id)).toHaveLength(1);
        // Not tried again: the next pass at the same time has nothing due.
        expect(await at(0)).toEqual({ schedules: 0, created: 0, failed: 0 });
        expect((await engine.getSchedule(a.id)).nextFireAt!.toISOString()).toBe('2030-01-01T00:00:02.000Z');
      });

      it('records a fire whose payload is over the engine\'s limit as refused: a template stored under a higher one', async () => {
        const { db, clock, create, tasksOf } = await setup();
        const big = await create({ name: 'big', template: { type: 'tick', queue: 'cron', payload: { text: 'é'.repeat(60) } } });
        const bytes = await create({ name: 'bytes', template: { type: 'tick', queue: 'cron', payloadBase64: 'A'.repeat(200) } });
        const small = await create({ name: 'small', template: { type: 'tick', queue: 'cron', payload: { text: 'é'.repeat(40) } } });
        // Another node, with the limit lowered to 100 bytes, fires them.
        const lowered = new Engine({ db, clock, options: { maxPayloadBytes: 100 } });
        clock.advance(SECOND);
        expect(await lowered.fireDueSchedules()).toEqual({ schedules: 3, created: 1, failed: 0 });
        const [fire] = await lowered.listScheduleFires(big.id, { limit: 10 });
        expect(fire).toMatchObject({ outcome: 'refused', taskId: null, reason: 'invalid_input: is 131 bytes, over the limit of 100 bytes' });
        expect((await lowered.listScheduleFires(bytes.id, { limit: 10 }))[0]).toMatchObject({ outcome: 'refused', reason: 'invalid_input: is 150 bytes, over the limit of 100 bytes' });
        expect(await tasksOf(big.id)).toHaveLength(0);
        expect(await tasksOf(small.id)).toHaveLength(1);
      });

      it('records a fire its full queue refuses as refused (queue_full), and fires again once there is room', async () => {
        const { db, engine, create, at, fires, tasksOf } = await setup();
        await engine.updateQueueSettings('cron', { maxDepth: 1 });
        await engine.enqueue([{ type: 'filler', queue: 'cron' }]);
        const s = await create();
        expect(await at(SECOND)).toEqual({ schedules: 1, created: 0, failed: 0 });
        const [fire] = await engine.listScheduleFires(s.id, { limit: 10 });
        expect(fire!.reason).toMatch(/^queue_full: /);
        await db.query(`DELETE FROM tasks WHERE type = 'filler'`);
        expect(await at(SECOND)).toEqual({ schedules: 1, created: 1, failed: 0 });
        expect(await fires(s.id)).toEqual([['2030-01-01T00:00:01.000Z', 'refused'], ['2030-01-01T00:00:02.000Z', 'created']]);
        expect(await tasksOf(s.id)).toHaveLength(1);
        expect(await at(SECOND)).toMatchObject({ created: 0 }); // full again, with the fire's own task
        expect((await fires(s.id)).map(([, outcome]) => outcome)).toEqual(['refused', 'created', 'refused']);
      });

      it('keeps the last task under overlap replace when the new one is refused', async () => {
        const { db, create, at, fires, tasksOf } = await setup();
        const s = await create({ overlapPolicy: 'replace' });
        expect(await at(SECOND)).toMatchObject({ created: 1 });
        await db.query(`UPDATE schedules SET template = '{"type": "t", "timeoutMs": -1}' WHERE id = $1`, [s.id]);
        expect(await at(SECOND)).toMatchObject({ created: 0, failed: 0 });
        expect((await tasksOf(s.id)).map((t) => t.state)).toEqual(['queued']);
        expect(await fires(s.id)).toEqual([['2030-01-01T00:00:01.000Z', 'created'], ['2030-01-01T00:00:02.000Z', 'refused']]);
      });

      it('fires an interval schedule on its grid', async () => {
        const { create, at, fires } = await setup();
        const s = await create({ cron: null, intervalMs: 90_000, startsAt: new Date(T0.getTime() + 10_000) });
        await at(10_000);
        await at(90_000);
        await at(89_999);
        await at(1);
        expect(await fires(s.id)).toEqual([
          ['2030-01-01T00:00:10.000Z', 'created'], ['2030-01-01T00:01:40.000Z', 'created'], ['2030-01-01T00:03:10.000Z', 'created'],
        ]);
      });

      it('fires nothing before its start nor at or after its end, and then has no next fire', async () => {
        const { engine, create, at, fires } = await setup();
        const s = await create({ startsAt: new Date(T0.getTime() + 3 * SECOND), endsAt: new Date(T0.getTime() + 5 * SECOND) });
        expect(s.nextFireAt!.toISOString()).toBe('2030-01-01T00:00:03.000Z');
        for (let i = 0; i < 8; i++) await at(SECOND);
        expect(await fires(s.id)).toEqual([['2030-01-01T00:00:03.000Z', 'created'], ['2030-01-01T00:00:04.000Z', 'created']]);
        expect((await engine.getSchedule(s.id)).nextFireAt).toBeNull();
        expect(await engine.nextScheduleDueInMs()).toBeNull();
      });

      it('tells how long until the soonest active schedule fires', async () => {
        const { engine, clock, create } = await setup();
        expect(await engine.nextScheduleDueInMs()).toBeNull();
        await create({ cron: '0 * * * * *' });
        clock.advance(15_000);
        expect(await engine.nextScheduleDueInMs()).toBe(45_000);
      });
    });

    describe('pause and resume', () => {
      it('fires nothing while paused; on resume within the grace, the fires missed meanwhile run', async () => {
        const { engine, create, at, fires } = await setup();
        const s = await create();
        await engine.setSchedulePaused(s.id, true);
        expect((await engine.getSchedule(s.id)).paused).toBe(true);
        expect(await at(3 * SECOND)).toMatchObject({ created: 0 });
        await engine.setSchedulePaused(s.id, false);
        expect(await at(0)).toMatchObject({ created: 3 });
        expect((await fires(s.id)).map(([, o]) => o)).toEqual(['created', 'created', 'created']);
      });

      it('applies the misfire policy to fires missed longer than the grace while paused', async () => {
        const { engine, create, at, fires } = await setup();
        const s = await create({ cron: '0 * * * * *' });
        await engine.setSchedulePaused(s.id, true);
        await at(10 * MINUTE);
        await engine.setSchedulePaused(s.id, false);
        await at(0);
        // Resumed at 00:10:00: the fires of 00:01 .. 00:08 are more than 60 s late (missed), those
        // of 00:09 (at the grace's edge) and 00:10 are on time.
        expect(await fires(s.id)).toEqual([
          ['2030-01-01T00:01:00.000Z', 'skipped_misfire'], ['2030-01-01T00:09:00.000Z', 'created'], ['2030-01-01T00:10:00.000Z', 'created'],
        ]);
        const [skipped] = await engine.listScheduleFires(s.id, { limit: 1, before: new Date(T0.getTime() + 9 * MINUTE) });
        expect(skipped!.skippedThrough!.toISOString()).toBe('2030-01-01T00:08:00.000Z');
        expect(skipped!.taskId).toBeNull();
      });
    });

    describe('misfire policy', () => {
      // Every node down from 00:00:30 to 00:10:30; fires each minute; grace 60 s, so the fires
      // of 00:01 .. 00:09 are missed and the one of 00:10 is on time.
      async function outage(input: Partial<ScheduleInput>) {
        const t = await setup();
        const s = await t.create({ cron: '0 * * * * *', ...input });
        await t.at(10 * MINUTE + 30 * SECOND);
        return { ...t, s, log: await t.fires(s.id) };
      }
      const m = (minute: number) => `2030-01-01T00:${String(minute).padStart(2, '0')}:00.000Z`;

      it('skip (the default) records the missed fires as one and fires the on-time one', async () => {
        const { log } = await outage({});
        expect(log).toEqual([[m(1), 'skipped_misfire'], [m(10), 'created']]);
      });

      it('once fires the latest missed one as well', async () => {
        const { log } = await outage({ misfirePolicy: 'once' });
        expect(log).toEqual([[m(1), 'skipped_misfire'], [m(9), 'created'], [m(10), 'created']]);
      });

      it('catch_up fires the latest missed ones, at most catchUpMax of them', async () => {
        const { log } = await outage({ misfirePolicy: 'catch_up', catchUpMax: 3 });
        expect(log).toEqual([[m(1), 'skipped_misfire'], [m(7), 'created'], [m(8), 'created'], [m(9), 'created'], [m(10), 'created']]);
      });

      it('catch_up fires no missed one older than catchUpMaxAgeMs', async () => {
        const { log } = await outage({ misfirePolicy: 'catch_up', catchUpMax: 100, catchUpMaxAgeMs: 4 * MINUTE });
        // now 00:10:30; the oldest allowed is 00:06:30.
        expect(log).toEqual([[m(1), 'skipped_misfire'], [m(7), 'created'], [m(8), 'created'], [m(9), 'created'], [m(10), 'created']]);
      });

      it('catch_up fires every missed one within its limits, recording no skip', async () => {
        const { log, engine, s } = await outage({ misfirePolicy: 'catch_up', catchUpMax: 100 });
        expect(log).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => [m(n), 'created']));
        expect((await engine.getSchedule(s.id)).nextFireAt!.toISOString()).toBe(m(11));
      });

      it('a late fire within the grace is on time whatever the policy', async () => {
        const { create, at, fires } = await setup();
        const s = await create({ cron: '0 * * * * *', misfireGraceMs: 5000 });
        await at(MINUTE + 5000); // 00:01:05: the fire of 00:01 is 5 s late, on time
        await at(MINUTE + 1); // 00:02:05.001: the fire of 00:02 is a millisecond past the grace
        expect(await fires(s.id)).toEqual([[m(1), 'created'], [m(2), 'skipped_misfire']]);
      });
    });

    describe('overlap policy', () => {
      async function twoFires(overlapPolicy: 'allow' | 'skip' | 'replace', finishFirst = false) {
        const t = await setup();
        const s = await t.create({ overlapPolicy });
        await t.at(SECOND);
        const [first] = await t.tasksOf(s.id);
        if (finishFirst) await t.engine.cancelTask(String(first!.id));
        await t.at(SECOND);
        return { ...t, s, first: String(first!.id), log: await t.fires(s.id), tasks: await t.tasksOf(s.id) };
      }

      it('allow creates the next task while the last one is unfinished', async () => {
        const { log, tasks } = await twoFires('allow');
        expect(log.map(([, o]) => o)).toEqual(['created', 'created']);
        expect(tasks.map((t) => t.state)).toEqual(['queued', 'queued']);
      });

      it('skip records the fire and creates nothing while the last task is unfinished', async () => {
        const { log, tasks, engine, s, first, at } = await twoFires('skip');
        expect(log.map(([, o]) => o)).toEqual(['created', 'skipped_overlap']);
        expect(tasks).toHaveLength(1);
        expect((await engine.getSchedule(s.id)).lastTaskId).toBe(first);
        // Once it finished, the next fire creates a task again.
        const worker = await engine.registerWorker({ name: 'w', queues: [{ name: 'cron', weight: 1 }], concurrency: 1 });
        const [claimed] = await engine.claim(worker.id, [{ name: 'cron', weight: 1 }], 1);
        await engine.settle(worker.id, [{ id: claimed!.id, attempt: claimed!.attempt, status: 'succeeded' }]);
        await at(SECOND);
        expect((await engine.listScheduleFires(s.id, { limit: 1 }))[0]!.outcome).toBe('created');
      });

      it('skip creates the task when the last one has finished', async () => {
        const { log } = await twoFires('skip', true);
        expect(log.map(([, o]) => o)).toEqual(['created', 'created']);
      });

      it('replace cancels the unfinished task and creates the new one', async () => {
        const { log, tasks } = await twoFires('replace');
        expect(log.map(([, o]) => o)).toEqual(['created', 'replaced']);
        expect(tasks.map((t) => t.state)).toEqual(['cancelled', 'queued']);
      });

      it('replace asks a running task to stop', async () => {
        const { engine, create, at, tasksOf } = await setup();
        const s = await create({ overlapPolicy: 'replace' });
        await at(SECOND);
        const worker = await engine.registerWorker({ name: 'w', queues: [{ name: 'cron', weight: 1 }], concurrency: 1 });
        const [running] = await engine.claim(worker.id, [{ name: 'cron', weight: 1 }], 1);
        await at(SECOND);
        expect(await engine.getTask(running!.id)).toMatchObject({ state: 'running', cancelRequested: true });
        expect((await tasksOf(s.id)).map((t) => t.state)).toEqual(['running', 'queued']);
      });
    });

    describe('update and delete', () => {
      it('a change of timing restarts from now; another change keeps the next fire and the misses', async () => {
        const { engine, clock, create } = await setup();
        const s = await create({ cron: '0 0 * * * *' });
        clock.advance(2 * HOUR + 30 * MINUTE); // 00:00 .. 02:00 missed, nothing ran
        const kept = await engine.updateSchedule(s.id, { overlapPolicy: 'skip', template: { type: 'other' } });
        expect(kept.nextFireAt!.toISOString()).toBe('2030-01-01T01:00:00.000Z');
        expect(kept).toMatchObject({ overlapPolicy: 'skip', template: { type: 'other' }, cron: '0 0 * * * *' });
        const retimed = await engine.updateSchedule(s.id, { cron: '0 45 * * * *' });
        expect(retimed.nextFireAt!.toISOString()).toBe('2030-01-01T02:45:00.000Z');
        const toInterval = await engine.updateSchedule(s.id, { intervalMs: 60_000 });
        expect(toInterval).toMatchObject({ cron: null, intervalMs: 60_000 });
        expect(toInterval.nextFireAt!.toISOString()).toBe('2030-01-01T02:31:00.000Z');
        expect(toInterval.updatedAt.toISOString()).toBe('2030-01-01T02:30:00.000Z');
      });

      it('refuses a bad change naming the field, a taken name, an unknown schedule; changes nothing', async () => {
        const { engine, create } = await setup();
        const s = await create();
        await create({ name: 'other' });
        await expect(engine.updateSchedule(s.id, { timezone: 'Nowhere/Land' })).rejects.toMatchObject({ field: 'timezone' });
        await expect(engine.updateSchedule(s.id, { cron: 'nope' })).rejects.toMatchObject({ field: 'cron' });
        await expect(engine.updateSchedule(s.id, { name: 'other' })).rejects.toBeInstanceOf(AlreadyExistsError);
        await expect(engine.updateSchedule('999', { paused: true })).rejects.toBeInstanceOf(NotFoundError);
        expect(await engine.getSchedule(s.id)).toEqual(s);
      });

      it('delete removes the schedule and its fire records, not its tasks', async () => {
        const { engine, db, create, at, tasksOf } = await setup();
        const s = await create();
        await at(SECOND);
        await engine.deleteSchedule(s.id);
        await expect(engine.getSchedule(s.id)).rejects.toBeInstanceOf(NotFoundError);
        await expect(engine.deleteSchedule(s.id)).rejects.toBeInstanceOf(NotFoundError);
        expect((await db.query('SELECT count(*)::integer AS n FROM schedule_fires')).rows[0]!.n).toBe(0);
        expect(await tasksOf(s.id)).toHaveLength(1);
      });
    });

    describe('preview', () => {
      it('lists the next fire times after the database clock, within start and end', async () => {
        const { engine, clock, create } = await setup();
        const s = await create({ cron: '0 */15 * * * *', endsAt: new Date(T0.getTime() + HOUR) });
        clock.advance(20 * MINUTE);
        const p = await engine.previewSchedule(s.id, 5);
        expect(p.now.toISOString()).toBe('2030-01-01T00:20:00.000Z');
        expect(p.fireTimes.map((d) => d.toISOString())).toEqual([
          '2030-01-01T00:30:00.000Z', '2030-01-01T00:45:00.000Z',
        ]);
        const i = await create({ name: 'i', cron: null, intervalMs: 7 * MINUTE });
        expect((await engine.previewSchedule(i.id, 2)).fireTimes.map((d) => d.toISOString())).toEqual([
          '2030-01-01T00:27:00.000Z', '2030-01-01T00:34:00.000Z',
        ]);
      });

      it('shows what croner promises for a fixed-time expression in a time zone', async () => {
        const { engine, create } = await setup(new Date('2030-03-20T00:00:00Z'));
        const s = await create({ cron: '0 30 2 * * *', timezone: 'Europe/Berlin' });
        const p = await engine.previewSchedule(s.id, 20);
        const croner = new Cron('0 30 2 * * *', { timezone: 'Europe/Berlin', paused: true }).nextRuns(20, new Date('2030-03-20T00:00:00Z'));
        expect(p.fireTimes.map((d) => d.toISOString())).toEqual(croner.map((d) => d.toISOString()));
      });
    });

    describe('daylight saving (Europe/Berlin)', () => {
      // 2030-03-31 02:00 CET -> 03:00 CEST (01:00Z); 2030-10-27 03:00 CEST -> 02:00 CET (01:00Z).
      /** Runs the duty every `stepMs` from `from` to `to` (grace wide enough that every fire is on time). */
      async function run(cron: string, from: string, to: string, stepMs: number) {
        const t = await setup(new Date(from));
        const s = await t.create({ cron, timezone: 'Europe/Berlin', misfireGraceMs: 2 * HOUR });
        while (t.clock.now().getTime() < Date.parse(to)) await t.at(stepMs);
        const fired = (await t.fires(s.id)).map(([f, o]) => {
          expect(o).toBe('created');
          return f;
        });
        expect(await t.tasksOf(s.id)).toHaveLength(fired.length);
        return fired;
      }
      const croner = (cron: string, from: string, to: string) =>
        new Cron(cron, { timezone: 'Europe/Berlin', paused: true }).nextRuns(100, new Date(from))
          .filter((d) => d.getTime() <= Date.parse(to)).map((d) => d.toISOString());

      it('spring forward: a fixed time in the gap fires once, at the end of the gap, as croner promises', async () => {
        const fired = await run('0 30 2 * * *', '2030-03-29T12:00:00Z', '2030-04-01T12:00:00Z', HOUR);
        expect(fired).toEqual(['2030-03-30T01:30:00.000Z', '2030-03-31T01:00:00.000Z', '2030-04-01T00:30:00.000Z']);
        expect(fired).toEqual(croner('0 30 2 * * *', '2030-03-29T12:00:00Z', '2030-04-01T12:00:00Z'));
      });

      it('fall back: a fixed time in the repeated hour fires once, at its first occurrence, as croner promises', async () => {
        const fired = await run('0 30 2 * * *', '2030-10-25T12:00:00Z', '2030-10-28T12:00:00Z', HOUR);
        expect(fired).toEqual(['2030-10-26T00:30:00.000Z', '2030-10-27T00:30:00.000Z', '2030-10-28T01:30:00.000Z']);
        expect(fired).toEqual(croner('0 30 2 * * *', '2030-10-25T12:00:00Z', '2030-10-28T12:00:00Z'));
      });

      it('spring forward: every gap time of a repeating expression fires once, at the end of the gap', async () => {
        // `0 30 * * * *`: 02:30 does not exist. Croner skips it; Taskflow fires it at 03:00 CEST.
        const fired = await run('0 30 * * * *', '2030-03-30T23:00:00Z', '2030-03-31T03:00:00Z', 10 * MINUTE);
        expect(fired).toEqual([
          '2030-03-30T23:30:00.000Z', '2030-03-31T00:30:00.000Z', '2030-03-31T01:00:00.000Z', '2030-03-31T01:30:00.000Z', '2030-03-31T02:30:00.000Z',
        ]);
      });

      it('fall back: a repeating expression fires the repeated hour once, at its first occurrence', async () => {
        // `0 */30 * * * *`: croner fires 02:00 and 02:30 twice (CEST, then CET); Taskflow once.
        const fired = await run('0 */30 * * * *', '2030-10-26T23:45:00Z', '2030-10-27T02:45:00Z', 10 * MINUTE);
        expect(fired).toEqual([
          '2030-10-27T00:00:00.000Z', '2030-10-27T00:30:00.000Z', '2030-10-27T02:00:00.000Z', '2030-10-27T02:30:00.000Z',
        ]);
        expect(croner('0 */30 * * * *', '2030-10-26T23:45:00Z', '2030-10-27T02:45:00Z')).toHaveLength(6);
      });
    });
  });
}
