/**
 * Flow control conformance (docs/flow-control.md): queue settings, concurrency and rate limits
 * at claim, fairness across keys, admission, explain. Run unchanged on each driver
 * (flow.pglite.test.ts, flow.postgres.test.ts). Time is a ManualClock: a rate bucket refills
 * exactly when the clock says, with no sleeping.
 */
import { describe, expect, it } from 'vitest';
import {
  AdmissionRefusedError, Engine, InvalidInputError, ManualClock, type DriverName, type TaskInput,
} from '@taskflow/core';
import { useTestDatabases } from '../support/db.ts';

const T0 = new Date('2030-01-01T00:00:00.000Z');

export function describeFlowConformance(driver: DriverName): void {
  const dbs = useTestDatabases(driver);

  async function setup(options: { poolSize?: number } = {}) {
    const db = await dbs.fresh(options);
    const clock = new ManualClock(T0);
    const engine = new Engine({ db, clock });
    const worker = async (queue = 'q', name = 'w') =>
      (await engine.registerWorker({ name, queues: [{ name: queue, weight: 1 }], concurrency: 100 })).id;
    const submit = (n: number, extra: Partial<TaskInput> = {}) =>
      engine.enqueue(Array.from({ length: n }, (_, i) => ({ type: 't', queue: 'q', payload: i, ...extra })));
    const runningByKey = async () => {
      const { rows } = await db.query(`SELECT concurrency_key AS k, count(*)::integer AS n FROM tasks WHERE state = 'running' GROUP BY 1`);
      return Object.fromEntries(rows.map((r) => [r.k, r.n]));
    };
    return { db, clock, engine, worker, submit, runningByKey };
  }

  describe(`flow control (${driver})`, () => {
    describe('queue settings', () => {
      it('are stored, shown in the queue, kept when absent from a patch and cleared by null', async () => {
        const { engine } = await setup();
        let q = await engine.updateQueueSettings('q', {
          maxRunning: 10, maxRunningPerKey: 2, rateLimit: { limit: 50, intervalMs: 1000, burst: 5 }, maxDepth: 100,
          defaultMaxAttempts: 2, defaultBackoff: { type: 'fixed', delayMs: 10 },
        });
        expect(q.settings).toEqual({
          maxRunning: 10, maxRunningPerKey: 2, rateLimit: { limit: 50, intervalMs: 1000, burst: 5 }, rateLimitPerKey: null,
          maxDepth: 100, maxAgeMs: null, defaultMaxAttempts: 2, defaultBackoff: { type: 'fixed', delayMs: 10 }, fair: false,
        });
        q = await engine.updateQueueSettings('q', { rateLimit: null, maxAgeMs: 60_000 });
        expect(q.settings).toMatchObject({ maxRunning: 10, rateLimit: null, maxDepth: 100, maxAgeMs: 60_000 });
        const [t] = await engine.enqueue([{ type: 't', queue: 'q' }]);
        expect(t!.task).toMatchObject({ maxAttempts: 2, backoff: { type: 'fixed', delayMs: 10 } });
        expect((await engine.getTask(t!.task.id)).maxAttempts).toBe(2);
      });

      it('refuse a bad value naming the field, and change nothing', async () => {
        const { engine } = await setup();
        await engine.updateQueueSettings('q', { maxRunning: 4 });
        await expect(engine.updateQueueSettings('q', { maxRunning: 0 })).rejects.toMatchObject({ field: 'maxRunning' });
        await expect(engine.updateQueueSettings('q', { rateLimit: { limit: 5, intervalMs: 0, burst: 1 } }))
          .rejects.toBeInstanceOf(InvalidInputError);
        await expect(engine.updateQueueSettings('q', { rateLimit: { limit: 5, intervalMs: 0, burst: 1 } }))
          .rejects.toMatchObject({ field: 'rateLimit.intervalMs' });
        expect((await engine.getQueue('q')).settings.maxRunning).toBe(4);
      });
    });

    describe('concurrency limits', () => {
      it('admit at most the key limit; a settled attempt or an expired lease frees its slot, never later', async () => {
        const { engine, clock, worker, submit, runningByKey } = await setup();
        await engine.updateQueueSettings('q', { maxRunningPerKey: 3 });
        await submit(10, { concurrencyKey: 'a', timeoutMs: 1000 });
        await submit(2, { concurrencyKey: 'b', timeoutMs: 1000 });
        const w = await worker();
        const first = await engine.claim(w, [{ name: 'q', weight: 1 }], 100);
        expect(first).toHaveLength(5);
        expect(await runningByKey()).toEqual({ a: 3, b: 2 });
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 100)).toEqual([]);
        const a = first.filter((t) => t.payloadJson !== null && Number(t.payloadJson) < 10);
        await engine.settle(w, [{ id: a[0]!.id, attempt: a[0]!.attempt, status: 'succeeded' }]);
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 100)).toHaveLength(1);
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 100)).toEqual([]);
        // One millisecond before the leases end, the slots are held; at the end, they are free.
        clock.advance(999);
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 100)).toEqual([]);
        clock.advance(1);
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 100)).toHaveLength(3);
      });

      it('count the slots a settlement frees for the claim it carries, and no more', async () => {
        const { engine, worker, submit, runningByKey } = await setup();
        await engine.updateQueueSettings('q', { maxRunningPerKey: 2, maxRunning: 3 });
        await submit(6, { concurrencyKey: 'a' });
        await submit(6, { concurrencyKey: 'b' });
        const w = await worker();
        const queues = [{ name: 'q', weight: 1 }];
        const done = (ts: readonly { id: string; attempt: number }[]) => ts.map((t) => ({ id: t.id, attempt: t.attempt, status: 'succeeded' as const }));
        const first = await engine.claim(w, queues, 100);
        expect(first).toHaveLength(3);
        // Two of the three end: their two slots go to the claim they carry, not a third.
        const next = await engine.settleAndClaim(w, done(first.slice(0, 2)), queues, 100);
        expect(next.outcomes).toEqual(['accepted', 'accepted']);
        expect(next.tasks).toHaveLength(2);
        const running = await runningByKey();
        expect(running.a + running.b).toBe(3);
        expect(Math.max(running.a, running.b)).toBeLessThanOrEqual(2);
        // A report sent again frees nothing.
        const again = await engine.settleAndClaim(w, done(first.slice(0, 1)), queues, 100);
        expect(again.outcomes).toEqual(['duplicate']);
        expect(again.tasks).toEqual([]);
        let held = [first[2]!, ...next.tasks];
        let finished = 2;
        while (held.length > 0) {
          const r = await engine.settleAndClaim(w, done(held), queues, 100);
          finished += held.length;
          held = r.tasks;
          expect(held.length).toBeLessThanOrEqual(3);
          const now = await runningByKey();
          expect((now.a ?? 0) + (now.b ?? 0)).toBe(held.length);
        }
        expect(finished).toBe(12);
      });

      it('cap the whole queue over all keys', async () => {
        const { engine, worker, submit } = await setup();
        await engine.updateQueueSettings('q', { maxRunning: 4, maxRunningPerKey: 3 });
        for (const k of ['a', 'b', 'c']) await submit(5, { concurrencyKey: k });
        const w = await worker();
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 100)).toHaveLength(4);
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 100)).toEqual([]);
      });

      it('leave a queue without limits on the plain claim, and switch when limits come and go', async () => {
        const { engine, worker, submit } = await setup();
        await submit(6, { concurrencyKey: 'a' });
        const w = await worker();
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 2)).toHaveLength(2);
        await engine.updateQueueSettings('q', { maxRunningPerKey: 3 });
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 5)).toHaveLength(1);
        await engine.updateQueueSettings('q', { maxRunningPerKey: null });
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 5)).toHaveLength(3);
      });

      // On PGlite the claimers take turns on its one connection (and the event loop between
      // statements: see eventLoopTurns in db/pglite.ts); on PostgreSQL they race on a pool.
      it('hold under 50 concurrent claimers on one key: never more than the limit running', async () => {
        const { db, engine, submit } = await setup({ poolSize: 20 });
        const total = 30;
        const claimers = 50;
        const deadline = Date.now() + 120_000;
        await engine.updateQueueSettings('q', { maxRunningPerKey: 3 });
        await submit(total, { concurrencyKey: 'hot' });
        const workers = await Promise.all(Array.from({ length: claimers }, (_, i) =>
          engine.registerWorker({ name: `w${i}`, queues: [{ name: 'q', weight: 1 }], concurrency: 5 })));
        // Tasks each claimer holds, from the claim's answer until just before its settle: within
        // the time the database holds them, so this never exceeds the database's own count.
        let held = 0;
        let most = 0;
        let sampledMost = 0;
        let done = 0;
        const sampler = (async () => {
          while (done < total && Date.now() < deadline) {
            const { rows } = await db.query(`SELECT count(*)::integer AS n FROM tasks WHERE state = 'running'`);
            sampledMost = Math.max(sampledMost, rows[0]!.n);
          }
        })();
        await Promise.all(workers.map(async (w) => {
          while (done < total && Date.now() < deadline) {
            const got = await engine.claim(w.id, [{ name: 'q', weight: 1 }], 5);
            if (got.length === 0) {
              await new Promise((r) => setImmediate(r));
              continue;
            }
            held += got.length;
            most = Math.max(most, held);
            await new Promise((r) => setImmediate(r));
            held -= got.length;
            await engine.settle(w.id, got.map((t) => ({ id: t.id, attempt: t.attempt, status: 'succeeded' as const })));
            done += got.length;
          }
        }));
        const claimed = done;
        done = total;
        await sampler;
        expect(claimed).toBe(total);
        expect(most).toBeGreaterThan(0);
        expect(most).toBeLessThanOrEqual(3);
        expect(sampledMost).toBeLessThanOrEqual(3);
      }, 150_000);
    });

    describe('rate limits', () => {
      it('count starts by GCRA: the burst at once, then one per interval/limit, across claims', async () => {
        const { engine, clock, worker, submit } = await setup();
        await engine.updateQueueSettings('q', { rateLimit: { limit: 50, intervalMs: 1000, burst: 5 } });
        await submit(200);
        const w = await worker();
        const claim = () => engine.claim(w, [{ name: 'q', weight: 1 }], 100);
        expect(await claim()).toHaveLength(5);
        expect(await claim()).toEqual([]);
        clock.advance(19);
        expect(await claim()).toEqual([]);
        clock.advance(1);
        expect(await claim()).toHaveLength(1);
        let started = 6;
        for (let step = 0; step < 49; step++) {
          clock.advance(20);
          started += (await claim()).length;
        }
        // Over one second: the burst plus one start per 20 ms.
        expect(started).toBe(55);
        clock.advance(10_000);
        expect(await claim()).toHaveLength(5);
      });

      it('limit each rate key on its own', async () => {
        const { engine, clock, worker, submit } = await setup();
        await engine.updateQueueSettings('q', { rateLimitPerKey: { limit: 2, intervalMs: 1000, burst: 2 } });
        await submit(10, { rateKey: 'smtp-a' });
        await submit(10, { rateKey: 'smtp-b' });
        const w = await worker();
        const got = await engine.claim(w, [{ name: 'q', weight: 1 }], 100);
        expect(got).toHaveLength(4);
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 100)).toEqual([]);
        clock.advance(500);
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 100)).toHaveLength(2);
      });
    });

    describe('fairness', () => {
      it('serves a key of 10 within the first claims despite 10,000 of another key ahead of it', async () => {
        const { engine, worker, submit } = await setup();
        await engine.updateQueueSettings('q', { fair: true });
        for (let i = 0; i < 10; i++) await submit(1000, { concurrencyKey: 'A' });
        const b = new Set((await submit(10, { concurrencyKey: 'B' })).map((r) => r.task.id));
        const w = await worker();
        const starts: string[] = [];
        for (let batch = 0; batch < 2; batch++) {
          for (const t of await engine.claim(w, [{ name: 'q', weight: 1 }], 10)) starts.push(b.has(t.id) ? 'B' : 'A');
        }
        expect(starts).toHaveLength(20);
        expect(starts.filter((k) => k === 'B')).toHaveLength(10);
      });

      // The claim finds its heads several ways (sql/flow.ts, taskClaimLimited): fewer keys than
      // the claim (every key's first tasks), more keys with the heads in the first ready tasks
      // (the walk), more keys whose heads lie further on (the loose scan after the walk), for
      // claims of at most WALK_FIRST tasks and above.
      it('takes the keys round by round whether the claim is larger or smaller than the keys', async () => {
        const { engine, worker, submit } = await setup();
        await engine.updateQueueSettings('q', { fair: true });
        const keyOf = new Map<string, string>();
        const add = async (key: string, n: number) => {
          for (const r of await submit(n, { concurrencyKey: key })) keyOf.set(r.task.id, key);
        };
        const w = await worker();
        const claimKeys = async (n: number) =>
          (await engine.claim(w, [{ name: 'q', weight: 1 }], n)).map((t) => keyOf.get(t.id)!).sort();
        await add('a', 5);
        await add('b', 5);
        await add('c', 2);
        expect(await claimKeys(7)).toEqual(['a', 'a', 'a', 'b', 'b', 'c', 'c']);
        expect(await claimKeys(5)).toEqual(['a', 'a', 'b', 'b', 'b']);
        for (let k = 10; k < 40; k++) await add(`k${k}`, 3);
        expect(await claimKeys(5)).toEqual(['k10', 'k11', 'k12', 'k13', 'k14']);
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 200)).toHaveLength(85);
        // Eight keys of ten, one after the other: a walk of the first 26 ready tasks meets three.
        for (let k = 40; k < 48; k++) await add(`k${k}`, 10);
        expect(await claimKeys(5)).toEqual(['k40', 'k41', 'k42', 'k43', 'k44']);
        expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 200)).toHaveLength(75);
        // A claim above WALK_FIRST probes 41 keys first, walks, and goes on to the fiftieth.
        for (let k = 100; k < 150; k++) await add(`m${k}`, 10);
        expect(await claimKeys(40)).toEqual(Array.from({ length: 40 }, (_, i) => `m${100 + i}`));
      });
    });

    describe('admission', () => {
      it('refuses the task beyond maxDepth, all or nothing, naming what did not fit', async () => {
        const { engine, db, submit } = await setup();
        await engine.updateQueueSettings('q', { maxDepth: 100 });
        await submit(60);
        const err = await submit(41).catch((e) => e);
        expect(err).toBeInstanceOf(AdmissionRefusedError);
        expect(err.refused).toEqual([{ index: 40, queue: 'q', reason: 'max_depth' }]);
        expect(err.retryAfterMs).toBeGreaterThan(0);
        const count = async () => (await db.query(`SELECT count(*)::integer AS n FROM tasks`)).rows[0]!.n;
        expect(await count()).toBe(60);
        await submit(40);
        await expect(submit(1)).rejects.toBeInstanceOf(AdmissionRefusedError);
        expect(await count()).toBe(100);
      });

      it('refuses while the oldest ready task has waited longer than maxAgeMs', async () => {
        const { engine, clock, submit } = await setup();
        await engine.updateQueueSettings('q', { maxAgeMs: 5000 });
        await submit(1);
        clock.advance(5000);
        await submit(1);
        clock.advance(1);
        await expect(submit(1)).rejects.toMatchObject({ refused: [{ index: 0, queue: 'q', reason: 'max_age' }] });
      });
    });

    describe('explain', () => {
      it('names the run time, the paused queue, the full concurrency key and the empty bucket', async () => {
        const { engine, clock, worker, submit } = await setup();
        const [later] = await submit(1, { delayMs: 60_000 });
        let x = await engine.explainTask(later!.task.id);
        expect(x.blockers.map((b) => b.kind)).toEqual(['run_at']);
        expect(x.blockers[0]!.until!.getTime()).toBe(T0.getTime() + 60_000);

        await engine.setQueuePaused('q', true);
        const [ready] = await submit(1);
        expect((await engine.explainTask(ready!.task.id)).blockers.map((b) => b.kind)).toEqual(['queue_paused']);
        await engine.setQueuePaused('q', false);
        expect((await engine.explainTask(ready!.task.id)).blockers).toEqual([]);

        await engine.updateQueueSettings('q', { maxRunningPerKey: 1 });
        await submit(2, { concurrencyKey: 'k', timeoutMs: 1000 });
        const w = await worker();
        await engine.claim(w, [{ name: 'q', weight: 1 }], 100);
        const { rows } = await engine.db.query(`SELECT id::text FROM tasks WHERE state = 'queued' AND concurrency_key = 'k'`);
        x = await engine.explainTask(rows[0]!.id);
        expect(x.blockers).toMatchObject([{ kind: 'concurrency_key', key: 'k', limit: 1, running: 1 }]);
        expect(x.blockers[0]!.until!.getTime()).toBe(T0.getTime() + 1000);

        await engine.updateQueueSettings('q', { maxRunningPerKey: null, rateLimit: { limit: 1, intervalMs: 1000, burst: 1 } });
        const [r] = await submit(2);
        await engine.claim(w, [{ name: 'q', weight: 1 }], 100);
        const { rows: left } = await engine.db.query(`SELECT id::text FROM tasks WHERE state = 'queued' ORDER BY id LIMIT 1`);
        x = await engine.explainTask(left[0]!.id);
        expect(x.blockers).toMatchObject([{ kind: 'rate_limit', limit: 1 }]);
        expect(x.blockers[0]!.until!.getTime()).toBe(clock.now().getTime() + 1000);
        expect(r).toBeDefined();
      });
    });
  });
}
