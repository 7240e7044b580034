/**
 * Conformance of a task's life around its attempts, on each driver: its place in line when a
 * worker hands it back (lost, deregistered, released), unique keys, and expiry. Time is a
 * ManualClock.
 */
import { describe, expect, it } from 'vitest';
import { Engine, ManualClock, type Database, type DriverName, type EngineOptions } from '@taskflow/core';
import { useTestDatabases } from '../support/db.ts';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const Q = [{ name: 'q', weight: 1 }];

export function describeLifetimeConformance(driver: DriverName): void {
  const dbs = useTestDatabases(driver);

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
      }, 180_000);

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
    describe('unique tasks', () => {
      it('returns the first task for a duplicate inside the window, and makes a new one after it', async () => {
        const { clock, engine } = await setup();
        const [first] = await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'k', uniqueForMs: 1000 }]);
        expect(first).toMatchObject({ created: true, task: { uniqueKey: 'k', state: 'queued' } });
        expect(first!.deduplicated).toBeUndefined();
        clock.advance(999);
        const [dup] = await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'k', uniqueForMs: 1000, payload: 'other' }]);
        expect(dup).toMatchObject({ created: false, deduplicated: 'unique', task: { id: first!.task.id, payload: null } });
        // Another queue is another key space.
        const [elsewhere] = await engine.enqueue([{ type: 't', queue: 'q2', uniqueKey: 'k', uniqueForMs: 1000 }]);
        expect(elsewhere!.created).toBe(true);
        clock.advance(1);
        const [after] = await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'k', uniqueForMs: 1000 }]);
        expect(after!.created).toBe(true);
        expect(after!.task.id).not.toBe(first!.task.id);
        const [dupOfNew] = await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'k' }]);
        expect(dupOfNew).toMatchObject({ created: false, task: { id: after!.task.id } });
      });

      it('holds a key without a window while its task is unfinished', async () => {
        const { clock, engine, worker } = await setup();
        const [first] = await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'k' }]);
        const w = await worker();
        const [c] = await engine.claim(w, Q, 1);
        clock.advance(3_600_000); // no window: time alone frees nothing
        const [whileRunning] = await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'k' }]);
        expect(whileRunning).toMatchObject({ created: false, deduplicated: 'unique', task: { id: first!.task.id, state: 'running' } });
        expect(await engine.settle(w, [{ id: c!.id, attempt: 1, status: 'succeeded' }])).toEqual(['accepted']);
        const [second] = await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'k' }]);
        expect(second!.created).toBe(true);
        await engine.cancelTask(second!.task.id);
        const [third] = await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'k' }]);
        expect(third!.created).toBe(true);
        expect(new Set([first!.task.id, second!.task.id, third!.task.id]).size).toBe(3);
      });

      it('answers a repeated key within one batch with the batch\'s first task, in input order', async () => {
        const { engine } = await setup();
        const [held] = await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'b' }]);
        const results = await engine.enqueue([
          { type: 'one', queue: 'q', uniqueKey: 'a' },
          { type: 'plain', queue: 'q' },
          { type: 'two', queue: 'q', uniqueKey: 'b' },
          { type: 'three', queue: 'q', uniqueKey: 'a' },
          { type: 'keyed', queue: 'q', idempotencyKey: 'i' },
        ]);
        expect(results.map((r) => [r.created, r.deduplicated ?? null])).toEqual([
          [true, null], [true, null], [false, 'unique'], [false, 'unique'], [true, null],
        ]);
        expect(results[2]!.task.id).toBe(held!.task.id);
        expect(results[3]!.task.id).toBe(results[0]!.task.id);
        expect(results[3]!.task.type).toBe('one');
        expect(results.map((r) => r.ref.type)).toEqual(['one', 'plain', 't', 'one', 'keyed']);
        const stored = await engine.listTasks({ limit: 50 });
        expect(stored).toHaveLength(4);
      });

      it('with an idempotency key too: a repeated submission returns its task, and takes no key for nothing', async () => {
        const { engine, worker } = await setup();
        const input = { type: 't', queue: 'q', uniqueKey: 'u', idempotencyKey: 'i' };
        const [first] = await engine.enqueue([input]);
        const [repeat] = await engine.enqueue([input]);
        expect(repeat).toMatchObject({ created: false, deduplicated: 'idempotency', task: { id: first!.task.id } });
        // Another submission with the unique key only is a duplicate of it.
        expect((await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'u' }]))[0]).toMatchObject({ created: false, deduplicated: 'unique' });
        const w = await worker();
        const [c] = await engine.claim(w, Q, 1);
        await engine.settle(w, [{ id: c!.id, attempt: 1, status: 'succeeded' }]);
        // The key is free (its task finished), but the idempotency key answers first.
        const [late] = await engine.enqueue([input]);
        expect(late).toMatchObject({ created: false, deduplicated: 'idempotency', task: { id: first!.task.id } });
        // ... and the unique key was not left held by a task that was never made.
        const [fresh] = await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'u' }]);
        expect(fresh!.created).toBe(true);
      });

      it('gives back the key of a purged dead task', async () => {
        const { engine, worker } = await setup();
        const [first] = await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'k', uniqueForMs: 3_600_000 }]);
        const w = await worker();
        const [c] = await engine.claim(w, Q, 1);
        await engine.settle(w, [{ id: c!.id, attempt: 1, status: 'failed', error: { message: 'no' }, retryable: false }]);
        expect((await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'k' }]))[0]).toMatchObject({ created: false, task: { id: first!.task.id, state: 'dead' } });
        expect(await engine.purgeDead({ queue: 'q' })).toBe(1);
        expect((await engine.enqueue([{ type: 't', queue: 'q', uniqueKey: 'k' }]))[0]!.created).toBe(true);
      });

      it('makes one task per key under concurrent submissions with keys in any order, without deadlock', async () => {
        const { engine } = await setup();
        const keys = ['a', 'b', 'c', 'd', 'e'];
        const batches = Array.from({ length: 12 }, (_, n) => {
          const order = n % 2 === 0 ? keys : [...keys].reverse();
          return order.map((k) => ({ type: `t${n}`, queue: 'q', uniqueKey: k }));
        });
        const answers = await Promise.all(batches.map((b) => engine.enqueue(b)));
        const created = answers.flat().filter((r) => r.created);
        expect(created).toHaveLength(keys.length);
        for (const k of keys) {
          const ids = new Set(answers.flat().filter((r) => r.task.uniqueKey === k).map((r) => r.task.id));
          expect(ids.size).toBe(1);
        }
        expect(await engine.listTasks({ limit: 100 })).toHaveLength(keys.length);
      });
    });

    describe('expiry', () => {
      it('never starts a task past its deadline, and cancels it as expired', async () => {
        const { clock, engine, worker } = await setup();
        const [a, b] = await engine.enqueue([
          { type: 'a', queue: 'q', ttlMs: 1000 },
          { type: 'b', queue: 'q', expiresAt: new Date(T0.getTime() + 2000) },
        ]);
        expect(a!.task.expiresAt).toEqual(new Date(T0.getTime() + 1000));
        expect(await engine.getTask(a!.task.id)).toMatchObject({ expiresAt: new Date(T0.getTime() + 1000), cancelReason: null });
        const w = await worker();
        clock.advance(999);
        expect(await engine.expireDue()).toBe(0);
        clock.advance(1); // a's deadline: not started from now on, even before the duty runs
        const claimed = await engine.claim(w, Q, 10);
        expect(claimed.map((t) => t.type)).toEqual(['b']);
        expect(await engine.expireDue()).toBe(1);
        const expired = await engine.getTask(a!.task.id);
        expect(expired).toMatchObject({ state: 'cancelled', cancelReason: 'expired', attempt: 0, startedAt: null });
        expect(expired.finishedAt).toEqual(new Date(T0.getTime() + 1000));
        expect(await engine.getAttempts(a!.task.id)).toEqual([]);
        // b started before its deadline: it runs to the end, whatever the time.
        clock.advance(5000);
        expect(await engine.expireDue()).toBe(0);
        expect(await engine.settle(w, [{ id: b!.task.id, attempt: 1, status: 'succeeded' }])).toEqual(['accepted']);
      });

      it('expires scheduled and retrying tasks, and a retry by an operator runs it again', async () => {
        const { clock, engine, worker } = await setup({ defaultBackoff: { type: 'fixed', delayMs: 10_000 } });
        const [later, retried] = await engine.enqueue([
          { type: 'later', queue: 'q', delayMs: 5000, ttlMs: 3000 },
          { type: 'retried', queue: 'q', ttlMs: 5000 },
        ]);
        const w = await worker();
        const [c] = await engine.claim(w, Q, 1);
        await engine.settle(w, [{ id: c!.id, attempt: 1, status: 'failed', error: { message: 'again' } }]);
        expect((await engine.getTask(retried!.task.id)).state).toBe('retrying');
        clock.advance(5000);
        expect(await engine.expireDue()).toBe(2);
        expect(await engine.getTask(later!.task.id)).toMatchObject({ state: 'cancelled', cancelReason: 'expired' });
        expect(await engine.getTask(retried!.task.id)).toMatchObject({ state: 'cancelled', cancelReason: 'expired', attempt: 1 });
        const again = await engine.retryTask(later!.task.id);
        expect(again).toMatchObject({ state: 'queued', expiresAt: null, cancelReason: null });
        expect((await engine.claim(w, Q, 5)).map((t) => t.type)).toEqual(['later']);
      });

      it('does not start again a task handed back after its deadline', async () => {
        const { clock, engine, worker } = await setup();
        const [t] = await engine.enqueue([{ type: 't', queue: 'q', ttlMs: 10_000 }]);
        const dying = await worker('dying');
        await engine.claim(dying, Q, 1);
        clock.advance(15_000);
        expect(await engine.reapLostWorkers()).toEqual({ workers: 1, tasks: 1 });
        expect(await engine.claim(await worker('next'), Q, 1)).toEqual([]);
        expect(await engine.expireDue()).toBe(1);
        expect(await engine.getTask(t!.task.id)).toMatchObject({ state: 'cancelled', cancelReason: 'expired', attempt: 1 });
      });
    });
  });
}
