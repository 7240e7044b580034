/**
 * Taskflow only, on PostgreSQL: does the cost per task stay flat as the backlog grows?
 *
 *   npm run scaling -- [--hot 20000] [--steps 10000,100000,1000000] [--no-same-queue] [--poll unfinished|completed] [--vacuum] [--server-node-flags "…"]
 *
 * For each step, the queue 'cold' is filled (direct SQL insert into the schema's tasks table,
 * after migration: the preload is not what is measured) to the step's size, then 20,000 no-op
 * tasks are enqueued to 'hot' through the API and drained by one worker process
 * (concurrency 50). Reported: drain throughput, the server's RSS, and at the largest backlog
 * the enqueue→start latency (500 at 100/s). Then, with the backlog still there, 20,000 tasks
 * of higher priority go to 'cold' itself and are drained from the same queue as the backlog.
 *
 * A drain ends when the storage says its tasks are done, polled every 10 ms once the worker has
 * started the last one. `--poll unfinished` (the default) counts what is left through the
 * partial indexes (queued, running, retrying, scheduled, blocked: under 1 ms at 1,000,000).
 * `--poll completed` (as run.ts, whose tables stay small) counts the succeeded tasks: a scan of
 * the whole table, 85-200 ms with 1,000,000 tasks waiting, which the end of each drain waits for
 * and shares the cores with, so that step measures the harness as much as the engine. The
 * checks after each drain are the same either way.
 *
 * Every step starts right after a `CHECKPOINT` (as run.ts does between systems): a preload of
 * 900,000 rows writes ~0.5 GB of WAL, and the checkpoint it sets off (max_wal_size) would
 * otherwise run during the next drain, which then pays for the preload's writes and for a full
 * page image of every page it touches first after it.
 *
 * Each drain also reports PostgreSQL's CPU and its buffer pool's traffic during the drain
 * (pg_stat_bgwriter's buffers_alloc, the pages read into shared buffers, and buffers_backend,
 * the dirty pages backends had to write out themselves to make room), read 1.5 s after the
 * drain so that the backends have flushed their statistics: with 1,000,000 tasks waiting the
 * table and its indexes no longer fit in a small `shared_buffers`, and a long drain's new row
 * versions then evict pages instead of filling free buffers.
 *
 * `--vacuum`: a `VACUUM` of the tasks table before each step, as autovacuum would run between
 * steps on a default PostgreSQL (the bench machine's has autovacuum off). Without it, each
 * drain of 'hot' leaves its claimed tasks' entries in the ready index (dead, marked so by later
 * scans, but still on their leaf pages until a vacuum), and every claim of the next drain walks
 * over them from the start of the queue's range: the later steps pay for the earlier steps'
 * drains as well as for their backlog.
 *
 * `--server-node-flags` replaces the service's own Node flags (those of `npm start`), to
 * measure memory and CPU under other V8 settings; `--server-node-flags=` runs V8's defaults.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { killAll, peakRssMiB, rssMiB, sleep } from './lib/proc.ts';
import { adminQuery } from './lib/pg.ts';
import { describeEnvironment } from './lib/env.ts';
import { fmt, table, type LatencySummary } from './lib/stats.ts';
import { bulkEnqueue, checkExactlyOnce, drain, latency, spawnWorker, type DrainResult } from './lib/workloads.ts';
import { SERVICE_NODE_FLAGS, TaskflowSystem, UNFINISHED_COUNT_SQL } from './systems/taskflow.ts';

const { values: args } = parseArgs({
  options: {
    hot: { type: 'string', default: '20000' },
    steps: { type: 'string', default: '10000,100000,1000000' },
    'no-same-queue': { type: 'boolean', default: false },
    vacuum: { type: 'boolean', default: false },
    poll: { type: 'string', default: 'unfinished' },
    concurrency: { type: 'string', default: '50' },
    'server-node-flags': { type: 'string' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const HOT = Number(args.hot);
const STEPS = args.steps!.split(',').map(Number);
const CONCURRENCY = Number(args.concurrency);
const DB = args['database-url']!;
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const schema = `bench_scale_${runId}`;
const POLL = args.poll!;
const serviceNodeFlags = args['server-node-flags'] === undefined ? undefined : args['server-node-flags'].split(/\s+/).filter(Boolean);
if (POLL !== 'completed' && POLL !== 'unfinished') throw new Error('--poll: completed or unfinished');

/** For `--poll unfinished`: tasks of `queue` (of at least `minPriority`) not finished yet. */
async function unfinished(sys: TaskflowSystem, queue: string, minPriority: number): Promise<number> {
  const [r] = await sys.query<{ n: number }>(UNFINISHED_COUNT_SQL, [queue, minPriority]);
  return r!.n;
}

/** Adds `count` queued no-op tasks to `queue` in one INSERT ... SELECT. */
async function preload(queue: string, from: number, count: number): Promise<number> {
  const t0 = performance.now();
  await adminQuery(DB, `INSERT INTO "${schema}".queues (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, [queue]);
  await adminQuery(DB, `
    INSERT INTO "${schema}".tasks (queue, type, state, priority, run_at, payload, max_attempts, backoff, timeout_ms)
    SELECT $1, 'noop', 'queued', 0, now(), jsonb_build_object('p', 'c', 'i', g), 5, '{"type":"fixed","delayMs":1000}', 30000
      FROM generate_series($2::int, $3::int) g`, [queue, from, from + count - 1]);
  await adminQuery(DB, `ANALYZE "${schema}".tasks`);
  return Math.round(performance.now() - t0);
}

/** The buffer pool's counters (pg_stat_bgwriter): pages allocated, pages written by backends. */
async function bufferCounters(): Promise<{ alloc: number; backend: number }> {
  const [r] = await adminQuery<{ alloc: string; backend: string }>(DB, 'SELECT buffers_alloc AS alloc, buffers_backend AS backend FROM pg_stat_bgwriter');
  return { alloc: Number(r!.alloc), backend: Number(r!.backend) };
}

/** `drain` with the buffer pool's traffic during it (see the comment at the top). */
async function drainCounted(step: Step, run: () => Promise<DrainResult>): Promise<DrainResult> {
  await sleep(1500);
  const b0 = await bufferCounters();
  const d = await run();
  await sleep(1500);
  const b1 = await bufferCounters();
  step.buffers = { alloc: b1.alloc - b0.alloc, backend: b1.backend - b0.backend };
  return d;
}

interface Step {
  backlog: number;
  where: 'other queue' | 'same queue';
  preloadMs: number;
  drain?: DrainResult;
  /** Shared buffers allocated (pages read in) and written out by backends during the drain. */
  buffers?: { alloc: number; backend: number };
  rssBeforeMiB: number | null;
  rssAfterMiB: number | null;
  problems: string[];
}

async function main(): Promise<void> {
  const env = await describeEnvironment(DB, args['redis-url']!);
  const sys = new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema, serviceNodeFlags });
  const steps: Step[] = [];
  let lat: LatencySummary | undefined;
  let peak: number | null = null;
  try {
    await sys.setup();
    const pid = sys.serverPid()!;
    // `expected`: all the tasks ever enqueued to the queue (those of earlier steps included).
    const watch = Object.create(sys) as TaskflowSystem;
    if (POLL === 'unfinished') watch.countCompleted = async (queue: string, expected: number) => expected - (await unfinished(sys, queue, 0));
    let cold = 0;
    let hotDone = 0;
    for (const [k, target] of STEPS.entries()) {
      console.error(`backlog ${fmt(target)} in 'cold': preloading ${fmt(target - cold)} ...`);
      const preloadMs = await preload('cold', cold, target - cold);
      cold = target;
      if (args.vacuum) await adminQuery(DB, `VACUUM "${schema}".tasks`);
      await adminQuery(DB, 'CHECKPOINT');
      const step: Step = { backlog: target, where: 'other queue', preloadMs, rssBeforeMiB: rssMiB(pid), rssAfterMiB: null, problems: [] };
      const phase = `h${k}`;
      await bulkEnqueue(sys, 'hot', HOT, 1000, phase);
      const worker = await spawnWorker(sys, 'hot', CONCURRENCY);
      step.drain = await drainCounted(step, () => drain(watch, worker, 'hot', HOT, { phase, completedBefore: hotDone }));
      hotDone += HOT;
      step.rssAfterMiB = rssMiB(pid);
      console.error(`  drain ${fmt(step.drain.jobsPerSec)} jobs/s, server RSS ${step.rssAfterMiB} MiB`);
      if (k === STEPS.length - 1) {
        lat = await latency(sys, worker, 'hot', 500, 100, hotDone);
        hotDone += 500;
        console.error(`  latency with ${fmt(target)} waiting in 'cold': p50 ${lat.p50} ms, p99 ${lat.p99} ms`);
      }
      const report = await worker.request<{ phases: Record<string, { counts: number[] }> }>({ cmd: 'report' });
      await worker.stop();
      step.problems.push(...checkExactlyOnce(report.phases[phase]?.counts, HOT, phase));
      if (k === STEPS.length - 1) step.problems.push(...checkExactlyOnce(report.phases.l?.counts, 500, 'l'));
      step.problems.push(...(await sys.verifyDrained('hot', hotDone)));
      steps.push(step);
    }

    if (!args['no-same-queue']) {
      // The backlog and the work in one queue: the hot tasks have priority 10, the backlog 0,
      // so the claim (priority, run time, id order on the partial index) takes the hot ones first.
      console.error(`same queue: ${fmt(HOT)} priority tasks on top of ${fmt(cold)} in 'cold' ...`);
      if (args.vacuum) await adminQuery(DB, `VACUUM "${schema}".tasks`);
      await adminQuery(DB, 'CHECKPOINT');
      const step: Step = { backlog: cold, where: 'same queue', preloadMs: 0, rssBeforeMiB: rssMiB(pid), rssAfterMiB: null, problems: [] };
      for (let from = 0; from < HOT; from += 1000) {
        const tasks = [];
        for (let i = from; i < Math.min(HOT, from + 1000); i++) tasks.push({ type: 'noop', queue: 'cold', priority: 10, payload: { p: 'q', i } });
        await sys.client.enqueueMany(tasks);
      }
      const worker = await spawnWorker(sys, 'cold', CONCURRENCY);
      const hotOnly = Object.create(sys) as TaskflowSystem;
      hotOnly.countCompleted = async () => {
        if (POLL === 'unfinished') return HOT - (await unfinished(sys, 'cold', 10));
        const [r] = await sys.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE queue = 'cold' AND priority = 10 AND state = 'succeeded'`);
        return r!.n;
      };
      step.drain = await drainCounted(step, () => drain(hotOnly, worker, 'cold', HOT, { phase: 'q' }));
      step.rssAfterMiB = rssMiB(pid);
      const report = await worker.request<{ phases: Record<string, { counts: number[] }> }>({ cmd: 'report' });
      await worker.stop();
      step.problems.push(...checkExactlyOnce(report.phases.q?.counts, HOT, 'q'));
      const started = report.phases.c?.counts.reduce((a, b) => a + b, 0) ?? 0;
      console.error(`  drain ${fmt(step.drain.jobsPerSec)} jobs/s (the worker also started ${started} backlog tasks before it stopped)`);
      steps.push(step);
    }
    peak = peakRssMiB(pid);
  } finally {
    await sys.teardown().catch((err) => console.error('teardown failed', err));
  }

  const text = `${table(
    ['backlog waiting', 'where', `drain of ${fmt(HOT)} (jobs/s)`, 'drain wall (s)', 'server CPU (s)', 'worker CPU (s)', 'PostgreSQL CPU (s)', 'buffers read in / written by backends', 'server RSS before / after (MiB)', 'exactly-once'],
    steps.map((s) => [
      fmt(s.backlog), s.where, fmt(s.drain?.jobsPerSec), fmt((s.drain?.ms ?? NaN) / 1000, 2), fmt(s.drain?.serverCpuSec, 2), fmt(s.drain?.workerCpuSec, 2),
      fmt(s.drain?.storageCpuSec, 2), `${fmt(s.buffers?.alloc)} / ${fmt(s.buffers?.backend)}`,
      `${fmt(s.rssBeforeMiB)} / ${fmt(s.rssAfterMiB)}`, s.problems.length ? 'NO' : 'yes',
    ]),
  )}\n\nEnqueue→start latency with ${fmt(STEPS.at(-1))} tasks waiting in another queue (500 at 100/s): `
    + `p50 ${fmt(lat?.p50)} ms, p95 ${fmt(lat?.p95)} ms, p99 ${fmt(lat?.p99)} ms, max ${fmt(lat?.max)} ms\n`
    + `Server peak RSS over the run (VmHWM): ${fmt(peak, 1)} MiB; drains timed with --poll ${POLL}${args.vacuum ? '; a VACUUM of the tasks table before each step' : ''}\n`;
  console.log(`\n${text}`);
  for (const s of steps) if (s.problems.length) console.log(`backlog ${s.backlog} (${s.where}): PROBLEMS ${s.problems.join('; ')}`);
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}scaling-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify({ runId, at: new Date().toISOString(), hot: HOT, concurrency: CONCURRENCY, poll: POLL, vacuum: args.vacuum, serverNodeFlags: serviceNodeFlags ?? SERVICE_NODE_FLAGS, environment: env, steps, latency: lat, serverPeakRssMiB: peak, table: text }, null, 2)}\n`);
  console.error(`written ${file}`);
  if (steps.some((s) => s.problems.length)) process.exitCode = 1;
}

try {
  await main();
} finally {
  killAll();
  await sleep(0);
}
