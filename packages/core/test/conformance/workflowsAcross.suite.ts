/**
 * Conformance of dependencies where they meet the engine's other features: the succeed-and-claim
 * statement with and without an observer (the 'settled' row lists the queues where children
 * became ready apart from the telemetry labels), a child claimed from a limited queue (the flow
 * claim hands it its parents' results too), and expiry (an expired task takes its dependents
 * with it). Run unchanged on each driver; time is a ManualClock.
 */
import { describe, expect, it } from 'vitest';
import {
  Engine, ManualClock, type AttemptObservation, type DriverName, type EngineTelemetry,
} from '@taskflow/core';
import { useTestDatabases } from '../support/db.ts';

const T0 = new Date('2030-01-01T00:00:00.000Z');

export function describeWorkflowsAcrossConformance(driver: DriverName): void {
  const dbs = useTestDatabases(driver, {});

  async function setup(observed: boolean) {
    const db = await dbs.fresh();
    const clock = new ManualClock(T0);
    const settled: AttemptObservation[] = [];
    const telemetry: EngineTelemetry | undefined = observed
      ? { submitted() {}, claimed() {}, settled: (a) => { settled.push(...a); }, rejected() {}, workersLost() {} }
      : undefined;
    const engine = new Engine({ db, clock, telemetry });
    const ready: string[] = [];
    engine.on({ ready: (queues) => { ready.push(...queues); } });
    return { engine, clock, settled, ready };
  }

  describe(`workflows across features (${driver})`, () => {
    for (const observed of [false, true]) {
      it(`succeed-and-claim ${observed ? 'with' : 'without'} an observer: wakes the children's queue, labels the attempt`, async () => {
        const { engine, settled, ready } = await setup(observed);
        const queues = [{ name: 'q', weight: 1 }, { name: 'kids', weight: 1 }];
        const worker = (await engine.registerWorker({ name: 'w', queues, concurrency: 10 })).id;
        const { tasks } = await engine.submitWorkflow({ name: 'w', tasks: [
          { ref: 'A', type: 'root', queue: 'q' },
          { ref: 'B', type: 'kid', queue: 'kids', dependsOn: ['A'] },
        ] });
        const [a] = await engine.claim(worker, queues, 1);
        ready.length = 0;
        // Weighted order is random: carry the claim on 'q' whatever the draw.
        const { outcomes } = await engine.settleAndClaim(worker, [{ id: a!.id, attempt: a!.attempt, status: 'succeeded', result: 7 }], [queues[0]!], 10);
        expect(outcomes).toEqual(['accepted']);
        expect(ready).toContain('kids');
        if (observed) expect(settled).toEqual([expect.objectContaining({ queue: 'q', type: 'root', outcome: 'succeeded', next: 'succeeded' })]);
        const [b] = await engine.claim(worker, [queues[1]!], 10);
        expect(b!.id).toBe(tasks[1]!.id);
        expect(JSON.parse(b!.parentsJson!)).toEqual({ A: 7 });
      });
    }

    it('settle without a claim, with an observer: one observation per attempt, none for the children', async () => {
      const { engine, settled, ready } = await setup(true);
      const queues = [{ name: 'q', weight: 1 }];
      const worker = (await engine.registerWorker({ name: 'w', queues, concurrency: 10 })).id;
      await engine.submitWorkflow({ name: 'w', tasks: [
        { ref: 'A', type: 'root', queue: 'q' },
        ...['B', 'C'].map((ref) => ({ ref, type: 'kid', queue: 'q', dependsOn: ['A'] })),
      ] });
      const [a] = await engine.claim(worker, queues, 1);
      ready.length = 0;
      await engine.settle(worker, [{ id: a!.id, attempt: a!.attempt, status: 'succeeded' }]);
      expect(settled).toEqual([expect.objectContaining({ queue: 'q', type: 'root', outcome: 'succeeded' })]);
      expect(ready).toContain('q');
      const [b] = await engine.claim(worker, queues, 1);
      await engine.settle(worker, [{ id: b!.id, attempt: b!.attempt, status: 'failed', error: { message: 'x' }, retryable: false }]);
      expect(settled.slice(1)).toEqual([expect.objectContaining({ type: 'kid', outcome: 'failed', next: 'dead' })]);
    });

    it('a child in a limited queue is claimed with its parents\' results', async () => {
      const { engine } = await setup(false);
      await engine.updateQueueSettings('lq', { maxRunning: 2 });
      const queues = [{ name: 'q', weight: 1 }, { name: 'lq', weight: 1 }];
      const worker = (await engine.registerWorker({ name: 'w', queues, concurrency: 10 })).id;
      const { tasks } = await engine.submitWorkflow({ name: 'w', tasks: [
        { ref: 'A', type: 't', queue: 'q' },
        { ref: 'B', type: 't', queue: 'lq', dependsOn: ['A'] },
      ] });
      const [a] = await engine.claim(worker, [queues[0]!], 1);
      await engine.settle(worker, [{ id: a!.id, attempt: a!.attempt, status: 'succeeded', result: { from: 'A' } }]);
      const [b] = await engine.claim(worker, [queues[1]!], 10);
      expect(b!.id).toBe(tasks[1]!.id);
      expect(JSON.parse(b!.parentsJson!)).toEqual({ A: { from: 'A' } });
    });

    it('an expired task cancels its dependents and counts in its batch', async () => {
      const { engine, clock } = await setup(false);
      const worker = (await engine.registerWorker({ name: 'w', queues: [{ name: 'q', weight: 1 }], concurrency: 10 })).id;
      const { tasks } = await engine.submitWorkflow({ name: 'w', tasks: [
        { ref: 'A', type: 't', queue: 'q', ttlMs: 1000 },
        { ref: 'B', type: 't', queue: 'q', dependsOn: ['A'] },
        { ref: 'C', type: 't', queue: 'q', dependsOn: ['B'] },
      ] });
      const batch = await engine.submitBatch({ name: 'b', tasks: [{ type: 't', queue: 'q', ttlMs: 1000 }], completion: { type: 'done', queue: 'q' } });
      clock.advance(1000);
      expect(await engine.expireDue()).toBe(2);
      expect(await engine.getTask(tasks[0]!.id)).toMatchObject({ state: 'cancelled', cancelReason: 'expired' });
      expect(await engine.getTask(tasks[1]!.id)).toMatchObject({ state: 'cancelled', cancelReason: null });
      expect((await engine.getTask(tasks[2]!.id)).state).toBe('cancelled');
      const [done, ...rest] = await engine.claim(worker, [{ name: 'q', weight: 1 }], 10);
      expect(rest).toEqual([]);
      expect(done!.id).toBe(batch.tasks.find((t) => t.ref === 'completion')!.id);
      expect(JSON.parse(done!.payloadJson!).batch).toMatchObject({ total: 1, cancelled: 1 });
    });
  });
}
