/**
 * Firing exactly once across nodes, with real processes: three `taskflow start` nodes on one
 * PostgreSQL schema all run the firing duty; a schedule fires every second for 30 seconds; one
 * node is killed with SIGKILL midway (whatever it was doing, a fire's transaction included).
 * The fire records and the tasks must show each of the 30 fire times exactly once: none lost,
 * none doubled, each task carrying its fire time.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import pg from 'pg';
import { TaskflowClient } from '@taskflow/sdk';
import { quoteIdent } from '@taskflow/core';
import { TEST_DATABASE_URL, dropSchema, freshSchema } from '@taskflow/core/test-support';
import { killAll, startServerProcess } from './support/processes.ts';

const KEY = `tf_sched_${randomBytes(12).toString('hex')}`;
const FIRES = 30;

describe('schedules on three nodes, one killed midway (PostgreSQL)', () => {
  const schema = freshSchema('tfsched');
  const clients: TaskflowClient[] = [];
  afterAll(async () => {
    await killAll();
    await Promise.all(clients.map((c) => c.close()));
    await dropSchema(schema);
  });

  it('fires each second once: 30 fires, none lost, none doubled', { timeout: 120_000 }, async () => {
    const env = { DATABASE_URL: TEST_DATABASE_URL, TASKFLOW_SCHEMA: schema, TASKFLOW_BOOTSTRAP_API_KEY: KEY, DATABASE_POOL_SIZE: '3' };
    const nodes = await Promise.all([0, 1, 2].map(() => startServerProcess(env)));
    for (const n of nodes) clients.push(new TaskflowClient({ url: n.url, apiKey: KEY }));
    const [a, , c] = clients;

    // Whole seconds from two seconds on: every node is up and its duty running by then.
    const start = Math.ceil(Date.now() / 1000) * 1000 + 2000;
    const s = await a!.createSchedule({
      name: 'every-second', cron: '* * * * * *', template: { type: 'tick', queue: 'ticks' },
      startsAt: new Date(start).toISOString(), endsAt: new Date(start + FIRES * 1000).toISOString(),
    });

    // Midway: kill a node that is firing like the others.
    await vi.waitFor(async () => {
      const fires = await c!.listScheduleFires(s.id, { limit: 500 });
      if (fires.items.length < FIRES / 2) throw new Error(`${fires.items.length} fires so far`);
    }, { timeout: 60_000, interval: 200 });
    const killedAt = Date.now();
    nodes[1]!.proc.child.kill('SIGKILL');
    expect((await nodes[1]!.proc.exited).signal).toBe('SIGKILL');

    // The end: no fire is left to fire.
    const done = await vi.waitFor(async () => {
      const now = await c!.getSchedule(s.id);
      if (now.nextFireAt !== null) throw new Error(`next fire at ${now.nextFireAt}`);
      return now;
    }, { timeout: 60_000, interval: 250 });

    const expected = Array.from({ length: FIRES }, (_, k) => new Date(start + k * 1000).toISOString());
    const fires = (await a!.listScheduleFires(s.id, { limit: 500 })).items.reverse();
    expect(fires.map((f) => f.fireTime)).toEqual(expected);
    expect(fires.every((f) => f.outcome === 'created' && f.taskId !== null)).toBe(true);
    expect(done.lastFireTime).toBe(expected.at(-1));
    // The survivors carried on: the fires after the kill are there too (all of them, above).
    expect(fires.filter((f) => Date.parse(f.fireTime) > killedAt).length).toBeGreaterThanOrEqual(5);

    // The tasks themselves: one per fire time, and each the one its fire record names.
    const db = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await db.connect();
    try {
      const { rows } = await db.query<{ id: string; fire_time: Date }>(
        `SELECT id::text, fire_time FROM ${quoteIdent(schema)}.tasks WHERE schedule_id = $1 ORDER BY fire_time`, [s.id],
      );
      expect(rows.map((r) => r.fire_time.toISOString())).toEqual(expected);
      expect(rows.map((r) => r.id)).toEqual(fires.map((f) => f.taskId));
      const all = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${quoteIdent(schema)}.tasks`);
      expect(all.rows[0]!.n).toBe(FIRES);
    } finally {
      await db.end();
    }
  });
});
