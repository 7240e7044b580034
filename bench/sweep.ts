/**
 * The sweep: every system's drain at each setting of its published performance knobs, the
 * same workload as run.ts's drain (N no-op tasks bulk-loaded, `ANALYZE` and `CHECKPOINT` for the
 * PostgreSQL systems, one worker process, concurrency 50, the clock from the first task), each
 * setting in a fresh namespace and fresh processes, the settings interleaved round by round.
 * Writes bench/tuning.json: per system, the setting with the fastest median drain (`best`, which
 * run.ts's `<system>-best` rows use) and every setting's figures.
 *
 *   npm run sweep -- [--only taskflow,graphile,pgboss,bullmq] [--rounds 2] [--n 10000] [--concurrency 50]
 *                    [--database-url …] [--redis-url …] [--out tuning.json]
 *
 * The settings (SETTINGS below) are each library's documented knobs, around the values its
 * documentation suggests: graphile-worker's local queue (off, the default; concurrency + 1,
 * the performance guide's starting point; larger) with and without batched completions;
 * pg-boss's fetch loops × batch size (its defaults: one job per fetch), with burst fetching,
 * LISTEN/NOTIFY and a 0.5 s poll; BullMQ's concurrency; the SDK Worker's prefetch (the default
 * adaptive, and fixed sizes), claim pipeline and claim size.
 */
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { killAll, sleep } from './lib/proc.ts';
import { adminQuery } from './lib/pg.ts';
import { taskflowRevision } from './lib/env.ts';
import { fmt, table } from './lib/stats.ts';
import { bulkEnqueue, checkExactlyOnce, drain, spawnWorker } from './lib/workloads.ts';
import { describeTuning, drainCap, makeSystem, readTuning, TUNING_FILE, type SweepPoint, type TuningFile } from './lib/tuning.ts';
import type { Tuning } from './lib/types.ts';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string', default: 'taskflow,graphile,pgboss,bullmq' },
    rounds: { type: 'string', default: '2' },
    n: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '50' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    out: { type: 'string', default: TUNING_FILE },
  },
});
const N = Number(args.n);
const C = Number(args.concurrency);
const ROUNDS = Number(args.rounds);
const DB = args['database-url']!;
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

/** Each system's settings; `{}` is its defaults (concurrency aside). */
const SETTINGS: Record<string, Tuning[]> = {
  taskflow: [
    {},
    { prefetch: 150 },
    { prefetch: 450 },
    { prefetch: 950 },
    { prefetch: 450, pipeline: 1 },
  ],
  graphile: [
    {},
    { maxPoolSize: C + 1, localQueueSize: C + 1 },
    { maxPoolSize: C + 1, localQueueSize: C + 1, completeJobBatchDelay: 0, useNodeTime: 1 },
    { maxPoolSize: C + 1, localQueueSize: 2 * C, completeJobBatchDelay: 0, useNodeTime: 1 },
    { maxPoolSize: C + 1, localQueueSize: 500, completeJobBatchDelay: 0, useNodeTime: 1 },
  ],
  pgboss: [
    {},
    { localConcurrency: 5, batchSize: 10, burstWhenBatchFull: 1, notify: 1, pollingIntervalSeconds: 0.5 },
    { localConcurrency: 2, batchSize: 25, burstWhenBatchFull: 1, notify: 1, pollingIntervalSeconds: 0.5 },
    { localConcurrency: 1, batchSize: 50, burstWhenBatchFull: 1, notify: 1, pollingIntervalSeconds: 0.5 },
    { localConcurrency: 2, batchSize: 100, burstWhenBatchFull: 1, notify: 1, pollingIntervalSeconds: 0.5 },
  ],
  bullmq: [{}, { concurrency: 100 }, { concurrency: 200 }],
};

const only = args.only!.split(',').map((s) => s.trim());
for (const o of only) if (!SETTINGS[o]) throw new Error(`--only: unknown system "${o}" (expected ${Object.keys(SETTINGS).join(', ')})`);

interface One { jobsPerSec: number; cpuUs: SweepPoint['cpuUs'] }

async function drainOnce(key: string, tuning: Tuning, id: string): Promise<One> {
  const sys = makeSystem(key, id, tuning, { databaseUrl: DB, redisUrl: args['redis-url']!, aofRedisPort: 6390 });
  let worker: Awaited<ReturnType<typeof spawnWorker>> | undefined;
  try {
    await sys.setup();
    worker = await spawnWorker(sys, 'work', C);
    const n = drainCap(key, tuning, N);
    await bulkEnqueue(sys, 'work', n, 1000);
    await sys.prepare?.();
    const d = await drain(sys, worker, 'work', n, { databaseUrl: DB });
    const report = await worker.request<{ phases: Record<string, { counts: number[] }> }>({ cmd: 'report' });
    const problems = [...checkExactlyOnce(report.phases.d?.counts, n, 'd'), ...(await sys.verifyDrained('work', n))];
    if (problems.length) throw new Error(problems.join('; '));
    const us = (x: number | null) => (x === null ? null : Math.round((x * 1e6) / n));
    const total = d.workerCpuSec === null ? null : d.workerCpuSec + (d.serverCpuSec ?? 0) + (d.storageCpuSec ?? 0);
    return { jobsPerSec: d.jobsPerSec, cpuUs: { worker: us(d.workerCpuSec), server: us(d.serverCpuSec), storage: us(d.storageCpuSec), total: us(total) } };
  } finally {
    await worker?.stop().catch(() => undefined);
    await sys.teardown().catch((err) => console.error(`teardown failed: ${err}`));
    await adminQuery(DB, 'CHECKPOINT').catch(() => undefined);
    await sleep(1000);
  }
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};
const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim().replace(/^.*load average/, 'load average');

async function main(): Promise<void> {
  const load = [uptime()];
  const runs = new Map<string, One[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const key of only) {
      const settings = SETTINGS[key]!;
      // Each round starts one setting further along, so that none always runs first.
      for (let k = 0; k < settings.length; k++) {
        const i = (k + round) % settings.length;
        const t = settings[i]!;
        const id = `${key}:${i}`;
        try {
          const one = await drainOnce(key, t, `${runId}_s${round}_${i}`);
          console.error(`round ${round + 1}: ${key} ${describeTuning(t)}: ${fmt(one.jobsPerSec)} jobs/s, ${one.cpuUs.total} µs/task`);
          runs.set(id, [...(runs.get(id) ?? []), one]);
        } catch (err) {
          // A failed drain (e.g. another graphile-worker's migration on the same database shuts this one down) leaves the round out.
          console.error(`round ${round + 1}: ${key} ${describeTuning(t)}: FAILED ${String(err).split('\n')[0]}`);
        }
      }
    }
  }
  load.push(uptime());
  // A sweep of some systems keeps the others' results of an earlier sweep.
  const out: TuningFile = {
    at: new Date().toISOString(), commit: taskflowRevision().commit, n: N, concurrency: C, rounds: ROUNDS, load,
    systems: { ...readTuning(resolve(args.out!))?.systems },
  };
  for (const key of only) {
    const sweep: SweepPoint[] = SETTINGS[key]!.map((tuning, i) => {
      const rs = runs.get(`${key}:${i}`) ?? [];
      const med = (f: (c: SweepPoint['cpuUs']) => number | null) => {
        const v = rs.map((r) => f(r.cpuUs)).filter((x): x is number => x !== null);
        return v.length ? Math.round(median(v)) : null;
      };
      return {
        tuning, drains: rs.map((r) => r.jobsPerSec), median: rs.length ? Math.round(median(rs.map((r) => r.jobsPerSec))) : 0,
        cpuUs: { worker: med((c) => c.worker), server: med((c) => c.server), storage: med((c) => c.storage), total: med((c) => c.total) },
      };
    });
    const best = sweep.reduce((a, b) => (b.median > a.median ? b : a));
    out.systems[key] = { best: best.tuning, sweep };
    console.log(`\n### ${key} (best: ${describeTuning(best.tuning)})\n`);
    console.log(table(['setting', 'drain, median (jobs/s)', 'each round', 'CPU per task: worker / server / storage = all (µs)'], sweep.map((p) => [
      describeTuning(p.tuning), fmt(p.median), p.drains.map((d) => fmt(d)).join(' / '),
      `${fmt(p.cpuUs.worker)} / ${fmt(p.cpuUs.server)} / ${fmt(p.cpuUs.storage)} = ${fmt(p.cpuUs.total)}`,
    ])));
  }
  console.log(`\nMachine load (uptime) before and after: ${load.join(' / ')}`);
  const file = resolve(args.out!);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.error(`\nwritten ${file}`);
}

try {
  await main();
} finally {
  killAll();
}
