/**
 * Crash recovery with real processes: 5,000 tasks, four SDK workers in separate processes on
 * PostgreSQL, one killed with SIGKILL mid-run. Every task must end succeeded, none may run to
 * an accepted success twice, the killed worker's tasks must be re-run within one lease, and
 * the attempts must record what happened. The survivors then stop on SIGTERM, gracefully.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '@taskflow/server/test-support';
import { killAll, startWorkerProcess, type Proc } from './support/processes.ts';

const TASKS = 5000;
const LEASE_MS = 6000;
const WORKER_TTL_MS = 3000;
const RESCUE_INTERVAL_MS = 250;

interface Event {
  e: string;
  id: string;
  attempt: number;
  t: number;
}

describe('crash recovery with real worker processes (PostgreSQL)', () => {
  let tf: TestService;
  afterAll(async () => {
    await killAll();
    await tf?.stop();
  });
  beforeAll(async () => {
    tf = await startTestService('postgres', {
      workerTtlMs: WORKER_TTL_MS,
      defaultTimeoutMs: LEASE_MS,
      rescueIntervalMs: RESCUE_INTERVAL_MS,
      poolSize: 10,
    });
  });

  it('loses nothing, runs nothing to success twice, and re-runs the dead worker\'s tasks within one lease', async () => {
    const queue = 'crash';
    const workerKey = (await tf.admin.createApiKey({ name: 'crash workers', scopes: ['worker'] })).secret;

    const events = new Map<string, Event[]>(); // worker id -> events
    const doneBySurvivors = new Map<string, number>();
    let totalDone = 0;
    let victimId = '';
    let reachedQuarter: () => void;
    const quarter = new Promise<void>((resolve) => (reachedQuarter = resolve));
    let allDone: () => void;
    const finished = new Promise<void>((resolve) => (allDone = resolve));
    const stale: string[] = [];

    const workers: { proc: Proc; workerId: string }[] = [];
    for (let i = 0; i < 4; i++) {
      const w = await startWorkerProcess({ TF_URL: tf.url, TF_KEY: workerKey, TF_QUEUES: queue, TF_CONCURRENCY: '8', TF_NAME: `crash-${i}` });
      workers.push(w);
      events.set(w.workerId, []);
      w.proc.onLine((line) => {
        const ev = JSON.parse(line) as Event & { ids?: string[] };
        if (ev.e === 'stale') stale.push(...ev.ids!);
        if (ev.e !== 'start' && ev.e !== 'done') return;
        events.get(w.workerId)!.push(ev);
        if (ev.e === 'done') {
          totalDone++;
          if (w.workerId !== victimId) doneBySurvivors.set(ev.id, (doneBySurvivors.get(ev.id) ?? 0) + 1);
          if (totalDone >= TASKS / 4) reachedQuarter();
        }
      });
    }
    const [victim, ...survivors] = workers;
    victimId = victim!.workerId;
    // The workers are all up and long-polling: the tasks arrive for them to share.
    for (let i = 0; i < TASKS; i += 1000) {
      await tf.admin.enqueueMany(
        Array.from({ length: 1000 }, (_, j) => ({
          type: 'sleep', queue, payload: { ms: 2 + ((i + j) % 7) }, backoff: { type: 'fixed' as const, delayMs: 0 },
        })),
      );
    }

    await quarter;
    victim!.proc.child.kill('SIGKILL');
    await victim!.proc.exited;

    // Wait, by events, until the database says every task succeeded.
    const poll = setInterval(async () => {
      const { rows } = await tf.service.db.query(`SELECT count(*)::int AS n FROM tasks WHERE queue = $1 AND state = 'succeeded'`, [queue]);
      if (rows[0]!.n === TASKS) allDone();
    }, 200);
    await finished;
    clearInterval(poll);

    const db = tf.service.db;
    // 1. Every task ended succeeded.
    const states = await db.query(`SELECT state, count(*)::int AS n FROM tasks WHERE queue = $1 GROUP BY state`, [queue]);
    expect(states.rows).toEqual([{ state: 'succeeded', n: TASKS }]);

    // 2. What the victim was running when it died: started, not finished. (It may also have
    // held finished tasks whose results it had not reported yet.)
    const victimEvents = events.get(victimId)!;
    const victimDone = new Set(victimEvents.filter((e) => e.e === 'done').map((e) => e.id));
    const victimRunning = victimEvents.filter((e) => e.e === 'start' && !victimDone.has(e.id)).map((e) => e.id);

    // 3. No task ran to completion twice among the survivors, and no accepted result was refused.
    expect([...doneBySurvivors.values()].every((n) => n === 1)).toBe(true);
    expect(stale).toEqual([]);

    // 4. Only the victim's tasks needed a second attempt; each of those records the loss.
    const retried = await db.query(
      `SELECT t.id::text, t.attempt, t.worker_id, a.outcome, a.worker_id AS lost_by, a.finished_at AS rescued_at, w.last_seen_at
         FROM tasks t JOIN attempts a ON a.task_id = t.id JOIN workers w ON w.id = a.worker_id
        WHERE t.queue = $1 ORDER BY t.id`,
      [queue],
    );
    const retriedIds = retried.rows.map((r) => r.id as string);
    expect(retriedIds.length).toBeGreaterThan(0); // the victim died holding tasks
    for (const id of victimRunning) expect(retriedIds).toContain(id);
    for (const r of retried.rows) {
      expect(r.lost_by).toBe(victimId);
      // `abandoned`: a claim the victim had in flight when it died; the server saw the
      // connection close before it could answer and handed the tasks back at once.
      expect(['worker_lost', 'lease_expired', 'abandoned']).toContain(r.outcome);
      expect(r.attempt).toBe(2);
      expect(r.worker_id).not.toBe(victimId);
      // Rescued no later than one lease after the victim's last sign of life (the rescuer's
      // tick is the only slack).
      expect(r.rescued_at.getTime() - r.last_seen_at.getTime()).toBeLessThanOrEqual(LEASE_MS + RESCUE_INTERVAL_MS + 1000);
    }
    const once = await db.query(`SELECT count(*)::int AS n FROM tasks WHERE queue = $1 AND attempt = 1`, [queue]);
    expect(once.rows[0]!.n).toBe(TASKS - retried.rows.length);
    // Tasks the victim finished but could not report before dying ran twice, once per worker;
    // those it reported were not re-run.
    for (const id of victimDone) {
      if (!retriedIds.includes(id)) expect(doneBySurvivors.has(id)).toBe(false);
    }
    expect((await tf.admin.getWorker(victimId)).state).toBe('lost');

    // 5. The survivors shut down gracefully on SIGTERM: exit 0, deregistered, nothing held.
    for (const s of survivors) s.proc.child.kill('SIGTERM');
    for (const s of survivors) expect((await s.proc.exited).code).toBe(0);
    for (const s of survivors) expect(await tf.admin.getWorker(s.workerId)).toMatchObject({ state: 'stopped', running: 0 });
  }, 120_000);
});
