/**
 * What the alert evaluation costs: one pass of the seeded default rules, and each rule kind's
 * value statement, with a backlog of ready tasks and a history of finished ones.
 *
 *   npm run alerts -- [--ready 200000] [--finished 200000] [--samples 5]
 *
 * Fabricates, in a schema of its own after the migrations, `--ready` queued tasks over 10
 * queues and `--finished` tasks that succeeded over the last two days (in finished_at order,
 * as they were written), then VACUUM ANALYZE (which also summarizes the BRIN index of
 * finished_at). Prints the median of `--samples` runs of each; drops the schema.
 *
 * The nodes share one pass per TASKFLOW_ALERTS_INTERVAL_MS (15 s): the first node's duty claims
 * the rules, the others find nothing due. The windowed kinds read the BRIN index and cost the
 * window's rows; counted, queue_depth and oldest_ready_age read the ready set of their scope
 * and cost the backlog (unscoped: every queue's), which is why the duty's pass reads them, but
 * by type, from the queue gauges' snapshot (one refresh per period across the nodes).
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Alerts, Engine, migrate, openPostgres, quoteIdent, silentLogger } from '@taskflow/core';
import * as A from '../packages/core/src/sql/alerts.ts';

const { values: args } = parseArgs({
  options: {
    ready: { type: 'string', default: '200000' },
    finished: { type: 'string', default: '200000' },
    samples: { type: 'string', default: '5' },
  },
});
const READY = Number(args.ready);
const FINISHED = Number(args.finished);
const SAMPLES = Number(args.samples);
const URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function median(run: () => Promise<unknown>): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = performance.now();
    await run();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return Math.round(ts[Math.floor(ts.length / 2)]! * 10) / 10;
}

const schema = `bench_alerts_${randomBytes(4).toString('hex')}`;
const db = await openPostgres({ connectionString: URL, schema, poolSize: 2, logger: silentLogger });
try {
  await migrate(db, silentLogger);
  await db.query(`INSERT INTO queues (name) SELECT 'q' || i FROM generate_series(0, 9) i`);
  await db.query(`INSERT INTO tasks (queue, type, state, run_at, max_attempts, backoff, timeout_ms, created_at, started_at, finished_at)
    SELECT 'q' || (i % 10), 't', 'succeeded', f, 3, '{"type":"fixed","delayMs":0}', 60000, f, f, f
      FROM (SELECT i, now() - ((($1::bigint - i) * 172800000 / $1::bigint) || ' ms')::interval AS f FROM generate_series(1, $1) i) x`, [FINISHED]);
  await db.query(`INSERT INTO tasks (queue, type, state, run_at, max_attempts, backoff, timeout_ms)
    SELECT 'q' || (i % 10), 't', 'queued', now() - (i || ' ms')::interval, 3, '{"type":"fixed","delayMs":0}', 60000 FROM generate_series(1, $1) i`, [READY]);
  await db.query(`VACUUM ANALYZE tasks`);

  const now = () => new Date();
  const ago = (ms: number) => new Date(Date.now() - ms);
  const engine = new Engine({ db });
  const alerts = new Alerts(engine);
  const interval = 15_000;
  console.log(`ready ${READY}, finished ${FINISHED}, median of ${SAMPLES}, ms:`);
  console.log(`  a pass of the 7 default rules, counted   ${await median(() => alerts.evaluate())}`);
  console.log(`  the stats snapshot's refresh             ${await median(() => engine.refreshStats(0))}`);
  console.log(`  a pass, depth and age from the snapshot  ${await median(() => alerts.evaluate({ snapshotMaxAgeMs: interval }))}`);
  await alerts.evaluateDue(interval);
  console.log(`  a pass another node made first           ${await median(() => alerts.evaluateDue(interval))}`);
  const cases: [string, typeof A.alertValueQueueDepth, () => unknown[]][] = [
    ['queue_depth, every queue', A.alertValueQueueDepth, () => [now(), null, null]],
    ['queue_depth, one queue', A.alertValueQueueDepth, () => [now(), 'q1', null]],
    ['queue_depth, one type', A.alertValueQueueDepth, () => [now(), null, 't']],
    ['queue_depth, one type, threshold 1000', A.alertValueQueueDepthCapped, () => [now(), null, 't', 1001]],
    ['oldest_ready_age, every queue', A.alertValueOldestReadyAge, () => [now(), null, null]],
    ['oldest_ready_age, one queue', A.alertValueOldestReadyAge, () => [now(), 'q1', null]],
    ['failure_rate, 10 min', A.alertValueFailureRate, () => [now(), null, null, ago(600_000)]],
    ['dead_letter_growth, 15 min', A.alertValueDeadGrowth, () => [now(), null, null, ago(900_000)]],
    ['no_completions, 15 min', A.alertValueCompletions, () => [now(), null, null, ago(900_000)]],
    ['workers_online_below', A.alertValueWorkersOnline, () => [now(), null]],
    ['schedule_missed_fire, 15 min', A.alertValueMissedFires, () => [now(), null, null, ago(900_000)]],
  ];
  for (const [name, statement, params] of cases) {
    console.log(`  ${name.padEnd(40)} ${await median(() => db.query(statement, params()))}`);
  }
} finally {
  await db.query(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`);
  await db.close();
}
