/**
 * The analytics API with a large history: how long each endpoint takes to answer with
 * 10,000,000 attempts recorded, and what the rollup duty costs to build and keep up.
 *
 *   npm run analytics -- [--attempts 10000000] [--days 7] [--queues 10] [--types 5] [--workers 20] [--samples 30] [--keep] [--reuse <schema> [--skip-rollup]]
 *
 * 1. Fabricates the history in SQL (generate_series, into a schema of its own, after the
 *    migrations), as the engine leaves it: 90% of the attempts are tasks (one row each, in
 *    creation order, spread evenly over `--days` ending ten minutes ago), 1 in 30 of them dead
 *    after two failed attempts, 7 in 90 succeeded after one failed attempt (a fifth of those
 *    an expired lease), the rest succeeded at once; durations log-uniform over 1 ms – 20 s;
 *    the failed attempts in `attempts`. Then VACUUM ANALYZE (the bench cluster runs no
 *    autovacuum).
 * 2. Runs the rollup duty's passes until it has caught up (the backfill, an hour per pass),
 *    then five steady passes (each recomputes the last minutes, as every 15 s in service).
 * 3. Starts a Taskflow server on the schema (duties off) and asks each endpoint `--samples`
 *    times after three warm-up requests, one at a time, over HTTP: p50 and p95 answer time.
 * 4. For scale: the same p95 per queue and type computed from the raw tasks table, once.
 *
 * Writes results/analytics-<time>.json; drops the schema unless --keep. `--reuse <schema>`
 * starts from a schema a run kept (its history, not its rollups, which are cleared), at the
 * rollup: the fabrication takes minutes. With `--skip-rollup` it keeps the rollups too and
 * only measures the endpoints.
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Analytics, databaseClock, migrate, openPostgres, quoteIdent, silentLogger, type Database } from '@taskflow/core';
import { loadConfig, startService } from '@taskflow/server';
import { adminQuery } from './lib/pg.ts';
import { describeEnvironment } from './lib/env.ts';
import { fmt, summarize, table } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    attempts: { type: 'string', default: '10000000' },
    days: { type: 'string', default: '7' },
    queues: { type: 'string', default: '10' },
    types: { type: 'string', default: '5' },
    workers: { type: 'string', default: '20' },
    samples: { type: 'string', default: '30' },
    keep: { type: 'boolean', default: false },
    reuse: { type: 'string' },
    'skip-rollup': { type: 'boolean', default: false },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const ATTEMPTS = Number(args.attempts);
const TASKS = Math.round(ATTEMPTS * 0.9);
const DAYS = Number(args.days);
const [QUEUES, TYPES, WORKERS, SAMPLES] = [args.queues, args.types, args.workers, args.samples].map(Number) as [number, number, number, number];
const DB = args['database-url']!;
const schema = args.reuse ?? `bench_analytics_${randomBytes(4).toString('hex')}`;
const DAY = 86_400_000;

const seconds = (t0: number) => (performance.now() - t0) / 1000;

/** Tasks as the engine leaves them, in creation order; durations log-uniform over 1 ms – 20 s. */
const FABRICATE_TASKS = `
WITH g AS (
  SELECT g, now() - interval '10 minutes' - make_interval(days => $1) + (g::float8 / $2) * make_interval(days => $1) AS created,
         g % 30 = 0 AS dead, g % 90 BETWEEN 1 AND 7 AS retried,
         exp(random() * ln(20000)) * interval '1 millisecond' AS d1, exp(random() * ln(20000)) * interval '1 millisecond' AS d2
    FROM generate_series(1, $2::bigint) AS g
)
INSERT INTO tasks (queue, type, state, run_at, attempt, max_attempts, backoff, timeout_ms, worker_id,
                   created_at, started_at, finished_at, dead_reason)
SELECT 'q' || (g % $3), 't' || ((g / $3) % $4), CASE WHEN dead THEN 'dead' ELSE 'succeeded' END, created,
       CASE WHEN dead OR retried THEN 2 ELSE 1 END, 2, '{"type":"fixed","delayMs":1000}', 60000,
       ('00000000-0000-4000-8000-' || lpad(to_hex(g % $5), 12, '0'))::uuid,
       created, CASE WHEN dead OR retried THEN created + d1 + interval '1 second' ELSE created + interval '50 milliseconds' END,
       CASE WHEN dead OR retried THEN created + d1 + d2 + interval '1 second' ELSE created + interval '50 milliseconds' + d2 END,
       CASE WHEN dead THEN 'exhausted' END
  FROM g ORDER BY g`;

/** The failed attempts: the first of every task on its second attempt, and a dead task's second. */
const FABRICATE_ATTEMPTS = `
INSERT INTO attempts (task_id, attempt, worker_id, started_at, finished_at, outcome, error)
SELECT id, n, worker_id, CASE n WHEN 1 THEN created_at ELSE started_at END,
       CASE n WHEN 1 THEN started_at - interval '1 second' ELSE finished_at END,
       CASE WHEN n = 1 AND id % 5 = 0 THEN 'lease_expired' ELSE 'failed' END, '{"message":"boom"}'
  FROM tasks, generate_series(1, CASE WHEN state = 'dead' THEN 2 ELSE 1 END) AS n
 WHERE attempt = 2
 ORDER BY finished_at`;

/** What the durations endpoint answers, computed from the raw table instead. */
const RAW_P95 = `
SELECT queue, type, percentile_disc(0.95) WITHIN GROUP (ORDER BY finished_at - started_at) AS p95
  FROM tasks WHERE finished_at >= now() - interval '24 hours' AND state = 'succeeded' GROUP BY queue, type`;

const ENDPOINTS: [string, string][] = [
  ['throughput 24h / 1m', 'throughput?window=24h&bucket=1m'],
  ['throughput 7d / 1h', 'throughput?window=7d&bucket=1h'],
  ['throughput 30d / 1d, one queue', 'throughput?window=30d&bucket=1d&queue=q3'],
  ['durations 1h', 'durations?window=1h'],
  ['durations 24h', 'durations?window=24h'],
  ['durations 48h', 'durations?window=48h'],
  ['durations 7d', 'durations?window=7d'],
  ['failures 24h', 'failures?window=24h'],
  ['failures 7d', 'failures?window=7d'],
  ['workers 24h', 'workers?window=24h'],
  ['health', 'health'],
];

async function main(): Promise<void> {
  const env = await describeEnvironment(DB, process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const db = await openPostgres({ connectionString: DB, schema, poolSize: 4, logger: silentLogger });
  const out: Record<string, unknown> = { at: new Date().toISOString(), attempts: ATTEMPTS, tasks: TASKS, days: DAYS, queues: QUEUES, types: TYPES, workers: WORKERS, env };
  try {
    const t1 = performance.now();
    if (args.reuse && args['skip-rollup']) {
      // measured as kept
    } else if (args.reuse) {
      await db.query(`TRUNCATE analytics_rollups, analytics_worker_rollups`);
      await db.query(`UPDATE analytics_state SET final_through = NULL, id_mark = 0, id_mark_at = NULL, pending_mark = NULL, pending_mark_at = NULL`);
    } else {
      await migrate(db, silentLogger);
      await fabricate(db);
    }
    const [counts] = (await db.query(`SELECT (SELECT count(*) FROM tasks WHERE state = 'succeeded')::bigint + (SELECT count(*) FROM attempts) AS attempts`)).rows;
    out.fabricateSeconds = seconds(t1);
    console.log(`${args.reuse ? 'reused' : 'fabricated'} ${fmt(Number(counts!.attempts))} attempts in ${fmt(seconds(t1), 1)} s`);
    const analytics = new Analytics(db, databaseClock);
    if (!args['skip-rollup']) await rollUp(analytics, out);

    out.endpoints = await measureEndpoints();
    const t0 = performance.now();
    await db.query(RAW_P95);
    out.rawP95Seconds = seconds(t0);
    console.log(`\nfor scale, p95 per queue and type over 24 h from the raw tasks table: ${fmt(seconds(t0) * 1000)} ms`);
  } finally {
    await db.close();
    if (!args.keep) await adminQuery(DB, `DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
    else console.log(`kept schema ${schema}`);
  }
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}analytics-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwritten ${file}`);
}

/** The backfill, then five steady passes; their times into `out`. */
async function rollUp(analytics: Analytics, out: Record<string, unknown>): Promise<void> {
  const t0 = performance.now();
  const passMs: number[] = [];
  for (;;) {
    const p0 = performance.now();
    const pass = await analytics.rollup({ backfillMs: (DAYS + 1) * DAY });
    passMs.push(performance.now() - p0);
    if (!pass.behind) break;
  }
  out.backfill = { passes: passMs.length, seconds: seconds(t0), pass: summarize(passMs) };
  console.log(`rollup backfill: ${passMs.length} passes in ${fmt(seconds(t0), 1)} s (pass p50 ${fmt(summarize(passMs).p50)} ms, max ${fmt(summarize(passMs).max)} ms)`);
  const steady: number[] = [];
  for (let i = 0; i < 5; i++) {
    const p0 = performance.now();
    await analytics.rollup();
    steady.push(performance.now() - p0);
  }
  out.steadyPass = summarize(steady);
  const [rollupRows] = (await analytics.db.query(`SELECT (SELECT count(*) FROM analytics_rollups)::integer AS rows, (SELECT count(*) FROM analytics_worker_rollups)::integer AS worker_rows`)).rows;
  out.rollupRows = rollupRows;
  console.log(`steady pass: p50 ${fmt(summarize(steady).p50)} ms; rollup rows: ${fmt(rollupRows!.rows)} (+ ${fmt(rollupRows!.worker_rows)} per worker)`);
}

/** The history, then VACUUM ANALYZE (the bench cluster runs no autovacuum). */
async function fabricate(db: Database): Promise<void> {
  await db.query(`INSERT INTO queues (name) SELECT 'q' || g FROM generate_series(0, $1 - 1) AS g`, [QUEUES]);
  await db.query(
    `INSERT INTO workers (id, name, queues, concurrency, state, last_seen_at, expires_at)
     SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'bench-' || g, '[]', 50, 'active', now(), now() + interval '1 day'
       FROM generate_series(0, $1 - 1) AS g`,
    [WORKERS],
  );
  await db.query(FABRICATE_TASKS, [DAYS, TASKS, QUEUES, TYPES, WORKERS]);
  await db.query(FABRICATE_ATTEMPTS);
  await db.query('VACUUM ANALYZE tasks');
  await db.query('VACUUM ANALYZE attempts');
}

/** Each endpoint over HTTP: three warm-up requests, then `SAMPLES` one at a time. */
async function measureEndpoints(): Promise<Record<string, unknown>> {
  const key = `tf_bench_${randomBytes(16).toString('hex')}`;
  const svc = await startService(
    loadConfig({}, { port: 0, logLevel: 'warn', databaseUrl: DB, schema, poolSize: 4, bootstrapApiKey: key }),
    { maintenance: false },
  );
  const results: Record<string, unknown> = {};
  const rows: string[][] = [];
  try {
    for (const [name, path] of ENDPOINTS) {
      const ask = async () => {
        const t = performance.now();
        const res = await fetch(`${svc.url}/api/v1/analytics/${path}`, { headers: { authorization: `Bearer ${key}` } });
        const body = await res.text();
        if (res.status !== 200) throw new Error(`${path}: ${res.status} ${body.slice(0, 300)}`);
        return { ms: performance.now() - t, bytes: body.length };
      };
      for (let i = 0; i < 3; i++) await ask();
      const samples: number[] = [];
      let bytes = 0;
      for (let i = 0; i < SAMPLES; i++) ({ bytes } = await ask().then((r) => (samples.push(r.ms), r)));
      const s = summarize(samples);
      results[name] = { ...s, bytes };
      rows.push([name, fmt(s.p50, 1), fmt(s.p95, 1), fmt(bytes)]);
    }
  } finally {
    await svc.stop();
  }
  console.log(`\n${table(['endpoint', 'p50 ms', 'p95 ms', 'answer bytes'], rows)}`);
  return results;
}

await main();
