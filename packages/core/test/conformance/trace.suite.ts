/**
 * Trace context conformance: the W3C trace context a task is submitted with comes back with
 * its claims, verbatim, and the trace id a worker reports with a result is recorded on that
 * attempt, whatever its outcome. Run on each driver (engine.pglite.test.ts,
 * engine.postgres.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { Engine, ManualClock, type DriverName } from '@taskflow/core';
import { useTestDatabases } from '../support/db.ts';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const TS = 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE';
const WORKER_TRACE = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

export function describeTraceConformance(driver: DriverName): void {
  const dbs = useTestDatabases(driver);

  async function setup() {
    const db = await dbs.fresh();
    const engine = new Engine({ db, clock: new ManualClock(T0), options: { defaultBackoff: { type: 'fixed', delayMs: 0 } } });
    const worker = (await engine.registerWorker({ name: 'w', queues: [{ name: 'q', weight: 1 }], concurrency: 10 })).id;
    return { engine, worker };
  }

  describe(`trace context (${driver})`, () => {
    it('is stored with the task and handed to the worker with each claim; tasks without one carry none', async () => {
      const { engine, worker } = await setup();
      const [traced, plain, bare] = await engine.enqueue([
        { type: 't', queue: 'q', traceparent: TP, tracestate: TS },
        { type: 't', queue: 'q' },
        { type: 't', queue: 'q', traceparent: TP },
      ]);
      expect(traced!.task).toMatchObject({ traceparent: TP, tracestate: TS });
      expect(plain!.task).toMatchObject({ traceparent: null, tracestate: null });
      expect(await engine.getTask(bare!.task.id)).toMatchObject({ traceparent: TP, tracestate: null });
      const claimed = await engine.claim(worker, [{ name: 'q', weight: 1 }], 10);
      expect(claimed.map((t) => [t.traceparent, t.tracestate])).toEqual([[TP, TS], [null, null], [TP, null]]);
    });

    it('is handed out by the claim that rides on a settlement too', async () => {
      const { engine, worker } = await setup();
      await engine.enqueue([{ type: 't', queue: 'q' }, { type: 't', queue: 'q', traceparent: TP, tracestate: TS }]);
      const [first] = await engine.claim(worker, [{ name: 'q', weight: 1 }], 1);
      const { tasks } = await engine.settleAndClaim(worker, [{ id: first!.id, attempt: 1, status: 'succeeded' }], [{ name: 'q', weight: 1 }], 1);
      expect(tasks.map((t) => [t.traceparent, t.tracestate])).toEqual([[TP, TS]]);
    });

    it('records the trace id a worker reports on the attempt, failed or succeeded, and none when it sends none', async () => {
      const { engine, worker } = await setup();
      const [a, b] = await engine.enqueue([{ type: 't', queue: 'q', maxAttempts: 3 }, { type: 't', queue: 'q' }]);
      await engine.claim(worker, [{ name: 'q', weight: 1 }], 2);
      expect(await engine.settle(worker, [
        { id: a!.task.id, attempt: 1, status: 'failed', error: { message: 'boom' }, traceId: WORKER_TRACE },
        { id: b!.task.id, attempt: 1, status: 'succeeded' },
      ])).toEqual(['accepted', 'accepted']);
      // Running again: the task row's trace id is not shown for the attempt in flight.
      await engine.claim(worker, [{ name: 'q', weight: 1 }], 1);
      expect((await engine.getAttempts(a!.task.id)).map((x) => [x.outcome, x.traceId])).toEqual([['failed', WORKER_TRACE], ['running', null]]);
      const second = 'ffeeddccbbaa99887766554433221100';
      expect(await engine.settle(worker, [{ id: a!.task.id, attempt: 2, status: 'succeeded', result: 1, traceId: second }])).toEqual(['accepted']);
      expect((await engine.getAttempts(a!.task.id)).map((x) => [x.outcome, x.traceId])).toEqual([['failed', WORKER_TRACE], ['succeeded', second]]);
      expect((await engine.getAttempts(b!.task.id)).map((x) => [x.outcome, x.traceId])).toEqual([['succeeded', null]]);
    });

    it('records the trace id of a success reported with the next claim', async () => {
      const { engine, worker } = await setup();
      const [a] = await engine.enqueue([{ type: 't', queue: 'q' }]);
      await engine.claim(worker, [{ name: 'q', weight: 1 }], 1);
      await engine.settleAndClaim(worker, [{ id: a!.task.id, attempt: 1, status: 'succeeded', traceId: WORKER_TRACE }], [{ name: 'q', weight: 1 }], 1);
      expect((await engine.getAttempts(a!.task.id)).map((x) => x.traceId)).toEqual([WORKER_TRACE]);
    });
  });
}
