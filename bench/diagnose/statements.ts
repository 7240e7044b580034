/**
 * `--only statements`: the engine's hot-path statements (`@taskflow/core/internal`) sent alone
 * from one connection, one at a time, on a table of at most 40,000 tasks: the database's own
 * cost, beside a `SELECT 1` and a one-row `INSERT` that give the machine's scale. For the
 * claims, with `tasks` analyzed (as autovacuum leaves it), also how many executions the plan
 * cache planned for their parameters (custom plans) instead of running the generic plan.
 */
import type pg from 'pg';
import { statements as S, successesJson } from '@taskflow/core/internal';
import { noopInsertParams } from '../lib/insert-params.ts';
import { table } from '../lib/stats.ts';
import { withServer, type DiagnoseContext } from './context.ts';
import { med, timeMs } from './measure.ts';

const q = (c: pg.Client, s: { name: string; text: string }, params: unknown[]) => c.query({ name: s.name, text: s.text, values: params });

/** Medians of the round trip, a one-row insert at both commit modes, and the engine's insert of 1, 50 and 1,000 rows. */
async function inserts(sync: pg.Client, relaxed: pg.Client, r: Record<string, number>): Promise<void> {
  const rt: number[] = [];
  for (let i = 0; i < 3000; i++) rt.push(await timeMs(() => sync.query('SELECT 1')));
  r.selectOneUs = Math.round(med(rt.slice(500)) * 1000);
  await sync.query('CREATE TABLE diag_commit (id bigserial PRIMARY KEY, v int)');
  const cs: number[] = [];
  const ca: number[] = [];
  for (let i = 0; i < 3000; i++) cs.push(await timeMs(() => sync.query('INSERT INTO diag_commit (v) VALUES (1)')));
  for (let i = 0; i < 3000; i++) ca.push(await timeMs(() => relaxed.query('INSERT INTO diag_commit (v) VALUES (1)')));
  r.insertSyncUs = Math.round(med(cs.slice(500)) * 1000);
  r.insertAsyncUs = Math.round(med(ca.slice(500)) * 1000);

  const i1: number[] = [];
  const plain: number[] = [];
  const i50: number[] = [];
  const i1000: number[] = [];
  const plainText = `INSERT INTO tasks (queue, type, state, priority, run_at, payload, max_attempts, backoff, timeout_ms, tags)
    VALUES ('work', 'noop', 'queued', 0, now(), $1::jsonb, 5, '{"type":"exponential","delayMs":1000}', 30000, '{}') RETURNING id`;
  for (let i = 0; i < 1500; i++) i1.push(await timeMs(() => q(sync, S.insertWithoutKeys, noopInsertParams(i, 1))));
  for (let i = 0; i < 1500; i++) plain.push(await timeMs(() => sync.query({ name: 'diag_plain_insert', text: plainText, values: [`{"p":"d","i":${i}}`] })));
  for (let i = 0; i < 100; i++) i50.push(await timeMs(() => q(sync, S.insertWithoutKeys, noopInsertParams(0, 50))));
  for (let b = 0; b < 40; b++) i1000.push(await timeMs(() => q(sync, S.insertWithoutKeys, noopInsertParams(b * 1000, 1000))));
  r.insert1Us = Math.round(med(i1.slice(300)) * 1000);
  r.plainInsert1Us = Math.round(med(plain.slice(300)) * 1000);
  r.insert50Ms = +med(i50.slice(10)).toFixed(2);
  r.insert1000Ms = +med(i1000.slice(5)).toFixed(2);
  await sync.query('DELETE FROM tasks');
  await sync.query('VACUUM ANALYZE tasks');
}

/** Executions of `name` on connection `c` so far with the generic plan and with a custom plan (one planned for them). */
async function plans(c: pg.Client, name: string): Promise<{ generic: number; custom: number }> {
  const { rows } = await c.query('SELECT generic_plans::integer AS generic, custom_plans::integer AS custom FROM pg_prepared_statements WHERE name = $1', [name]);
  return rows[0] ?? { generic: 0, custom: 0 };
}

/**
 * Medians of the claim of B (asynchronous commit) and of the settle-and-claim of B, as the
 * drain sends them, through 20,000 tasks; and how often PostgreSQL's plan cache planned them
 * for the execution (a custom plan) rather than running the statement's generic plan.
 */
async function claims(sync: pg.Client, relaxed: pg.Client, workerId: string, r: Record<string, number>): Promise<void> {
  for (const B of [5, 50, 250]) {
    const before = { claim: await plans(relaxed, S.claim.name), sac: await plans(sync, S.succeedAndClaim.name) };
    for (let b = 0; b < 20; b++) await q(sync, S.insertWithoutKeys, noopInsertParams(b * 1000, 1000));
    await sync.query('ANALYZE tasks');
    const claimed: number[] = [];
    const sac: number[] = [];
    let held = (await q(relaxed, S.claim, ['work', B, workerId, null])).rows;
    for (let k = 0; k < 10; k++) {
      let rows: any[] = [];
      claimed.push(await timeMs(async () => {
        rows = (await q(relaxed, S.claim, ['work', B, workerId, null])).rows;
      }));
      held = held.concat(rows);
    }
    if (held.length !== 11 * B) throw new Error(`11 claims of ${B} took ${held.length} tasks, not ${11 * B}`);
    while (held.length > 0 && sac.length < 20_000 / B + 20) {
      const results = successesJson(held.splice(0, B));
      let rows: any[] = [];
      sac.push(await timeMs(async () => {
        rows = (await q(sync, S.succeedAndClaim, [results, workerId, null, 'work', B])).rows;
      }));
      held = held.concat(rows.filter((t) => t.kind === 'claimed'));
    }
    const after = { claim: await plans(relaxed, S.claim.name), sac: await plans(sync, S.succeedAndClaim.name) };
    r[`claim${B}Custom`] = after.claim.custom - before.claim.custom;
    r[`claim${B}Runs`] = after.claim.custom + after.claim.generic - before.claim.custom - before.claim.generic;
    r[`succeedAndClaim${B}Custom`] = after.sac.custom - before.sac.custom;
    r[`succeedAndClaim${B}Runs`] = after.sac.custom + after.sac.generic - before.sac.custom - before.sac.generic;
    r[`claim${B}Ms`] = +med(claimed).toFixed(2);
    r[`succeedAndClaim${B}Ms`] = +med(sac.slice(2, -3)).toFixed(2);
    await sync.query('DELETE FROM tasks');
    await sync.query('VACUUM ANALYZE tasks');
  }
}

export async function statementsSection(ctx: DiagnoseContext): Promise<unknown> {
  const r: Record<string, number> = {};
  await withServer(ctx, `bench_diagsql_${ctx.runId}`, async (_sys, workerId, connect) => {
    const sync = await connect();
    const relaxed = await connect(true);
    await inserts(sync, relaxed, r);
    await claims(sync, relaxed, workerId, r);
  });
  console.log('\n### The engine\'s statements alone (one connection, one at a time, medians)\n');
  const per = (ms: number, n: number) => `${Math.round((ms * 1000) / n)} µs`;
  const planned = (s: string, B: number) => `${r[`${s}${B}Custom`]} of ${r[`${s}${B}Runs`]}`;
  console.log(table(['statement', 'time', 'per task', 'planned for the execution'], [
    ['`SELECT 1` round trip', `${r.selectOneUs} µs`, '', ''],
    ['one-row `INSERT`, synchronous commit / asynchronous', `${r.insertSyncUs} µs / ${r.insertAsyncUs} µs`, '', ''],
    ['`insertWithoutKeys`, 1 row', `${r.insert1Us} µs`, `${r.insert1Us} µs`, ''],
    ['plain `INSERT … VALUES` of one task, same columns', `${r.plainInsert1Us} µs`, `${r.plainInsert1Us} µs`, ''],
    ['`insertWithoutKeys`, 50 rows', `${r.insert50Ms} ms`, per(r.insert50Ms!, 50), ''],
    ['`insertWithoutKeys`, 1,000 rows', `${r.insert1000Ms} ms`, per(r.insert1000Ms!, 1000), ''],
    ...[5, 50, 250].map((B) => [`\`claim\` of ${B} (asynchronous commit)`, `${r[`claim${B}Ms`]} ms`, per(r[`claim${B}Ms`]!, B), planned('claim', B)]),
    ...[5, 50, 250].map((B) => [`\`succeedAndClaim\`, ${B} results + claim of ${B}`, `${r[`succeedAndClaim${B}Ms`]} ms`, per(r[`succeedAndClaim${B}Ms`]!, B), planned('succeedAndClaim', B)]),
  ]));
  return r;
}
