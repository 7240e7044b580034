/**
 * Taskflow against BullMQ, pg-boss and graphile-worker, side by side in one run, on the same
 * PostgreSQL and Redis, each in a fresh namespace, each worker in its own process.
 *
 *   npm run bench -- [--n 20000] [--single-n N] [--quick] [--only taskflow,taskflow-nometrics,pglite,bullmq,bullmq-aof,pgboss,graphile]
 *                    [--rounds 1] [--concurrency 50] [--latency-count 500] [--rate 100]
 *                    [--database-url postgres://...] [--redis-url redis://...] [--aof-redis-port 6390]
 *                    [--worker-node-flags "…"] [--baseline <dir>] [--pglite-memory] [--variants defaults,best]
 *                    [--tuning tuning.json]
 *
 * Workloads (see README.md): single enqueue (50 in flight), bulk enqueue (batches of 1,000),
 * drain (N pre-loaded no-op tasks, concurrency 50), enqueue→start latency (500 at 100/s to
 * an idle worker), and an exactly-once check of every task run.
 *
 * Every system runs twice: at its **defaults** (the library's own settings; concurrency 50)
 * and at its **best** setting (`<system>-best` rows: the setting `npm run sweep` found fastest
 * on the drain, read from bench/tuning.json; `--variants defaults` or `best` runs one kind). A
 * best row measures the bulk load, the drain and the latency only (the producer is the same).
 * After the bulk load every PostgreSQL system gets `ANALYZE` of its tables and a `CHECKPOINT`
 * (lib/pg.ts); the drain's clock starts at the first task's start (lib/workloads.ts drain).
 *
 * `--rounds R` runs every system R times, round after round, each round starting one system
 * further along (so that none always runs first or last), and prints each round's tables, the
 * medians of the rounds, and the issue's targets as ratios: from the medians, and per round.
 *
 * `--worker-node-flags` runs every system's worker process on these Node flags (default: none,
 * Node's defaults), e.g. "--max-semi-space-size=8", which docs/operations.md recommends for
 * busy SDK workers: the same flags for every system, so the ratios stay like for like.
 *
 * `taskflow-nometrics` is the PostgreSQL row with its metrics off (TASKFLOW_METRICS=off): with
 * `--only taskflow,taskflow-nometrics` a run weighs what the metrics cost on the hot path.
 *
 * `--pglite-memory` runs the PGlite row on `memory://` instead of a fresh data directory on
 * disk (the embedded default, which `npm start` runs).
 *
 * `--baseline <dir>` adds the row "Taskflow@baseline (PostgreSQL)": the server and the worker
 * of another checkout of the repository at <dir> (a git worktree of an earlier commit, with
 * `npm install` done at its root and in its bench/), each process started from that
 * checkout's bench/lib/taskflow-server.ts and bench/lib/worker-child.ts so that it runs its own
 * packages (the server with its own `npm start` flags), measured in the same run and rounds as
 * this tree and the peers. The producer is this tree's SDK client (the protocol is the same).
 * Prints both Taskflow rows' ratios to graphile-worker and after ÷ before: the before/after
 * of a change to the engine, in one run.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { killAll, peakRssMiB, rssMiB, sleep } from './lib/proc.ts';
import { adminQuery } from './lib/pg.ts';
import { describeEnvironment, taskflowRevision } from './lib/env.ts';
import { fmt, round, table } from './lib/stats.ts';
import {
  bulkEnqueue, checkExactlyOnce, drain, latency, singleEnqueue, spawnWorker, type DrainResult,
} from './lib/workloads.ts';
import type { SystemUnderTest } from './lib/types.ts';
import { medians, targetsTable, type SystemResult } from './lib/rounds.ts';
import { checkoutRoot } from './systems/taskflow.ts';
import { describeTuning, drainCap, makeSystem, readTuning, TUNING_FILE } from './lib/tuning.ts';
import { execFileSync } from 'node:child_process';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string' },
    'single-n': { type: 'string' },
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '1' },
    only: { type: 'string' },
    concurrency: { type: 'string', default: '50' },
    'latency-count': { type: 'string', default: '500' },
    rate: { type: 'string', default: '100' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    'aof-redis-port': { type: 'string', default: '6390' },
    'worker-node-flags': { type: 'string', default: '' },
    baseline: { type: 'string' },
    'pglite-memory': { type: 'boolean', default: false },
    variants: { type: 'string', default: 'defaults,best' },
    tuning: { type: 'string', default: TUNING_FILE },
  },
});

const N = Number(args.n ?? (args.quick ? 2_000 : 20_000));
/** Tasks of each single-enqueue workload (default N): fewer keeps the slowest peers' one-at-a-time enqueues short. */
const SINGLE_N = Number(args['single-n'] ?? N);
const CONCURRENCY = Number(args.concurrency);
const LAT_COUNT = Number(args['latency-count']);
const RATE = Number(args.rate);
const DB = args['database-url']!;
const REDIS = args['redis-url']!;
const SINGLE_IN_FLIGHT = 50;
const BATCH = 1_000;
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const AOF_PORT = Number(args['aof-redis-port']);
const WORKER_FLAGS = args['worker-node-flags']!.split(' ').filter(Boolean);
const ROUNDS = Number(args.rounds);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error('--rounds: expected a whole number ≥ 1');
const ALL = ['taskflow', 'taskflow-nometrics', 'pglite', 'bullmq', 'bullmq-aof', 'pgboss', 'graphile'];
const only = args.only ? args.only.split(',').map((s) => s.trim()) : ALL;
for (const o of only) if (!ALL.includes(o)) throw new Error(`--only: unknown system "${o}" (expected ${ALL.join(', ')})`);
/** The root of the --baseline checkout, checked before anything runs. */
const BASELINE = args.baseline === undefined ? undefined : checkoutRoot(args.baseline);
const VARIANTS = args.variants!.split(',').map((v) => v.trim());
for (const v of VARIANTS) if (v !== 'defaults' && v !== 'best') throw new Error(`--variants: defaults and/or best, not "${v}"`);
const TUNING = readTuning(args.tuning);
if (VARIANTS.includes('best') && !TUNING) throw new Error(`no ${args.tuning}: run \`npm run sweep\` first, or --variants defaults`);
/** The base systems of each round: --only's, with the baseline's row right after Taskflow's (or first). */
const bases = BASELINE === undefined ? only
  : only.includes('taskflow') ? only.flatMap((k) => (k === 'taskflow' ? [k, 'baseline'] : [k])) : ['baseline', ...only];
/** Whose sweep gives a base system its best setting (the baseline: Taskflow's; BullMQ AOF: BullMQ's). */
const tunedAs = (base: string) => (base === 'baseline' || base === 'taskflow-nometrics' ? 'taskflow' : base === 'bullmq-aof' ? 'bullmq' : base);
/** The rows of each round: each base at its defaults, then each at its best (`<base>-best`). */
const keys = [
  ...(VARIANTS.includes('defaults') ? bases : []),
  ...(VARIANTS.includes('best') ? bases.filter((b) => TUNING!.systems[tunedAs(b)] && b !== 'pglite' && b !== 'bullmq-aof').map((b) => `${b}-best`) : []),
];
/** The rows of Taskflow, whose ratios to the others are printed. */
const OURS = ['taskflow', 'taskflow-nometrics', 'baseline', 'pglite', 'taskflow-best', 'taskflow-nometrics-best', 'baseline-best'];
const isBest = (key: string) => key.endsWith('-best');
const baseOf = (key: string) => key.replace(/-best$/, '');
const tuningOf = (key: string) => (isBest(key) ? TUNING!.systems[tunedAs(baseOf(key))]!.best : {});


/** Single enqueues, one call per task and through the client's coalescing (the defaults rows). */
async function enqueues(sys: SystemUnderTest, res: SystemResult, log: (msg: string) => void): Promise<void> {
  res.single = await singleEnqueue(sys, 'single', SINGLE_N, SINGLE_IN_FLIGHT);
  log(`single enqueue ${fmt(res.single.jobsPerSec)} jobs/s`);
  const waitingSingle = await sys.countWaiting('single');
  if (waitingSingle !== SINGLE_N) res.problems.push(`single enqueue: ${waitingSingle} of ${SINGLE_N} tasks stored`);
  await sys.purge('single');

  if (sys.enqueueOneCoalesced) {
    res.singleCoalesced = await singleEnqueue(sys, 'single', SINGLE_N, SINGLE_IN_FLIGHT, 's', true);
    log(`single enqueue, coalesced ${fmt(res.singleCoalesced.jobsPerSec)} jobs/s`);
    const stored = await sys.countWaiting('single');
    if (stored !== SINGLE_N) res.problems.push(`single enqueue, coalesced: ${stored} of ${SINGLE_N} tasks stored`);
    await sys.purge('single');
  }
}

async function benchOne(key: string, round: number): Promise<SystemResult> {
  const tuning = tuningOf(key);
  const sys = makeSystem(baseOf(key), `${runId}_${round}${isBest(key) ? 'b' : ''}`, tuning,
    { databaseUrl: DB, redisUrl: REDIS, aofRedisPort: AOF_PORT, pgliteMemory: args['pglite-memory'], baseline: BASELINE });
  if (isBest(key)) sys.label = `${sys.label}, best`;
  const res: SystemResult = { key, label: sys.label, exactlyOnce: false, problems: [] };
  const log = (msg: string) => console.error(`  ${sys.label}: ${msg}`);
  let worker: Awaited<ReturnType<typeof spawnWorker>> | undefined;
  try {
    await sys.setup();
    worker = await spawnWorker(sys, 'work', CONCURRENCY, WORKER_FLAGS);

    // The enqueues do not depend on the worker's setting: measured in the defaults rows only.
    if (!isBest(key)) await enqueues(sys, res, log);

    res.bulk = await bulkEnqueue(sys, 'work', N, BATCH);
    log(`bulk enqueue ${fmt(res.bulk.jobsPerSec)} jobs/s`);
    const waiting = await sys.countWaiting('work');
    if (waiting !== N) res.problems.push(`bulk enqueue: ${waiting} of ${N} tasks waiting`);
    // A system too slow at its defaults to drain N: the rest goes before the drain (lib/tuning.ts drainCap).
    const drainN = drainCap(baseOf(key), tuning, N);
    if (drainN < N) await sys.purge('work');
    if (drainN < N) await bulkEnqueue(sys, 'work', drainN, BATCH);
    await sys.prepare?.();

    res.drain = await drain(sys, worker, 'work', drainN, { databaseUrl: DB });
    const pid = sys.serverPid?.();
    res.serverRssMiB = pid ? rssMiB(pid) : undefined;
    log(`drain ${fmt(res.drain.jobsPerSec)} jobs/s`);

    res.latency = await latency(sys, worker, 'work', LAT_COUNT, RATE, drainN);
    log(`latency p50 ${res.latency.p50} ms, p95 ${res.latency.p95} ms, p99 ${res.latency.p99} ms`);

    const serverPid = sys.serverPid?.();
    res.serverPeakRssMiB = serverPid ? peakRssMiB(serverPid) : undefined;
    const report = await worker.request<{ phases: Record<string, { counts: number[] }> }>({ cmd: 'report' });
    await worker.stop();
    worker = undefined;
    res.problems.push(...checkExactlyOnce(report.phases.d?.counts, drainN, 'd'));
    res.problems.push(...checkExactlyOnce(report.phases.l?.counts, LAT_COUNT, 'l'));
    for (const phase of Object.keys(report.phases)) if (phase !== 'd' && phase !== 'l') res.problems.push(`worker: ran tasks of phase "${phase}"`);
    res.problems.push(...(await sys.verifyDrained('work', drainN + LAT_COUNT)));
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

/** "17,653 (15,001–18,220)": the median with the rounds' spread, when there is one. */
function withSpread(x: number | undefined, range: [number, number] | undefined): string {
  return range && range[0] !== range[1] ? `${fmt(x)} (${fmt(range[0])}–${fmt(range[1])})` : fmt(x);
}

function report(results: SystemResult[]): string {
  const ok = (r: SystemResult) => (r.error ? 'ERROR' : r.exactlyOnce ? 'yes' : 'NO');
  const defaults = results.filter((r) => !isBest(r.key));
  const bests = results.filter((r) => isBest(r.key));
  const main = table(
    ['system, at its defaults', 'single enqueue (jobs/s)', 'single, coalescing client (jobs/s)', 'bulk enqueue (jobs/s)', 'drain (jobs/s)', 'latency p50 (ms)', 'p95 (ms)', 'p99 (ms)', 'exactly-once'],
    defaults.map((r) => [
      r.label, fmt(r.single?.jobsPerSec), fmt(r.singleCoalesced?.jobsPerSec), fmt(r.bulk?.jobsPerSec), withSpread(r.drain?.jobsPerSec, r.spread?.drain),
      fmt(r.latency?.p50), fmt(r.latency?.p95), withSpread(r.latency?.p99, r.spread?.p99), ok(r),
    ]),
  );
  const best = bests.length === 0 ? '' : `\n\nBest against best (the setting from ${args.tuning!.split("/").at(-1)}):\n\n${table(
    ['system, at its best setting', 'setting', 'drain (jobs/s)', 'latency p50 (ms)', 'p95 (ms)', 'p99 (ms)', 'exactly-once'],
    bests.map((r) => [
      r.label, describeTuning(tuningOf(r.key)), withSpread(r.drain?.jobsPerSec, r.spread?.drain),
      fmt(r.latency?.p50), fmt(r.latency?.p95), withSpread(r.latency?.p99, r.spread?.p99), ok(r),
    ]),
  )}`;
  const perTask = (sec: number | null | undefined, d: DrainResult | undefined) => (d && typeof sec === 'number' ? fmt((sec * 1e6) / d.jobs) : '—');
  const cpu = table(
    ['system', 'drain from the first task (s)', 'with start-up (s)', 'worker (µs/task)', 'server (µs/task)', 'PostgreSQL backends / Redis (µs/task)', 'all (µs/task)', 'server peak RSS (MiB)'],
    results.map((r) => {
      const d = r.drain;
      const all = d && d.workerCpuSec !== null ? d.workerCpuSec + (d.serverCpuSec ?? 0) + (d.storageCpuSec ?? 0) : null;
      return [
        r.label, fmt((d?.ms ?? NaN) / 1000, 2), fmt((d?.wallMs ?? NaN) / 1000, 2), perTask(d?.workerCpuSec, d), perTask(d?.serverCpuSec, d),
        perTask(d?.storageCpuSec, d), perTask(all, d), fmt(r.serverPeakRssMiB, 1),
      ];
    }),
  );
  const q = (a?: number, b?: number) => (a && b ? `${round(a / b, 2).toFixed(2)}×` : '—');
  const ratioRows: string[][] = [];
  for (const tf of results.filter((r) => OURS.includes(r.key))) {
    for (const peer of results.filter((r) => !OURS.includes(r.key) && isBest(r.key) === isBest(tf.key))) {
      ratioRows.push([
        `${tf.label} / ${peer.label}`,
        q(tf.single?.jobsPerSec, peer.single?.jobsPerSec), q(tf.singleCoalesced?.jobsPerSec, peer.singleCoalesced?.jobsPerSec ?? peer.single?.jobsPerSec),
        q(tf.bulk?.jobsPerSec, peer.bulk?.jobsPerSec), q(tf.drain?.jobsPerSec, peer.drain?.jobsPerSec),
        q(tf.latency?.p50, peer.latency?.p50), q(tf.latency?.p95, peer.latency?.p95), q(tf.latency?.p99, peer.latency?.p99),
      ]);
    }
  }
  const ratios = table(['ratio', 'single enqueue', 'single, coalescing client ¹', 'bulk enqueue', 'drain', 'latency p50', 'p95', 'p99'], ratioRows);
  return `Defaults against defaults:\n\n${main}${best}\n\nCPU per task during the drain (from the first task; each system's own processes and PostgreSQL backends), and the Taskflow server's memory:\n\n${cpu}\n\n`
    + `Ratios, defaults to defaults and best to best (throughput: above 1× = Taskflow faster; latency: above 1× = Taskflow slower):\n\n${ratios}\n`
    + `\n¹ Taskflow's \`submit\` against the peer's coalescing client where it has one (BullMQ with ioredis auto-pipelining), else the peer's plain single enqueue (pg-boss, graphile-worker have none).\n`
    + (BASELINE === undefined ? '' : `\n${beforeAfter(results)}\n`);
}

/**
 * With --baseline: per measure, this tree's Taskflow (after) and the baseline's (before) as
 * ratios to graphile-worker of the same run, and after ÷ before.
 */
function beforeAfter(results: SystemResult[]): string {
  // The defaults rows when the run has them, else the best rows (`--variants best`).
  const row = (k: string) => results.find((r) => r.key === k) ?? results.find((r) => r.key === `${k}-best`);
  const [after, before, gw] = ['taskflow', 'baseline', 'graphile'].map(row);
  const q = (a?: number, b?: number) => (a && b ? `${round(a / b, 2).toFixed(2)}×` : '—');
  const measures: [string, (r: SystemResult | undefined) => number | undefined][] = [
    ['single enqueue', (r) => r?.single?.jobsPerSec],
    ['single, coalescing client ¹', (r) => (r === gw ? r?.singleCoalesced ?? r?.single : r?.singleCoalesced)?.jobsPerSec],
    ['bulk enqueue', (r) => r?.bulk?.jobsPerSec],
    ['drain', (r) => r?.drain?.jobsPerSec],
    ['latency p99 ²', (r) => r?.latency?.p99],
  ];
  return `Before and after (--baseline ${BASELINE}; ² latency: above 1× = slower):\n\n${table(
    ['measure', `${after?.label ?? 'Taskflow'} / graphile-worker`, `${before?.label} / graphile-worker`, 'after / before'],
    measures.map(([name, f]) => [name, q(f(after), f(gw)), q(f(before), f(gw)), q(f(after), f(before))]),
  )}`;
}

async function main(): Promise<void> {
  const env = await describeEnvironment(DB, REDIS);
  const load = [uptime()];
  const baseline = BASELINE === undefined ? undefined : { dir: BASELINE, ...taskflowRevision(BASELINE) };
  console.error(`Taskflow bench ${runId}: N=${N}, concurrency ${CONCURRENCY}, latency ${LAT_COUNT} at ${RATE}/s; systems: ${keys.join(', ')}; rounds: ${ROUNDS}`
    + `${baseline ? `; baseline: ${baseline.dir} at ${baseline.commit}${baseline.dirtyPackages.length ? ` (+ ${baseline.dirtyPackages.length} changed files in packages/)` : ''}` : ''}`);
  const rounds: SystemResult[][] = [];
  const texts: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = [...keys.slice(round % keys.length), ...keys.slice(0, round % keys.length)];
    const results: SystemResult[] = [];
    for (const key of order) {
      console.error(`\n${ROUNDS > 1 ? `round ${round + 1}: ` : ''}${key} ...`);
      results.push(await benchOne(key, round));
    }
    const ordered = keys.map((k) => results.find((r) => r.key === k)!);
    rounds.push(ordered);
    const text = report(ordered);
    texts.push(text);
    const head = ROUNDS > 1 ? `## Round ${round + 1} of ${ROUNDS} (systems in the order ${order.join(', ')})\n\n` : '';
    console.log(`\n${head}N = ${fmt(N)}${SINGLE_N !== N ? ` (single enqueues: ${fmt(SINGLE_N)})` : ''}, concurrency ${CONCURRENCY}, latency: ${LAT_COUNT} tasks at ${RATE}/s${WORKER_FLAGS.length ? `, workers on ${WORKER_FLAGS.join(" ")}` : ""}\n\n${text}`);
    for (const r of ordered) {
      if (r.error) console.log(`${r.label}: ERROR ${r.error.split('\n')[0]}`);
      else if (r.problems.length) console.log(`${r.label}: PROBLEMS ${r.problems.join('; ')}`);
    }
  }
  load.push(uptime());
  console.log(`\nMachine load (uptime) before and after: ${load.join(' / ')}`);
  const med = ROUNDS > 1 ? medians(rounds, keys) : rounds[0]!;
  const medianText = ROUNDS > 1 ? report(med) : undefined;
  if (medianText) console.log(`\n## Median of the ${ROUNDS} rounds, per system and number (peak RSS: the highest)\n\n${medianText}`);
  const targets = targetsTable(med, rounds);
  console.log(`\n## Against the targets (ratios of the same run${ROUNDS > 1 ? '; each round\'s from that round alone' : ''})\n\n${targets}\n`);
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify({
    runId, at: new Date().toISOString(), n: N, singleN: SINGLE_N, concurrency: CONCURRENCY, latencyCount: LAT_COUNT, ratePerSec: RATE,
    singleInFlight: SINGLE_IN_FLIGHT, batch: BATCH, environment: env, load, variants: VARIANTS, tuning: TUNING && Object.fromEntries(Object.entries(TUNING.systems).map(([k, v]) => [k, v.best])), rounds: ROUNDS, workerNodeFlags: WORKER_FLAGS, baseline,
    // `results` and `table`: the first round, as single-round files always had them.
    results: rounds[0], table: texts[0], ...(ROUNDS > 1 ? { roundResults: rounds, roundTables: texts, medians: med, medianTable: medianText } : {}),
    targets,
  }, null, 2)}\n`);
  console.error(`\nwritten ${file}`);
  if (rounds.flat().some((r) => r.error || !r.exactlyOnce)) process.exitCode = 1;
}

/** The machine's load averages, as `uptime` prints them (the machine is shared). */
function uptime(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim().replace(/^.*load average/, 'load average');
  } catch {
    return 'unknown';
  }
}

try {
  await main();
} finally {
  killAll();
}
