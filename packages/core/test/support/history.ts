/**
 * A fabricated history of finished tasks and attempts, written straight into `tasks`,
 * `attempts` and `workers` as the engine leaves them, with every expected analytics figure
 * computable exactly from the same records.
 */
import type { Executor } from '@taskflow/core';

export interface FabricatedAttempt {
  worker: number;
  startedAt: number;
  finishedAt: number;
  outcome: 'succeeded' | 'failed' | 'lease_expired';
}

export interface FabricatedTask {
  key: string;
  queue: string;
  type: string;
  state: 'succeeded' | 'dead' | 'cancelled';
  createdAt: number;
  /** The finished attempts, the last one the task row's when it succeeded. */
  attempts: FabricatedAttempt[];
  finishedAt: number;
}

export const WORKER_IDS = [
  '00000000-0000-4000-8000-000000000001',
  '00000000-0000-4000-8000-000000000002',
  '00000000-0000-4000-8000-000000000003',
];

/** mulberry32: a seeded generator, so that a failing history can be reproduced. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` tasks created over `spanMs` from `t0`; durations spread log-uniformly over 1 ms – 20 s. */
export function fabricate(n: number, t0: number, spanMs: number, seed = 1): FabricatedTask[] {
  const rnd = random(seed);
  const duration = () => Math.max(1, Math.round(Math.exp(rnd() * Math.log(20_000))));
  const tasks: FabricatedTask[] = [];
  for (let i = 0; i < n; i++) {
    const createdAt = t0 + Math.floor(rnd() * spanMs);
    const queue = ['emails', 'reports'][i % 2]!;
    const type = ['send', 'render', 'sync'][i % 3]!;
    const attempts: FabricatedAttempt[] = [];
    let at = createdAt + Math.floor(rnd() * 1000);
    if (rnd() < 0.05) {
      tasks.push({ key: `k${i}`, queue, type, state: 'cancelled', createdAt, attempts, finishedAt: at });
      continue;
    }
    const failures = rnd() < 0.25 ? 1 + Math.floor(rnd() * 2) : 0;
    for (let f = 0; f < failures; f++) {
      const d = duration();
      attempts.push({ worker: Math.floor(rnd() * 3), startedAt: at, finishedAt: at + d, outcome: rnd() < 0.2 ? 'lease_expired' : 'failed' });
      at += d + 500;
    }
    const dead = failures > 0 && rnd() < 0.4;
    if (!dead) {
      const d = duration();
      attempts.push({ worker: Math.floor(rnd() * 3), startedAt: at, finishedAt: at + d, outcome: 'succeeded' });
      at += d;
    }
    tasks.push({ key: `k${i}`, queue, type, state: dead ? 'dead' : 'succeeded', createdAt, attempts, finishedAt: dead ? attempts.at(-1)!.finishedAt : at });
  }
  return tasks;
}

const iso = (t: number) => new Date(t).toISOString();

/** Writes the workers, the tasks (as the engine leaves them) and their unsuccessful attempts. */
export async function insertHistory(db: Executor, tasks: FabricatedTask[], lastSeenAt: number): Promise<void> {
  for (const [i, id] of WORKER_IDS.entries()) {
    await db.query(
      `INSERT INTO workers (id, name, queues, concurrency, state, registered_at, last_seen_at, expires_at)
       VALUES ($1, $2, '[]', 10, 'active', $3, $3, $3::timestamptz + interval '1 hour')`,
      [id, `worker-${i}`, iso(lastSeenAt + i * 1000)],
    );
  }
  // In creation order, as the engine would have inserted them: ids follow created_at.
  const rows = [...tasks].sort((a, b) => a.createdAt - b.createdAt).map((t) => {
    const last = t.attempts.at(-1);
    return {
      key: t.key, queue: t.queue, type: t.type, state: t.state, created: iso(t.createdAt), finished: iso(t.finishedAt),
      attempt: t.attempts.length, worker: last ? WORKER_IDS[last.worker] : null, started: last ? iso(last.startedAt) : null,
    };
  });
  await db.query(
    `INSERT INTO queues (name) SELECT DISTINCT r.queue FROM json_to_recordset($1::json) AS r(queue text) ON CONFLICT DO NOTHING`,
    [JSON.stringify(rows)],
  );
  await db.query(
    `INSERT INTO tasks (queue, type, state, run_at, attempt, max_attempts, backoff, timeout_ms, idempotency_key, worker_id,
                        created_at, started_at, finished_at, dead_reason)
     SELECT r.queue, r.type, r.state, r.created, r.attempt, 3, '{"type":"fixed","delayMs":0}', 60000, r.key, r.worker,
            r.created, r.started, r.finished, CASE WHEN r.state = 'dead' THEN 'exhausted' END
       FROM json_to_recordset($1::json) AS r(key text, queue text, type text, state text, created timestamptz, finished timestamptz,
                                             attempt integer, worker uuid, started timestamptz)
      ORDER BY r.created`,
    [JSON.stringify(rows)],
  );
  const failed = tasks.flatMap((t) =>
    t.attempts.flatMap((a, i) => (a.outcome === 'succeeded' ? [] : [{
      key: t.key, attempt: i + 1, worker: WORKER_IDS[a.worker], started: iso(a.startedAt), finished: iso(a.finishedAt), outcome: a.outcome,
    }])),
  );
  await db.query(
    `INSERT INTO attempts (task_id, attempt, worker_id, started_at, finished_at, outcome, error)
     SELECT t.id, r.attempt, r.worker, r.started, r.finished, r.outcome, '{"message":"boom"}'
       FROM json_to_recordset($1::json) AS r(key text, attempt integer, worker uuid, started timestamptz, finished timestamptz, outcome text)
       JOIN tasks t ON t.idempotency_key = r.key`,
    [JSON.stringify(failed)],
  );
}
