/**
 * Conformance of a task's life around its attempts, on each driver: its place in line when a
 * worker hands it back (lost, deregistered, released), unique keys, and expiry. Time is a
 * ManualClock.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Engine, ManualClock, type Database, type DriverName, type EngineOptions } from '@taskflow/core';
import { testDatabases } from '../support/db.ts';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const Q = [{ name: 'q', weight: 1 }];

export function describeLifetimeConformance(driver: DriverName): void {
  const dbs = testDatabases(driver);
  afterEach(() => dbs.closeOpened());
  afterAll(() => dbs.closeAll());

  async function setup(options: Partial<EngineOptions> = {}) {
    const db = await dbs.fresh();
    const clock = new ManualClock(T0);
    const engine = new Engine({ db, clock, options: { defaultBackoff: { type: 'fixed', delayMs: 1000 }, ...options } });
    const worker = async (name = 'w') => (await engine.registerWorker({ name, queues: Q, concurrency: 10 })).id;
    return { db, clock, engine, worker };
  }

  /**
   * `n` queued tasks of queue q, one millisecond apart in run time from an hour ago, written by
   * one INSERT (the engine's enqueue of 10,000 tasks takes PGlite many seconds); their ids in
   * claim order.
   */
  async function backlog(db: Database, n: number) {
    await db.query(`INSERT INTO queues (name) VALUES ('q') ON CONFLICT DO NOTHING`);
    const { rows } = await db.query(
      `INSERT INTO tasks (queue, type, state, run_at, max_attempts, backoff, timeout_ms, created_at)
       SELECT 'q', 't', 'queued', $1::timestamptz + g * interval '1 millisecond', 5, '{"type":"fixed","delayMs":1000}', 30000, $1
         FROM generate_series(0, $2::integer - 1) g ORDER BY g
       RETURNING id::text AS id`,
      [new Date(T0.getTime() - 3_600_000), n],
    );
    return rows.map((r) => r.id as string);
  }

  describe(`lifetime conformance (${driver})`, () => {
    describe('place in line', () => {
      it('a lost worker\'s tasks at the head of a 10,000-task backlog run again before the rest', async () => {
        const { db, clock, engine, worker } = await setup();
        const ids = await backlog(db, 10_000);
        const dying = await worker('dying');
        const held = await engine.claim(dying, Q, 20);
        expect(held.map((t) => t.id)).toEqual(ids.slice(0, 20));
        // More tasks arrive after the claim: they are behind the whole backlog.
        await engine.enqueue([{ type: 'late', queue: 'q' }]);
        clock.advance(15_000); // the dying worker's heartbeat deadline passes
        expect(await engine.reapLostWorkers()).toEqual({ workers: 1, tasks: 20 });
        const next = await engine.claim(await worker('next'), Q, 25);
        expect(next.map((t) => t.id)).toEqual(ids.slice(0, 25));
        expect(next.slice(0, 20).every((t) => t.attempt === 2)).toBe(true);
        const again = await engine.getTask(ids[0]!);
        expect(again.runAt.getTime()).toBe(T0.getTime() - 3_600_000);
      }, 120_000);

      it('keeps the priority and run time of tasks handed back by deregistration and release', async () => {
        const { engine, worker } = await setup();
        const [low, high, later] = await engine.enqueue([
          { type: 'low', queue: 'q', runAt: new Date(T0.getTime() - 2000) },
          { type: 'high', queue: 'q', priority: 5, runAt: new Date(T0.getTime() - 1000) },
          { type: 'later', queue: 'q', runAt: new Date(T0.getTime() - 500) },
        ]);
        const leaving = await worker('leaving');
        const held = await engine.claim(leaving, Q, 2);
        expect(held.map((t) => t.type)).toEqual(['high', 'low']);
        await engine.deregisterWorker(leaving);
        expect(await engine.getTask(high!.task.id)).toMatchObject({ state: 'queued', priority: 5, runAt: new Date(T0.getTime() - 1000) });
        const w = await worker();
        const [first, second] = await engine.claim(w, Q, 2);
        expect([first!.type, second!.type]).toEqual(['high', 'low']);
        expect(await engine.releaseClaimed(w, [first!, second!])).toBe(2);
        expect(await engine.getTask(low!.task.id)).toMatchObject({ state: 'queued', runAt: new Date(T0.getTime() - 2000) });
        expect((await engine.claim(w, Q, 3)).map((t) => t.type)).toEqual(['high', 'low', 'later']);
        expect(later!.created).toBe(true);
      });

      it('still waits out the backoff after an expired lease, and goes behind after a failure', async () => {
        const { clock, engine, worker } = await setup();
        const [a, b] = await engine.enqueue([
          { type: 'a', queue: 'q', runAt: new Date(T0.getTime() - 2000), timeoutMs: 1000 },
          { type: 'b', queue: 'q', runAt: new Date(T0.getTime() - 1000) },
        ]);
        const w = await worker();
        const [ca] = await engine.claim(w, Q, 1);
        clock.advance(1000);
        expect(await engine.rescueExpired()).toBe(1);
        // The backoff (fixed 1 s) still applies: retrying until then, not back at the head.
        expect(await engine.getTask(a!.task.id)).toMatchObject({ state: 'retrying', runAt: new Date(T0.getTime() + 2000) });
        expect(ca!.attempt).toBe(1);
        const { engine: e2, worker: w2 } = await setup({ defaultBackoff: { type: 'fixed', delayMs: 0 } });
        const [x, y] = await e2.enqueue([
          { type: 'x', queue: 'q', runAt: new Date(T0.getTime() - 2000) },
          { type: 'y', queue: 'q', runAt: new Date(T0.getTime() - 1000) },
        ]);
        const v = await w2();
        const [cx] = await e2.claim(v, Q, 1);
        expect(await e2.settle(v, [{ id: cx!.id, attempt: 1, status: 'failed', error: { message: 'no' } }])).toEqual(['accepted']);
        // A failure with no delay is requeued due now: behind y, which was waiting.
        expect((await e2.claim(v, Q, 2)).map((t) => t.id)).toEqual([y!.task.id, x!.task.id]);
        expect(b!.created).toBe(true);
      });
    });
  });
}
