/**
 * Taskflow against BullMQ, pg-boss and graphile-worker, side by side in one run, on the same
 * PostgreSQL and Redis, each in a fresh namespace, each worker in its own process.
 *
 *   npm run bench -- [--n 20000] [--quick] [--only taskflow,pglite,bullmq,bullmq-aof,pgboss,graphile]
 *                    [--concurrency 50] [--latency-count 500] [--rate 100]
 *                    [--database-url postgres://...] [--redis-url redis://...] [--aof-redis-port 6390]
 *
 * Workloads (see README.md): single enqueue (50 in flight), bulk enqueue (batches of 1,000),
 * drain (N pre-loaded no-op tasks, concurrency 50), enqueue→start latency (500 at 100/s to
 * an idle worker), and an exactly-once check of every task run.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { killAll, peakRssMiB, rssMiB, sleep } from './lib/proc.ts';
import { adminQuery } from './lib/pg.ts';
import { describeEnvironment } from './lib/env.ts';
import { fmt, round, table, type LatencySummary } from './lib/stats.ts';
import {
  bulkEnqueue, checkExactlyOnce, drain, latency, singleEnqueue, spawnWorker, type DrainResult, type Throughput,
} from './lib/workloads.ts';
import type { SystemUnderTest } from './lib/types.ts';
import { TaskflowSystem } from './systems/taskflow.ts';
import { BullmqSystem } from './systems/bullmq.ts';
import { PgbossSystem } from './systems/pgboss.ts';
import { GraphileSystem } from './systems/graphile.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    concurrency: { type: 'string', default: '50' },
    'latency-count': { type: 'string', default: '500' },
    rate: { type: 'string', default: '100' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    'aof-redis-port': { type: 'string', default: '6390' },
  },
});

const N = Number(args.n ?? (args.quick ? 2_000 : 20_000));
const CONCURRENCY = Number(args.concurrency);
const LAT_COUNT = Number(args['latency-count']);
const RATE = Number(args.rate);
const DB = args['database-url']!;
const REDIS = args['redis-url']!;
const SINGLE_IN_FLIGHT = 50;
const BATCH = 1_000;
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const AOF_PORT = Number(args['aof-redis-port']);
const ALL = ['taskflow', 'pglite', 'bullmq', 'bullmq-aof', 'pgboss', 'graphile'];
const only = args.only ? args.only.split(',').map((s) => s.trim()) : ALL;
for (const o of only) if (!ALL.includes(o)) throw new Error(`--only: unknown system "${o}" (expected ${ALL.join(', ')})`);

function makeSystem(key: string): SystemUnderTest {
  switch (key) {
    case 'taskflow': return new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema: `bench_tf_${runId}` });
    case 'pglite': return new TaskflowSystem({ driver: 'pglite', databaseUrl: DB, schema: 'taskflow' });
    case 'bullmq': return new BullmqSystem({ redisUrl: REDIS, prefix: `tfbench_${runId}` });
    // BullMQ on a Redis of its own that fsyncs every write (AOF, appendfsync always).
    case 'bullmq-aof': return new BullmqSystem({ redisUrl: REDIS, prefix: `tfbench_${runId}`, aofPort: AOF_PORT });
    case 'pgboss': return new PgbossSystem({ databaseUrl: DB, schema: `bench_pgboss_${runId}` });
    case 'graphile': return new GraphileSystem({ databaseUrl: DB, schema: `bench_gw_${runId}` });
    default: throw new Error(key);
  }
}

interface SystemResult {
  key: string;
  label: string;
  single?: Throughput;
  /** Single enqueues through the client's coalescing (systems that have one). */
  singleCoalesced?: Throughput;
  bulk?: Throughput;
  drain?: DrainResult;
  latency?: LatencySummary;
  serverRssMiB?: number | null;
  /** The server's peak RSS over all its workloads (VmHWM, read before it stops). */
  serverPeakRssMiB?: number | null;
  exactlyOnce: boolean;
  problems: string[];
  error?: string;
}

async function benchOne(key: string): Promise<SystemResult> {
  const sys = makeSystem(key);
  const res: SystemResult = { key, label: sys.label, exactlyOnce: false, problems: [] };
  const log = (msg: string) => console.error(`  ${sys.label}: ${msg}`);
  let worker: Awaited<ReturnType<typeof spawnWorker>> | undefined;
  try {
    await sys.setup();
    worker = await spawnWorker(sys, 'work', CONCURRENCY);

    res.single = await singleEnqueue(sys, 'single', N, SINGLE_IN_FLIGHT);
    log(`single enqueue ${fmt(res.single.jobsPerSec)} jobs/s`);
    const waitingSingle = await sys.countWaiting('single');
    if (waitingSingle !== N) res.problems.push(`single enqueue: ${waitingSingle} of ${N} tasks stored`);
    await sys.purge('single');

    if (sys.enqueueOneCoalesced) {
      res.singleCoalesced = await singleEnqueue(sys, 'single', N, SINGLE_IN_FLIGHT, 's', true);
      log(`single enqueue, coalesced ${fmt(res.singleCoalesced.jobsPerSec)} jobs/s`);
      const stored = await sys.countWaiting('single');
      if (stored !== N) res.problems.push(`single enqueue, coalesced: ${stored} of ${N} tasks stored`);
      await sys.purge('single');
    }

    res.bulk = await bulkEnqueue(sys, 'work', N, BATCH);
    log(`bulk enqueue ${fmt(res.bulk.jobsPerSec)} jobs/s`);
    const waiting = await sys.countWaiting('work');
    if (waiting !== N) res.problems.push(`bulk enqueue: ${waiting} of ${N} tasks waiting`);

    res.drain = await drain(sys, worker, 'work', N);
    const pid = sys.serverPid?.();
    res.serverRssMiB = pid ? rssMiB(pid) : undefined;
    log(`drain ${fmt(res.drain.jobsPerSec)} jobs/s`);

    res.latency = await latency(sys, worker, 'work', LAT_COUNT, RATE, N);
    log(`latency p50 ${res.latency.p50} ms, p95 ${res.latency.p95} ms, p99 ${res.latency.p99} ms`);

    const serverPid = sys.serverPid?.();
    res.serverPeakRssMiB = serverPid ? peakRssMiB(serverPid) : undefined;
    const report = await worker.request<{ phases: Record<string, { counts: number[] }> }>({ cmd: 'report' });
    await worker.stop();
    worker = undefined;
    res.problems.push(...checkExactlyOnce(report.phases.d?.counts, N, 'd'));
    res.problems.push(...checkExactlyOnce(report.phases.l?.counts, LAT_COUNT, 'l'));
    for (const phase of Object.keys(report.phases)) if (phase !== 'd' && phase !== 'l') res.problems.push(`worker: ran tasks of phase "${phase}"`);
    res.problems.push(...(await sys.verifyDrained('work', N + LAT_COUNT)));
    res.exactlyOnce = res.problems.length === 0;
    log(res.exactlyOnce ? 'exactly-once: ok' : `PROBLEMS: ${res.problems.join('; ')}`);
  } catch (err) {
    res.error = String((err as Error)?.stack ?? err);
    log(`FAILED: ${res.error}`);
  } finally {
    await worker?.stop().catch(() => undefined);
    await sys.teardown().catch((err) => log(`teardown failed: ${err}`));
    // Flush what this system wrote so the next one does not pay for it.
    await adminQuery(DB, 'CHECKPOINT').catch(() => undefined);
    await sleep(2000);
  }
  return res;
}

function report(results: SystemResult[]): string {
  const rows = results.map((r) => [
    r.label,
    fmt(r.single?.jobsPerSec), fmt(r.singleCoalesced?.jobsPerSec), fmt(r.bulk?.jobsPerSec), fmt(r.drain?.jobsPerSec),
    fmt(r.latency?.p50), fmt(r.latency?.p95), fmt(r.latency?.p99),
    r.error ? 'ERROR' : r.exactlyOnce ? 'yes' : 'NO',
  ]);
  const main = table(
    ['system', 'single enqueue (jobs/s)', 'single, coalescing client (jobs/s)', 'bulk enqueue (jobs/s)', 'drain (jobs/s)', 'latency p50 (ms)', 'p95 (ms)', 'p99 (ms)', 'exactly-once'],
    rows,
  );
  const cpu = table(
    ['system', 'drain wall (s)', 'worker CPU (s)', 'server CPU (s)', 'storage CPU (s)', 'CPU per task, all three (µs)', 'server RSS after drain (MiB)', 'server peak RSS (MiB)'],
    results.map((r) => {
      const d = r.drain;
      const all = d && d.workerCpuSec !== null ? d.workerCpuSec + (d.serverCpuSec ?? 0) + (d.storageCpuSec ?? 0) : NaN;
      return [
        r.label, fmt((d?.ms ?? NaN) / 1000, 2), fmt(d?.workerCpuSec, 2), fmt(d?.serverCpuSec, 2), fmt(d?.storageCpuSec, 2),
        fmt(d ? (all * 1e6) / d.jobs : NaN), fmt(r.serverRssMiB), fmt(r.serverPeakRssMiB, 1),
      ];
    }),
  );
  const ratioRows: string[][] = [];
  for (const tf of results.filter((r) => r.key === 'taskflow' || r.key === 'pglite')) {
    for (const peer of results.filter((r) => r.key !== 'taskflow' && r.key !== 'pglite')) {
      const q = (a?: number, b?: number) => (a && b ? `${round(a / b, 2).toFixed(2)}×` : '—');
      ratioRows.push([
        `${tf.label} / ${peer.label}`,
        q(tf.single?.jobsPerSec, peer.single?.jobsPerSec), q(tf.singleCoalesced?.jobsPerSec, peer.singleCoalesced?.jobsPerSec ?? peer.single?.jobsPerSec),
        q(tf.bulk?.jobsPerSec, peer.bulk?.jobsPerSec), q(tf.drain?.jobsPerSec, peer.drain?.jobsPerSec),
        q(tf.latency?.p50, peer.latency?.p50), q(tf.latency?.p95, peer.latency?.p95), q(tf.latency?.p99, peer.latency?.p99),
      ]);
    }
  }
  const ratios = table(['ratio', 'single enqueue', 'single, coalescing client ¹', 'bulk enqueue', 'drain', 'latency p50', 'p95', 'p99'], ratioRows);
  return `${main}\n\nCPU during the drain, and the Taskflow server's memory:\n\n${cpu}\n\n`
    + `Ratios (throughput: above 1× = Taskflow faster; latency: above 1× = Taskflow slower):\n\n${ratios}\n`
    + `\n¹ Taskflow's \`submit\` against the peer's coalescing client where it has one (BullMQ with ioredis auto-pipelining), else the peer's plain single enqueue (pg-boss, graphile-worker have none).\n`;
}

async function main(): Promise<void> {
  const env = await describeEnvironment(DB, REDIS);
  console.error(`Taskflow bench ${runId}: N=${N}, concurrency ${CONCURRENCY}, latency ${LAT_COUNT} at ${RATE}/s; systems: ${only.join(', ')}`);
  const results: SystemResult[] = [];
  for (const key of only) {
    console.error(`\n${key} ...`);
    results.push(await benchOne(key));
  }
  const text = report(results);
  console.log(`\nN = ${fmt(N)}, concurrency ${CONCURRENCY}, latency: ${LAT_COUNT} tasks at ${RATE}/s\n\n${text}`);
  for (const r of results) {
    if (r.error) console.log(`${r.label}: ERROR ${r.error.split('\n')[0]}`);
    else if (r.problems.length) console.log(`${r.label}: PROBLEMS ${r.problems.join('; ')}`);
  }
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify({
    runId, at: new Date().toISOString(), n: N, concurrency: CONCURRENCY, latencyCount: LAT_COUNT, ratePerSec: RATE,
    singleInFlight: SINGLE_IN_FLIGHT, batch: BATCH, environment: env, results, table: text,
  }, null, 2)}\n`);
  console.error(`\nwritten ${file}`);
  if (results.some((r) => r.error || !r.exactlyOnce)) process.exitCode = 1;
}

try {
  await main();
} finally {
  killAll();
}
