/**
 * The embedded driver's vacuum duty (Maintenance, PGlite only): PGlite runs no autovacuum, so
 * without it the ready index keeps the entry of every task ever claimed and every claim steps
 * over them. On PostgreSQL the duty does not exist: autovacuum does the work there.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, Maintenance, type Logger } from '@taskflow/core';
import { testDatabases } from './support/db.ts';

function recordingLogger() {
  const infos: { obj: any; msg?: string }[] = [];
  const logger: Logger = { debug() {}, info: (obj, msg) => void infos.push({ obj, msg }), warn() {}, error() {} };
  return { logger, infos };
}

/** Runs `n` tasks through a claim and a success each: 2n replaced row versions. */
async function runTasks(engine: Engine, n: number): Promise<void> {
  const worker = (await engine.registerWorker({ name: 'w', queues: [{ name: 'q', weight: 1 }], concurrency: 10 })).id;
  await engine.enqueue(Array.from({ length: n }, (_, i) => ({ type: 't', queue: 'q', payload: { i } })));
  const tasks = await engine.claim(worker, [{ name: 'q', weight: 1 }], n);
  expect(tasks).toHaveLength(n);
  const outcomes = await engine.settle(worker, tasks.map((t) => ({ id: t.id, attempt: t.attempt, status: 'succeeded' as const })));
  expect(outcomes.every((o) => o === 'accepted')).toBe(true);
}

/** Buffers a claim's scan of queue `q` reads: it steps over the leaf pages of dead ready-index entries. */
async function readyIndexScanCost(engine: Engine): Promise<number> {
  const { rows } = await engine.db.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
    SELECT id FROM tasks WHERE queue = 'q' AND state = 'queued' ORDER BY priority DESC, run_at, id LIMIT 10`);
  const plan = rows[0]!['QUERY PLAN'];
  const root = (typeof plan === 'string' ? JSON.parse(plan) : plan)[0].Plan;
  return root['Shared Hit Blocks'] + root['Shared Read Blocks'];
}

describe('the vacuum duty (embedded)', () => {
  const dbs = testDatabases('pglite');
  afterAll(() => dbs.closeAll());

  it('vacuums the tasks table once enough row versions were replaced, and the ready index is light again', async () => {
    const db = await dbs.fresh();
    const engine = new Engine({ db });
    const { logger, infos } = recordingLogger();
    const maintenance = new Maintenance(engine, logger, { vacuumAfter: 1000, vacuumIntervalMs: 10, rescueIntervalMs: 60_000, promoteIntervalMs: 60_000 });
    try {
      maintenance.start();
      await runTasks(engine, 300); // 600 replaced versions: below the threshold
      const dirty = await readyIndexScanCost(engine);
      await new Promise((r) => setTimeout(r, 100)); // ten passes of the duty
      expect(infos.filter((i) => i.msg === 'vacuumed the tasks table')).toEqual([]);
      await runTasks(engine, 300); // 1200 in all
      await expect.poll(() => infos.filter((i) => i.msg === 'vacuumed the tasks table').length, { timeout: 10_000 }).toBe(1);
      expect(infos.find((i) => i.msg === 'vacuumed the tasks table')!.obj.replaced).toBe(1200);
      // The 600 claimed tasks' entries are gone: an empty queue's claim scan reads less than
      // it did with 300 of them.
      expect(await readyIndexScanCost(engine)).toBeLessThan(dirty);
    } finally {
      await maintenance.stop();
    }
  });

  it('is not started on PostgreSQL, where autovacuum does the work', async () => {
    const pg = testDatabases('postgres');
    try {
      const engine = new Engine({ db: await pg.fresh() });
      const { logger, infos } = recordingLogger();
      const maintenance = new Maintenance(engine, logger, { vacuumAfter: 1, vacuumIntervalMs: 10, rescueIntervalMs: 60_000, promoteIntervalMs: 60_000 });
      maintenance.start();
      await runTasks(engine, 10);
      await new Promise((r) => setTimeout(r, 100));
      await maintenance.stop();
      expect(infos.filter((i) => i.msg === 'vacuumed the tasks table')).toEqual([]);
      // The engine still counts; only the embedded driver acts on it.
      expect(engine.takeChurn()).toBe(20);
    } finally {
      await pg.closeAll();
    }
  });
});
