/**
 * What the engine tells its telemetry observer (the metrics' source), and the queue gauges'
 * snapshot, on each driver. A ManualClock makes every wait and duration exact.
 */
import { describe, expect, it } from 'vitest';
import {
  Engine, ManualClock, type AttemptObservation, type ClaimObservation, type DriverName, type EngineTelemetry,
} from '@taskflow/core';
import { useTestDatabases } from '../support/db.ts';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

class Recorder implements EngineTelemetry {
  submittedTasks: { queue: string; type: string }[] = [];
  claims: ClaimObservation[] = [];
  attempts: AttemptObservation[] = [];
  rejections = 0;
  lost = 0;
  submitted(tasks: readonly { queue: string; type: string }[]) {
    this.submittedTasks.push(...tasks.map((t) => ({ queue: t.queue, type: t.type })));
  }
  claimed(tasks: readonly ClaimObservation[]) {
    this.claims.push(...tasks);
  }
  settled(attempts: readonly AttemptObservation[]) {
    this.attempts.push(...attempts);
  }
  rejected(count: number) {
    this.rejections += count;
  }
  workersLost(count: number) {
    this.lost += count;
  }
}

export function describeTelemetryConformance(driver: DriverName): void {
  const dbs = useTestDatabases(driver, { migrate: false });

  async function setup() {
    const db = await dbs.fresh();
    const clock = new ManualClock(T0);
    const telemetry = new Recorder();
    const engine = new Engine({ db, clock, telemetry, options: { defaultBackoff: { type: 'fixed', delayMs: 1000 } } });
    const worker = async (concurrency = 10) =>
      (await engine.registerWorker({ name: 'w', queues: [{ name: 'q', weight: 1 }], concurrency })).id;
    return { db, clock, engine, worker, telemetry };
  }

  describe(`engine telemetry (${driver})`, () => {
    it('reports created tasks, not those an idempotency key matched', async () => {
      const { engine, telemetry } = await setup();
      await engine.enqueue([{ queue: 'q', type: 'a', idempotencyKey: 'k' }, { queue: 'q', type: 'b' }]);
      await engine.enqueue([{ queue: 'q', type: 'a', idempotencyKey: 'k' }]);
      expect(telemetry.submittedTasks).toEqual([{ queue: 'q', type: 'a' }, { queue: 'q', type: 'b' }]);
    });

    it('measures the queue wait from the run time, leaving the scheduled delay out', async () => {
      const { engine, clock, worker, telemetry } = await setup();
      await engine.enqueue([{ queue: 'q', type: 'now' }, { queue: 'q', type: 'later', runAt: at(5000) }]);
      const w = await worker();
      clock.set(at(2000));
      expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 10)).toHaveLength(1);
      clock.set(at(10_000));
      expect(await engine.promoteDue()).toBe(1);
      expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 10)).toHaveLength(1);
      expect(telemetry.claims.map((c) => c.queue)).toEqual(['q', 'q']);
      expect(telemetry.claims[0]!.waitSeconds).toBeCloseTo(2, 6);
      expect(telemetry.claims[1]!.waitSeconds).toBeCloseTo(5, 6);
    });

    it('measures the queue wait of tasks claimed with a settlement, a retry\'s from the end of its backoff', async () => {
      const { engine, clock, worker, telemetry } = await setup();
      await engine.enqueue([{ queue: 'q', type: 'first' }, { queue: 'q', type: 'again', maxAttempts: 2 }]);
      const w = await worker();
      clock.set(at(1000));
      const [first, again] = await engine.claim(w, [{ name: 'q', weight: 1 }], 10);
      // Failed at 1 s with a fixed backoff of 1 s: ready again at 2 s, though created at 0.
      await engine.settle(w, [{ id: again!.id, attempt: 1, status: 'failed', error: { message: 'x' } }]);
      clock.set(at(4000));
      expect(await engine.promoteDue()).toBe(1);
      await engine.enqueue([{ queue: 'q', type: 'late' }]);
      clock.set(at(4500));
      const { tasks } = await engine.settleAndClaim(w, [{ id: first!.id, attempt: 1, status: 'succeeded' }], [{ name: 'q', weight: 1 }], 10);
      expect(tasks.map((t) => t.type).sort()).toEqual(['again', 'late']);
      const waits = Object.fromEntries(telemetry.claims.slice(2).map((c) => [c.type, c.waitSeconds]));
      expect(waits.again).toBeCloseTo(2.5, 6);
      expect(waits.late).toBeCloseTo(0.5, 6);
      expect(telemetry.claims.slice(0, 2).map((c) => c.waitSeconds)).toEqual([1, 1]);
    });

    it('measures the queue wait of a limited queue\'s claims too', async () => {
      const { engine, clock, worker, telemetry } = await setup();
      await engine.updateQueueSettings('q', { maxRunning: 5 });
      await engine.enqueue([{ queue: 'q', type: 'limited' }, { queue: 'q', type: 'limited', runAt: at(500) }]);
      const w = await worker();
      clock.set(at(3000));
      expect(await engine.promoteDue()).toBe(1);
      expect(await engine.claim(w, [{ name: 'q', weight: 1 }], 10)).toHaveLength(2);
      expect(telemetry.claims.map((c) => c.waitSeconds).sort()).toEqual([2.5, 3]);
    });

    it('reports each ended attempt with its outcome, duration, next state and error class', async () => {
      const { engine, clock, worker, telemetry } = await setup();
      await engine.enqueue([
        { queue: 'q', type: 'ok' }, { queue: 'q', type: 'ok' }, { queue: 'q', type: 'bad', maxAttempts: 1 }, { queue: 'q', type: 'again', maxAttempts: 3 },
      ]);
      const w = await worker();
      const tasks = await engine.claim(w, [{ name: 'q', weight: 1 }], 10);
      const [a, b, c, d] = tasks;
      clock.set(at(1500));
      // a: success with the next claim (one statement); b: success alone; c, d: failures.
      await engine.settleAndClaim(w, [{ id: a!.id, attempt: 1, status: 'succeeded' }], [{ name: 'q', weight: 1 }], 1);
      await engine.settle(w, [
        { id: b!.id, attempt: 1, status: 'succeeded' },
        { id: c!.id, attempt: 1, status: 'failed', error: { message: 'x', stack: 'RangeError: x\n    at f (f.js:1:1)' } },
        { id: d!.id, attempt: 1, status: 'failed', error: { message: 'no stack' } },
        { id: d!.id, attempt: 7, status: 'succeeded' },
      ]);
      const byType = Object.fromEntries(telemetry.attempts.map((o) => [o.type, o]));
      expect(telemetry.attempts).toHaveLength(4);
      expect(byType.ok).toMatchObject({ queue: 'q', outcome: 'succeeded', next: 'succeeded' });
      expect(telemetry.attempts.filter((o) => o.type === 'ok').map((o) => o.seconds)).toEqual([1.5, 1.5]);
      expect(byType.bad).toMatchObject({ outcome: 'failed', next: 'dead', errorType: 'RangeError', seconds: 1.5 });
      expect(byType.again).toMatchObject({ outcome: 'failed', next: 'retrying', errorType: 'Error' });
      // The repeated report of d is refused by the fencing check.
      expect(telemetry.rejections).toBe(1);
    });

    it('reports expired leases and lost workers', async () => {
      const { engine, clock, worker, telemetry } = await setup();
      await engine.enqueue([{ queue: 'q', type: 'slow', timeoutMs: 1000 }]);
      const w = await worker();
      await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
      clock.set(at(1001));
      expect(await engine.rescueExpired()).toBe(1);
      expect(telemetry.attempts).toEqual([{ queue: 'q', type: 'slow', outcome: 'lease_expired', seconds: 1.001, next: 'retrying', errorType: undefined }]);
      clock.set(at(3_600_000));
      expect((await engine.reapLostWorkers()).workers).toBe(1);
      expect(telemetry.lost).toBe(1);
    });

    it('snapshots the queue gauges once per period, whoever asks', async () => {
      const { engine, clock, worker } = await setup();
      expect(await engine.readStats()).toBeNull();
      await engine.enqueue([{ queue: 'q', type: 't' }, { queue: 'q', type: 't' }, { queue: 'q', type: 't', runAt: at(60_000) }]);
      await engine.setQueuePaused('idle', true);
      const w = await worker(8);
      await engine.claim(w, [{ name: 'q', weight: 1 }], 1);
      clock.set(at(30_000));
      await engine.heartbeat(w); // alive at the snapshot's time, its lease renewed
      expect(await engine.refreshStats(15_000)).toBe(true);
      const snap = (await engine.readStats())!;
      expect(snap.takenAt).toBe(at(30_000).getTime() / 1000);
      expect(snap.workers).toBe(1);
      expect(snap.queues).toEqual([
        { queue: 'idle', paused: true, counts: {}, oldestReadyAgeSeconds: 0, oldestRunningAgeSeconds: 0, workers: 0, slots: 0 },
        { queue: 'q', paused: false, counts: { queued: 1, running: 1, scheduled: 1 }, oldestReadyAgeSeconds: 30, oldestRunningAgeSeconds: 30, workers: 1, slots: 8 },
      ]);
      // Within the period nobody counts again; after it, the next caller does.
      clock.set(at(40_000));
      expect(await engine.refreshStats(15_000)).toBe(false);
      clock.set(at(45_001));
      expect(await engine.refreshStats(15_000)).toBe(true);
      expect((await engine.readStats())!.takenAt).toBe(45.001 + T0.getTime() / 1000);
    });
  });
}
