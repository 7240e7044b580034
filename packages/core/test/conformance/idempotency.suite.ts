/**
 * Conformance of idempotency keys, on each driver: a key is unique within its queue while its
 * task exists (task_idempotency_keys, migration NNNN_idempotency_keys); a repeat answers the
 * first task; a batch mixes keyed and unkeyed tasks, repeats a key, and meets keys of earlier
 * submissions; claims and settlements leave the key alone; the dead-letter purge frees it; a
 * task with a unique key too records its idempotency key only when it is created; concurrent
 * batches of the same keys in any order make one task per key; the migration carries the keys
 * of existing tasks over. Time is a ManualClock.
 */
import { describe, expect, it } from 'vitest';
import { Engine, ManualClock, loadMigrations, migrate, silentLogger, type Database, type DriverName, type TaskInput } from '@taskflow/core';
import { useTestDatabases } from '../support/db.ts';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const Q = [{ name: 'q', weight: 1 }];

export function describeIdempotencyConformance(driver: DriverName): void {
  const dbs = useTestDatabases(driver);

  async function setup(db?: Database) {
    db ??= await dbs.fresh();
    const clock = new ManualClock(T0);
    const engine = new Engine({ db, clock, options: { defaultBackoff: { type: 'fixed', delayMs: 1000 } } });
    const worker = async () => (await engine.registerWorker({ name: 'w', queues: Q, concurrency: 100 })).id;
    return { db, clock, engine, worker };
  }

  /** The rows of task_idempotency_keys, as `queue/key -> task id`. */
  async function keyRows(db: Database): Promise<Record<string, string>> {
    const { rows } = await db.query(`SELECT queue, idempotency_key, task_id::text AS task_id FROM task_idempotency_keys ORDER BY 1, 2`);
    return Object.fromEntries(rows.map((r) => [`${r.queue}/${r.idempotency_key}`, r.task_id]));
  }

  describe(`idempotency keys (${driver})`, () => {
    it('answers each task of a mixed batch: created, a repeat of an earlier key, a key repeated within the batch', async () => {
      const { db, engine } = await setup();
      const [earlier] = await engine.enqueue([{ type: 't', queue: 'q', idempotencyKey: 'old', payload: 0 }]);
      const later = new Date(T0.getTime() + 60_000);
      const out = await engine.enqueue([
        { type: 't', queue: 'q', payload: 1 },
        { type: 't', queue: 'q', idempotencyKey: 'z', payload: 2 },
        { type: 't', queue: 'q', idempotencyKey: 'old', payload: 3 },
        { type: 't', queue: 'q', idempotencyKey: 'a', payload: 4, runAt: later },
        { type: 't', queue: 'q', idempotencyKey: 'z', payload: 5 },
        { type: 't', queue: 'q2', idempotencyKey: 'old', payload: 6 },
        { type: 't', queue: 'q', payload: 7, priority: 3 },
      ]);
      expect(out.map((r) => r.created)).toEqual([true, true, false, true, false, true, true]);
      expect(out[2]).toMatchObject({ deduplicated: 'idempotency', task: { id: earlier!.task.id, payload: 0 } });
      expect(out[4]).toMatchObject({ deduplicated: 'idempotency', task: { id: out[1]!.task.id, payload: 2 } });
      expect(out[3]!.task).toMatchObject({ state: 'scheduled', runAt: later, idempotencyKey: 'a' });
      expect(out[6]!.task).toMatchObject({ state: 'queued', priority: 3, idempotencyKey: null });
      // Each created task is the one submitted at its position, as stored.
      for (const k of [0, 1, 3, 5, 6]) {
        expect(await engine.getTask(out[k]!.task.id)).toEqual(out[k]!.task);
        expect(out[k]!.ref).toMatchObject({ id: out[k]!.task.id, idempotencyKey: out[k]!.task.idempotencyKey });
      }
      expect(new Set(out.map((r) => r.task.id)).size).toBe(6);
      expect(await keyRows(db)).toEqual({
        'q/a': out[3]!.task.id, 'q/old': earlier!.task.id, 'q/z': out[1]!.task.id, 'q2/old': out[5]!.task.id,
      });
      // Only keys: every one a repeat.
      const again = await engine.enqueue([{ type: 't', queue: 'q', idempotencyKey: 'z' }, { type: 't', queue: 'q', idempotencyKey: 'a' }]);
      expect(again.map((r) => [r.created, r.task.id])).toEqual([[false, out[1]!.task.id], [false, out[3]!.task.id]]);
      expect(await engine.listTasks({ limit: 100 })).toHaveLength(6);
    });

    it('keeps the key through the claim and the settlement: a repeat after success answers the finished task', async () => {
      const { engine, worker } = await setup();
      const [first] = await engine.enqueue([{ type: 't', queue: 'q', idempotencyKey: 'once', payload: 'a' }]);
      const w = await worker();
      const [claimed] = await engine.claim(w, Q, 10);
      expect(claimed!.id).toBe(first!.task.id);
      await engine.settle(w, [{ id: claimed!.id, attempt: claimed!.attempt, status: 'succeeded', result: 'done' }]);
      const [repeat] = await engine.enqueue([{ type: 't', queue: 'q', idempotencyKey: 'once', payload: 'b' }]);
      expect(repeat).toMatchObject({ created: false, deduplicated: 'idempotency', task: { id: first!.task.id, state: 'succeeded', result: 'done', payload: 'a' } });
    });

    it('frees the keys of the tasks the dead-letter purge deletes', async () => {
      const { db, engine, worker } = await setup();
      const made = await engine.enqueue([
        { type: 't', queue: 'q', idempotencyKey: 'gone', maxAttempts: 1 },
        { type: 't', queue: 'q', idempotencyKey: 'kept' },
      ]);
      const w = await worker();
      const [claimed] = await engine.claim(w, Q, 1);
      expect(claimed!.id).toBe(made[0]!.task.id);
      await engine.settle(w, [{ id: claimed!.id, attempt: claimed!.attempt, status: 'failed', error: { message: 'x' } }]);
      expect(await engine.purgeDead({ queue: 'q' })).toBe(1);
      expect(await keyRows(db)).toEqual({ 'q/kept': made[1]!.task.id });
      const [fresh, kept] = await engine.enqueue([{ type: 't', queue: 'q', idempotencyKey: 'gone' }, { type: 't', queue: 'q', idempotencyKey: 'kept' }]);
      expect(fresh!.created).toBe(true);
      expect(fresh!.task.id).not.toBe(made[0]!.task.id);
      expect(kept).toMatchObject({ created: false, task: { id: made[1]!.task.id } });
    });

    it('with a unique key too, records the idempotency key only for a task created', async () => {
      const { db, engine, worker } = await setup();
      const both = (idempotencyKey: string): TaskInput => ({ type: 't', queue: 'q', uniqueKey: 'u', idempotencyKey });
      const [first] = await engine.enqueue([both('i1')]);
      expect(first!.created).toBe(true);
      // The same submission again: its idempotency key answers first.
      const [retried] = await engine.enqueue([both('i1')]);
      expect(retried).toMatchObject({ created: false, deduplicated: 'idempotency', task: { id: first!.task.id } });
      // Another submission while the unique key is held: no task, and no key row for i2.
      const [held] = await engine.enqueue([both('i2')]);
      expect(held).toMatchObject({ created: false, deduplicated: 'unique', task: { id: first!.task.id } });
      expect(await keyRows(db)).toEqual({ 'q/i1': first!.task.id });
      // Once the holder finished, the unique key is free; i1 is still the first task's.
      const w = await worker();
      const [c] = await engine.claim(w, Q, 1);
      await engine.settle(w, [{ id: c!.id, attempt: c!.attempt, status: 'succeeded' }]);
      const [replay] = await engine.enqueue([both('i1')]);
      expect(replay).toMatchObject({ created: false, deduplicated: 'idempotency', task: { id: first!.task.id } });
      // That replay took the free unique key for a task it did not make, and gave it back.
      const { rows } = await db.query(`SELECT count(*)::integer AS n FROM task_unique_keys`);
      expect(rows[0]!.n).toBe(0);
      const [second] = await engine.enqueue([both('i2')]);
      expect(second!.created).toBe(true);
      expect(await keyRows(db)).toEqual({ 'q/i1': first!.task.id, 'q/i2': second!.task.id });
    });

    it('makes one task per key when concurrent batches submit the same keys in any order', async () => {
      const { db, engine } = await setup();
      const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
      /** The keys in an order of their own for each seed (Fisher-Yates over MINSTD: the same every run). */
      const shuffled = (seed: number) => {
        const out = [...keys];
        let x = seed + 1;
        for (let i = out.length - 1; i > 0; i--) {
          x = (x * 48271) % 2147483647;
          const j = x % (i + 1);
          [out[i], out[j]] = [out[j]!, out[i]!];
        }
        return out;
      };
      const rounds = await Promise.all(Array.from({ length: 8 }, (_, r) => {
        const order = shuffled(r);
        return engine.enqueue([...order.map((key) => ({ type: 't', queue: 'q', idempotencyKey: key, payload: r })), { type: 't', queue: 'q', payload: -1 }])
          .then((out) => ({ order, out }));
      }));
      const idOf = new Map<string, string>();
      let created = 0;
      for (const { order, out } of rounds) {
        order.forEach((key, i) => {
          const id = out[i]!.task.id;
          expect(idOf.get(key) ?? id, `key ${key} answers one task`).toBe(id);
          idOf.set(key, id);
          if (out[i]!.created) created++;
          expect(out[i]!.task.idempotencyKey).toBe(key);
        });
      }
      expect(created).toBe(keys.length);
      const rows = await keyRows(db);
      expect(Object.keys(rows)).toHaveLength(keys.length);
      for (const key of keys) expect(rows[`q/${key}`]).toBe(idOf.get(key));
      expect(await engine.listTasks({ queue: 'q', limit: 500 })).toHaveLength(keys.length + 8);
    });

    it('the migration carries the keys of existing tasks over', async () => {
      const db = await dbs.fresh({ migrate: false });
      const all = loadMigrations();
      const at = all.findIndex((m) => m.name === 'idempotency_keys');
      expect(at).toBeGreaterThan(0);
      await migrate(db, silentLogger, all.slice(0, at));
      const { rows } = await db.query(
        `INSERT INTO tasks (queue, type, state, run_at, max_attempts, backoff, timeout_ms, idempotency_key)
         VALUES ('q', 't', 'queued', now(), 5, '{"type":"fixed","delayMs":1000}', 30000, 'before'),
                ('q', 't', 'queued', now(), 5, '{"type":"fixed","delayMs":1000}', 30000, NULL)
         RETURNING id::text AS id`,
      );
      await migrate(db, silentLogger);
      expect(await keyRows(db)).toEqual({ 'q/before': rows[0]!.id });
      const { engine } = await setup(db);
      const [old, fresh] = await engine.enqueue([{ type: 't', queue: 'q', idempotencyKey: 'before' }, { type: 't', queue: 'q', idempotencyKey: 'after' }]);
      expect(old).toMatchObject({ created: false, task: { id: rows[0]!.id } });
      expect(fresh!.created).toBe(true);
    });
  });
}
