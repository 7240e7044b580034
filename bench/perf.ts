/**
 * Where the drain's CPU goes, measured on the CPU rather than by a JavaScript profiler: the
 * Taskflow server and the SDK worker (each in its own process, as run.ts runs them) drain N
 * pre-loaded no-op tasks on PostgreSQL, while Linux `perf record` samples each process
 * (`--perf-basic-prof` gives V8's code its names). Prints, per process, its CPU and its page
 * faults during the drain (from /proc), the worker's requests (claims and separate result
 * reports, with what they carried) and the functions with the most samples.
 *
 *   npm run perf -- [--n 100000] [--top 30] [--no-record] [--faults] [--worker-node-flags "…"]
 *   npm run perf -- --concurrency 5      # a worker with few slots: small claims (default 50)
 *   npm run perf -- --keys 100           # every task with a concurrency key (one of 100), the queue's
 *                                        # per-key limit set never to bind: the limited claim (flow.ts's `keyed`)
 *   npm run perf -- --prefetch 450       # the worker's prefetch (default: the SDK's, adaptive)
 *   npm run perf -- --checkout /path     # the server and the worker of another checkout (before/after)
 *   npm run perf -- --workload single|submit|bulk [--n 100000]
 *   npm run perf -- --metrics off        # the server with its metrics off (TASKFLOW_METRICS=off)
 *   npm run perf -- --tracing            # an OpenTelemetry SDK with no exporter in the producer (this process), the
 *                                        # server and the worker (lib/tracing-sdk.ts), as observability.ts's `tracing`
 *
 * --workload (drain): `submit` records the server and the producer (this process) during N
 *   `TaskflowClient.submit` calls, 50 in flight (run.ts's "single, coalescing client"); `single`
 *   the same with `enqueue`, one request per task (run.ts's "single enqueue"); `bulk`
 *   the same during N tasks in batches of 1,000. This process has V8's names only when started
 *   with them: `npx node --perf-basic-prof perf.ts --workload submit`.
 * --no-record: no `perf`, no --perf-basic-prof: only the CPU, the faults and the drain's rate,
 *   for before/after comparisons (run it alternately in two worktrees).
 * --concurrency, --prefetch (drain): the worker's slots and prefetch buffer (the SDK Worker's
 *   `concurrency` and `prefetch`); the claims' size follows them, so concurrency 5 weighs what
 *   a claim and an HTTP exchange cost per task when they carry few tasks.
 * --checkout: the root of another checkout of the repository (run.ts --baseline's form): its
 *   server and worker run instead of this tree's, with its `npm start` flags (drain only).
 * --faults: sample page faults (`perf record -e page-faults`) instead of cycles, with callers.
 * --worker-node-flags: Node flags for the worker process (default none, as run.ts runs it), e.g.
 *   "--max-semi-space-size=8" to weigh the young generation's size for a busy worker.
 * --server-node-flags: Node flags for the server process, after the service's own (e.g.
 *   "--trace-deopt"; what it prints goes to stderr).
 *
 * Why this and not V8's profiler (`node --cpu-prof`): a V8 profile weighs each sample by the
 * wall time since the one before, so time a process spends runnable but without a core is
 * charged to whatever frame it was in (socket writes above all), and the kernel's share (page
 * faults, system calls) does not show. `perf` counts where the CPU actually was. It needs the
 * `perf` binary (Debian: `linux-perf`) and permission to profile (root, or
 * `kernel.perf_event_paranoid` ≤ 1). The recordings go to bench/profiles/<time>/ (not
 * committed); `perf report -i <file>` reads them further.
 */
import { parseArgs } from 'node:util';
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, cpuSecondsNamed, killAll, sleep } from './lib/proc.ts';
import { fmt, table } from './lib/stats.ts';
import { bulkEnqueue, drain, singleEnqueue, spawnWorker } from './lib/workloads.ts';
import { sdkBulk } from './lib/sdkEnqueue.ts';
import { checkoutRoot, TaskflowSystem, type RequestStats } from './systems/taskflow.ts';
import { registerTracing } from './lib/tracing-sdk.ts';
import { TaskflowClient } from '@taskflow/sdk';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    top: { type: 'string', default: '30' },
    'no-record': { type: 'boolean', default: false },
    faults: { type: 'boolean', default: false },
    'worker-node-flags': { type: 'string', default: '' },
    workload: { type: 'string', default: 'drain' },
    'server-node-flags': { type: 'string', default: '' },
    metrics: { type: 'string', default: 'on' },
    tracing: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '50' },
    keys: { type: 'string', default: '0' },
    prefetch: { type: 'string' },
    checkout: { type: 'string' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const N = Number(args.n);
const TOP = Number(args.top);
const CONCURRENCY = Number(args.concurrency);
const KEYS = Number(args.keys);
if (!Number.isInteger(KEYS) || KEYS < 0) throw new Error(`--keys: a whole number, not ${args.keys}`);
if (!Number.isInteger(CONCURRENCY) || CONCURRENCY < 1) throw new Error(`--concurrency: a whole number above 0, not ${args.concurrency}`);
const PREFETCH = args.prefetch === undefined ? undefined : Number(args.prefetch);
const CHECKOUT = args.checkout === undefined ? undefined : checkoutRoot(args.checkout);
if (PREFETCH !== undefined && !(Number.isInteger(PREFETCH) && PREFETCH >= 0)) throw new Error(`--prefetch: a whole number, not ${args.prefetch}`);
if (args.metrics !== 'on' && args.metrics !== 'off') throw new Error(`--metrics: on or off, not ${args.metrics}`);
const RECORD = !args['no-record'];
const HOW_RECORDED = RECORD ? `under perf record${args.faults ? ' -e page-faults' : ''}` : 'not recorded';
const dir = fileURLToPath(new URL(`./profiles/${new Date().toISOString().replace(/[:.]/g, '-')}/`, import.meta.url));

/** Minor page faults of a process so far (/proc/<pid>/stat, field 10). */
function minorFaults(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

function record(pid: number, file: string): { stop(): Promise<void> } {
  const event = args.faults ? ['-e', 'page-faults'] : ['-F', '999'];
  const child = spawn('perf', ['record', ...event, '-g', '-o', file, '-p', String(pid)], { stdio: 'ignore' });
  return {
    stop: () => new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGINT');
    }),
  };
}

/** The functions with the most samples of a recording: [share, function]. */
function top(file: string): string[][] {
  const text = execFileSync('perf', ['report', '-i', file, '--no-children', '--sort', 'symbol', '-g', 'none', '--stdio'], { maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const rows: string[][] = [];
  for (const line of text.split('\n')) {
    const m = /^\s+([\d.]+%)\s+\[[.k]\]\s+(.*\S)\s*$/.exec(line);
    if (m && rows.length < TOP) rows.push([m[1]!, m[2]!.slice(0, 110)]);
  }
  return rows;
}

async function main(): Promise<void> {
  // The producer's `send` spans: each task carries its producer's traceparent, as with an SDK.
  if (args.tracing) registerTracing();
  if (RECORD) {
    mkdirSync(dir, { recursive: true });
    execFileSync('perf', ['--version'], { stdio: 'ignore' }); // fails early without perf
  }
  const flags = RECORD ? ['--perf-basic-prof'] : [];
  const serverFlags = args['server-node-flags']!.split(' ').filter(Boolean);
  const sys = new TaskflowSystem({
    driver: 'postgres', databaseUrl: args['database-url']!, schema: `bench_perf_${Date.now().toString(36)}`, serverExecArgv: [...flags, ...serverFlags],
    serverConfig: { metrics: args.metrics === 'on', ...(args.tracing ? { benchTracing: true } : {}) },
    workerTracing: args.tracing,
    tuning: PREFETCH === undefined ? {} : { prefetch: PREFETCH },
    checkout: CHECKOUT,
    countRequests: true,
  });
  try {
    await sys.setup();
    if (args.workload === 'single' || args.workload === 'submit' || args.workload === 'bulk') {
      await produce(sys, args.workload);
      return;
    }
    if (args.workload !== 'drain') throw new Error(`--workload: drain, single, submit or bulk, not ${args.workload}`);
    console.error(`enqueueing ${fmt(N)} ...`);
    if (KEYS > 0) await keyedEnqueue(sys);
    else await bulkEnqueue(sys, 'd', N, 1000);
    await sys.prepare();
    const workerFlags = args['worker-node-flags']!.split(' ').filter(Boolean);
    const worker = await spawnWorker(sys, 'd', CONCURRENCY, [...flags, ...workerFlags]);
    const serverPid = sys.serverPid()!;
    const recordings = RECORD ? [record(worker.pid, `${dir}worker.data`), record(serverPid, `${dir}server.data`)] : [];
    if (RECORD) await sleep(500); // perf attaches
    const faults0 = [minorFaults(worker.pid), minorFaults(serverPid)];
    const d = await drain(sys, worker, 'd', N, { databaseUrl: args['database-url'] });
    const faults = [minorFaults(worker.pid) - faults0[0]!, minorFaults(serverPid) - faults0[1]!];
    for (const r of recordings) await r.stop();
    const requests = (await worker.request<{ stats: Partial<RequestStats> }>({ cmd: 'stats' })).stats;
    await worker.stop();
    const slots = `concurrency ${CONCURRENCY}, prefetch ${PREFETCH ?? 'auto'}${KEYS > 0 ? `, ${KEYS} concurrency keys` : ''}`;
    console.log(`\n### Drain of ${fmt(N)} (${HOW_RECORDED}; ${slots}${CHECKOUT ? `; server and worker of ${CHECKOUT}` : ''}; metrics ${args.metrics}; tracing ${args.tracing ? 'on' : 'off'}; worker flags: ${workerFlags.join(' ') || 'none'})\n`);
    console.log(table(['', 'jobs/s', 'CPU (s)', 'CPU per task', 'minor page faults'], [
      ['worker', fmt(d.jobsPerSec), String(d.workerCpuSec), `${Math.round((d.workerCpuSec! * 1e6) / N)} µs`, fmt(faults[0]!)],
      ['server', '', String(d.serverCpuSec), `${Math.round((d.serverCpuSec! * 1e6) / N)} µs`, fmt(faults[1]!)],
      ['PostgreSQL', '', String(d.storageCpuSec), `${Math.round((d.storageCpuSec! * 1e6) / N)} µs`, '—'],
    ]));
    if (requests.claims !== undefined) {
      const per = (a: number, b: number) => (b > 0 ? (a / b).toFixed(1) : '—');
      console.log(`\nThe worker's requests (to its stop): ${fmt(requests.claims)} claims (${per(requests.tasksClaimed!, requests.claimsAnswered! - requests.emptyClaims!)} tasks per non-empty answer, `
        + `${per(requests.resultsOnClaims!, requests.claimsWithResults!)} results on those carrying some), ${fmt(requests.reports!)} separate result reports (${per(requests.resultsOnReports!, requests.reports!)} each): `
        + `${per(N, requests.claims + requests.reports!)} tasks per request`);
    }
    if (RECORD) {
      for (const name of ['worker', 'server']) {
        console.log(`\n### ${name}: the functions with the most ${args.faults ? 'page faults' : 'samples'} (${dir}${name}.data)\n`);
        console.log(table(['share', 'function'], top(`${dir}${name}.data`)));
      }
    }
  } finally {
    await sys.teardown();
  }
}

/** N tasks on queue `d`, each with one of KEYS concurrency keys in turn, under a per-key limit that never binds. */
async function keyedEnqueue(sys: TaskflowSystem): Promise<void> {
  const client = new TaskflowClient({ url: sys.url, apiKey: sys.apiKey, idempotencyKeys: 'none' });
  await client.updateQueueSettings('d', { maxRunningPerKey: 1_000_000 });
  await sdkBulk(client, 'd', N, KEYS);
  await client.close();
}

/** The server and this process (the producer) recorded during N submissions. */
async function produce(sys: TaskflowSystem, how: 'single' | 'submit' | 'bulk'): Promise<void> {
  // Warm up the path (the JIT, the pools, the queue's row) outside the recording.
  await (how === 'bulk' ? bulkEnqueue(sys, 'w', 5000, 1000, 'w') : singleEnqueue(sys, 'w', 2000, 50, 'w', how === 'submit'));
  const serverPid = sys.serverPid()!;
  const recordings = RECORD ? [record(process.pid, `${dir}producer.data`), record(serverPid, `${dir}server.data`)] : [];
  if (RECORD) await sleep(500);
  const pids = [process.pid, serverPid];
  const faults0 = pids.map(minorFaults);
  const cpu0 = [...pids.map((p) => cpuSeconds(p)!), cpuSecondsNamed('postgres')];
  const t = how === 'bulk' ? await bulkEnqueue(sys, 'd', N, 1000) : await singleEnqueue(sys, 'd', N, 50, 'd', how === 'submit');
  const cpu = [...pids.map((p) => cpuSeconds(p)!), cpuSecondsNamed('postgres')].map((c, i) => c - cpu0[i]!);
  const faults = pids.map((p, i) => minorFaults(p) - faults0[i]!);
  for (const r of recordings) await r.stop();
  console.log(`\n### ${how === 'bulk' ? 'bulk enqueue, batches of 1,000' : `${how === 'submit' ? 'submit' : 'enqueue'}, 50 in flight`}: ${fmt(N)} tasks (${HOW_RECORDED}; metrics ${args.metrics})\n`);
  const us = (sec: number) => `${Math.round((sec * 1e6) / N)} µs`;
  console.log(table(['', 'jobs/s', 'CPU (s)', 'CPU per task', 'minor page faults'], [
    ['producer (this process)', fmt(t.jobsPerSec), cpu[0]!.toFixed(2), us(cpu[0]!), fmt(faults[0]!)],
    ['server', '', cpu[1]!.toFixed(2), us(cpu[1]!), fmt(faults[1]!)],
    ['PostgreSQL', '', cpu[2]!.toFixed(2), us(cpu[2]!), '—'],
  ]));
  if (RECORD) {
    for (const name of ['producer', 'server']) {
      console.log(`\n### ${name}: the functions with the most ${args.faults ? 'page faults' : 'samples'} (${dir}${name}.data)\n`);
      console.log(table(['share', 'function'], top(`${dir}${name}.data`)));
    }
  }
}

try {
  await main();
} finally {
  killAll();
}
