/**
 * `--only backlog`: does the claim cost more when many tasks wait? The claim of 250 (as the
 * drain sends it, asynchronous commit, 80 in a row) and the drain's settle-and-claim of 250
 * (synchronous commit, 79 in a row), with 10,000 and then 1,000,000 tasks waiting: from
 * another queue, and from the same queue under tasks of higher priority. Also the two counts
 * scaling.ts can poll with (`--poll completed` / `unfinished`) at both sizes.
 */
import type pg from 'pg';
import { statements as S, successesJson } from '@taskflow/core/internal';
import { fmt, table } from '../lib/stats.ts';
import { UNFINISHED_COUNT_SQL } from '../systems/taskflow.ts';
import { withServer, type DiagnoseContext } from './context.ts';
import { med, timeMs } from './measure.ts';

const CLAIM = { name: 'claim', text: S.claim.text };
const SETTLE = { name: 'sac', text: S.succeedAndClaim.text };
const ms2 = (t: number[]) => `${med(t).toFixed(2)} ms`;
const firstLast = (t: number[]) => `${med(t.slice(0, 10)).toFixed(2)} / ${med(t.slice(-10)).toFixed(2)} ms`;

/** 20,000 tasks of `queue` claimed 250 at a time, then 19,750 settled 250 at a time with the next claim. */
async function claimThrough(c: pg.Client, relaxed: pg.Client, workerId: string, queue: string, label: string, backlog: number): Promise<{ rows: string[][]; data: Record<string, unknown>[] }> {
  const t: number[] = [];
  let claimed = 0;
  for (let k = 0; k < 80; k++) {
    t.push(await timeMs(async () => {
      claimed += (await relaxed.query({ ...CLAIM, values: [queue, 250, workerId, null] })).rowCount ?? 0;
    }));
  }
  // A claim that returns nothing costs a fraction of one that takes 250: not a measurement.
  if (claimed !== 20_000) throw new Error(`backlog ${backlog}, ${label}: 80 claims of 250 took ${claimed} tasks, not 20,000`);
  await relaxed.query(`UPDATE tasks SET state = 'succeeded', lease_expires_at = NULL, finished_at = now() WHERE state = 'running'`);
  const s: number[] = [];
  let held = (await relaxed.query({ ...CLAIM, values: [queue, 250, workerId, null] })).rows;
  let settled = 0;
  for (let k = 0; k < 79; k++) {
    const results = successesJson(held);
    s.push(await timeMs(async () => {
      const rows = (await c.query({ ...SETTLE, values: [results, workerId, null, queue, 250] })).rows;
      settled += (rows[0]!.id as string | null)?.split(',').length ?? 0;
      held = rows.slice(1);
    }));
  }
  if (settled !== 79 * 250) throw new Error(`backlog ${backlog}, ${label}: 79 settle-and-claims settled ${settled} tasks, not ${79 * 250}`);
  await relaxed.query(`UPDATE tasks SET state = 'succeeded', lease_expires_at = NULL, finished_at = now() WHERE state = 'running'`);
  return {
    rows: [
      [`${label}: \`claim\` of 250`, ms2(t), firstLast(t)],
      [`${label}: \`succeedAndClaim\`, 250 results and a claim of 250`, ms2(s), firstLast(s)],
    ],
    data: [
      { where: label, claimed, claim250MedianMs: +med(t).toFixed(2), firstTenMs: +med(t.slice(0, 10)).toFixed(2), lastTenMs: +med(t.slice(-10)).toFixed(2) },
      { where: label, settled, succeedAndClaim250MedianMs: +med(s).toFixed(2), firstTenMs: +med(s.slice(0, 10)).toFixed(2), lastTenMs: +med(s.slice(-10)).toFixed(2) },
    ],
  };
}

/** The counts scaling.ts's drain polls with once the worker has started the last task, 500 tasks still running. */
async function pollCounts(c: pg.Client, workerId: string): Promise<Record<string, number>> {
  const count = async (sql: string, params: unknown[] = []) => {
    const t: number[] = [];
    for (let k = 0; k < 7; k++) t.push(await timeMs(() => c.query(sql, params)));
    return +med(t.slice(2)).toFixed(1);
  };
  await c.query(`UPDATE tasks SET state = 'succeeded' WHERE state = 'running'`);
  const other = await count(`SELECT count(*)::int AS n FROM tasks WHERE queue = 'hot' AND state = 'succeeded'`);
  const same = await count(`SELECT count(*)::int AS n FROM tasks WHERE queue = 'cold' AND priority = 10 AND state = 'succeeded'`);
  await c.query(`UPDATE tasks SET state = 'running', worker_id = $1 WHERE id IN (SELECT id FROM tasks WHERE priority = 10 LIMIT 500)`, [workerId]);
  return {
    completionCountOtherMs: other, completionCountSameMs: same,
    unfinishedCountOtherMs: await count(UNFINISHED_COUNT_SQL, ['hot', 0]), unfinishedCountSameMs: await count(UNFINISHED_COUNT_SQL, ['cold', 10]),
  };
}

export async function backlogSection(ctx: DiagnoseContext): Promise<unknown> {
  const rows: string[][] = [];
  const data: Record<string, unknown>[] = [];
  await withServer(ctx, `bench_diagbl_${ctx.runId}`, async (_sys, workerId, connect) => {
    const c = await connect();
    const relaxed = await connect(true);
    let cold = 0;
    await c.query(`INSERT INTO queues (name) VALUES ('cold'), ('hot') ON CONFLICT DO NOTHING`);
    const fill = (queue: string, priority: number, from: number, to: number) => c.query(
      `INSERT INTO tasks (queue, type, state, priority, run_at, payload, max_attempts, backoff, timeout_ms)
       SELECT $1, 'noop', 'queued', $2, now(), jsonb_build_object('i', g), 5, '{"type":"fixed","delayMs":1000}', 30000
         FROM generate_series($3::int, $4::int) g`, [queue, priority, from, to]);
    for (const backlog of [10_000, 1_000_000]) {
      console.error(`  backlog ${fmt(backlog)} ...`);
      await fill('cold', 0, cold, backlog - 1);
      cold = backlog;
      // 20,000 for the claims alone, then 20,000 for the claims that also settle.
      await fill('hot', 0, 1, 40_000);
      await fill('cold', 10, 1, 40_000);
      await c.query('CHECKPOINT');
      await c.query('ANALYZE tasks');
      for (const [queue, where] of [['hot', 'other queue'], ['cold', 'same queue (priority 10 over the backlog)']] as const) {
        const r = await claimThrough(c, relaxed, workerId, queue, where, backlog);
        rows.push(...r.rows.map((row) => [fmt(backlog), ...row]));
        data.push(...r.data.map((d) => ({ backlog, ...d })));
      }
      const p = await pollCounts(c, workerId);
      data.push({ backlog, ...p });
      rows.push([fmt(backlog), 'scaling.ts --poll completed: count of succeeded (other queue / same queue)', `${p.completionCountOtherMs} / ${p.completionCountSameMs} ms`, '']);
      rows.push([fmt(backlog), 'scaling.ts --poll unfinished: count of unfinished (other queue / same queue)', `${p.unfinishedCountOtherMs} / ${p.unfinishedCountSameMs} ms`, '']);
      await c.query(`DELETE FROM tasks WHERE queue = 'hot' OR priority = 10`);
      await c.query(`VACUUM ANALYZE tasks`);
    }
  });
  console.log('\n### The claim against the backlog (claims of 250, one connection, asynchronous commit, 80 in a row; then the settle-and-claim, synchronous commit, 79 in a row)\n');
  console.log(table(['backlog waiting in cold', 'claiming from', 'median', 'first 10 / last 10'], rows));
  return data;
}
