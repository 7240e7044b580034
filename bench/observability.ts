/**
 * What observability costs Taskflow's hot path (on PostgreSQL): every workload against one
 * server process per mode, in one run, the modes alternating round by round:
 *
 * - `off`: metrics off (`TASKFLOW_METRICS=off`) and no OpenTelemetry SDK anywhere;
 * - `metrics`: the Prometheus metrics on (the default), no SDK;
 * - `tracing`: metrics off, an SDK registered with no exporter in the producer, the worker and
 *   the server (every span made, sampled and recorded, then dropped: lib/tracing-sdk.ts);
 * - `both`: metrics on and the SDK.
 *
 *   npm run observability -- [--n 10000] [--rounds 4] [--modes off,metrics,tracing,both] [--database-url postgres://...]
 *   npm run tracing -- [--n 10000] [--rounds 4]      # --modes metrics,both: tracing over the default server
 *
 * The workloads:
 * - single: `enqueue`, one request per task, 50 in flight;
 * - submit: `submit`, 50 in flight, coalesced into batch requests;
 * - bulk: `enqueueManyIds`, batches of 1,000;
 * - drain: the bulk's tasks, one worker process (concurrency 50, the SDK Worker's defaults),
 *   clocked from the first task (lib/workloads.ts `drain`). With tracing each task carries its
 *   producer's `traceparent`, the worker runs it in a `process` span and reports its trace id.
 *
 * Reports tasks/s (median of the rounds, with their min–max) and the CPU per task of each
 * process, read from /proc: the producer (this process; not for the drain), the server, the
 * worker (the drain) and the PostgreSQL backends of the server's connections
 * (lib/backends.ts), with each mode's ratio to the first mode. The order of the modes rotates
 * each round (round r starts with mode r), so that no mode always runs first or last on a
 * machine whose load drifts. Output: tables on stdout, everything in
 * results/observability-<time>.json. The schemas are dropped and the processes stopped at the end.
 */
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TaskflowClient } from '@taskflow/sdk';
import { cpuSeconds, killAll } from './lib/proc.ts';
import { backendCpu, backendCpuDelta, backendsOf } from './lib/backends.ts';
import { describeEnvironment } from './lib/env.ts';
import { median } from './lib/rounds.ts';
import { fmt, table } from './lib/stats.ts';
import { drain, spawnWorker } from './lib/workloads.ts';
import { sdkBulk, sdkSingles } from './lib/sdkEnqueue.ts';
import { registerTracing, unregisterTracing } from './lib/tracing-sdk.ts';
import { TaskflowSystem } from './systems/taskflow.ts';

const MODES = {
  off: { metrics: false, tracing: false },
  metrics: { metrics: true, tracing: false },
  tracing: { metrics: false, tracing: true },
  both: { metrics: true, tracing: true },
} as const;
type Mode = keyof typeof MODES;

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '4' },
    modes: { type: 'string', default: 'off,metrics,tracing,both' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const N = Number(args.n);
const ROUNDS = Number(args.rounds);
if (!Number.isInteger(N) || N <= 0 || !Number.isInteger(ROUNDS) || ROUNDS <= 0) throw new Error('--n and --rounds: whole numbers above 0');
const modes = args.modes!.split(',').map((m) => m.trim()) as Mode[];
for (const m of modes) if (!(m in MODES)) throw new Error(`--modes: ${Object.keys(MODES).join(', ')}; not ${m}`);
if (modes.length < 2 || new Set(modes).size !== modes.length) throw new Error('--modes: at least two, each once');

const WORKLOADS = ['single', 'submit', 'bulk', 'drain'] as const;
type Workload = (typeof WORKLOADS)[number];
/** One measurement: the rate and the CPU seconds of each process over the N tasks. */
interface Sample { round: number; tasksPerSec: number; cpuSec: { producer: number | null; server: number | null; worker: number | null; postgres: number | null } }
const samples: Record<string, Sample[]> = {};
const DB = args['database-url']!;
const stamp = Date.now().toString(36);
/** The machine's 1-minute load average at the start of each round, and at the end. */
const loads: number[] = [];

const systems = Object.fromEntries(modes.map((mode) => [mode, new TaskflowSystem({
  driver: 'postgres', databaseUrl: DB, schema: `bench_obs_${mode}_${stamp}`, label: `Taskflow, ${mode}`,
  serverConfig: { metrics: MODES[mode].metrics, ...(MODES[mode].tracing ? { benchTracing: true } : {}) },
  workerTracing: MODES[mode].tracing,
})])) as Record<Mode, TaskflowSystem>;

/** Runs `fn` (N tasks) on `sys` and records its rate and the CPU of the producer, the server and its backends. */
async function measure(round: number, key: string, sys: TaskflowSystem, fn: () => Promise<void>): Promise<void> {
  const serverPid = sys.serverPid()!;
  const pg0 = backendCpu(await backendsOf(DB, serverPid));
  const p0 = process.cpuUsage();
  const s0 = cpuSeconds(serverPid)!;
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const p = process.cpuUsage(p0);
  const s1 = cpuSeconds(serverPid)!;
  const pg1 = backendCpu(new Set([...pg0.keys(), ...(await backendsOf(DB, serverPid))]));
  (samples[key] ??= []).push({
    round, tasksPerSec: Math.round((N * 1000) / ms),
    cpuSec: { producer: (p.user + p.system) / 1e6, server: s1 - s0, worker: null, postgres: backendCpuDelta(pg0, pg1) },
  });
}

/** The producer's side of a mode: the SDK registered in this process only while a tracing mode runs. */
function enter(mode: Mode): void {
  if (MODES[mode].tracing) registerTracing();
  else unregisterTracing();
}

async function run(): Promise<void> {
  for (const mode of modes) await systems[mode].setup();
  const clients = Object.fromEntries(modes.map((mode) => [mode, new TaskflowClient({ url: systems[mode].url, apiKey: systems[mode].apiKey })])) as Record<Mode, TaskflowClient>;
  // Untimed, so that no mode pays for the JIT and the caches of the first round.
  for (const mode of modes) {
    enter(mode);
    await sdkSingles(clients[mode], 'warm', N, false);
    await sdkSingles(clients[mode], 'warm', N, true);
    await sdkBulk(clients[mode], 'warm', N);
    await systems[mode].purge('warm');
  }
  for (let r = 0; r < ROUNDS; r++) {
    const order = modes.map((_, i) => modes[(i + r) % modes.length]!);
    loads.push(Math.round(loadavg()[0]! * 10) / 10);
    console.error(`round ${r + 1} of ${ROUNDS}: ${order.join(', ')} (load average ${loads.at(-1)})`);
    for (const mode of order) {
      const sys = systems[mode];
      const c = clients[mode];
      enter(mode);
      await measure(r, `single ${mode}`, sys, () => sdkSingles(c, 'single', N, false));
      await sys.purge('single');
      await measure(r, `submit ${mode}`, sys, () => sdkSingles(c, 'single', N, true));
      await sys.purge('single');
      const queue = `work_${mode}_${r}`;
      await measure(r, `bulk ${mode}`, sys, () => sdkBulk(c, queue, N));
      await sys.prepare();
      const worker = await spawnWorker(sys, queue, 50);
      const d = await drain(sys, worker, queue, N, { databaseUrl: DB });
      await worker.request({ cmd: 'exit' }).catch(() => undefined);
      (samples[`drain ${mode}`] ??= []).push({
        round: r, tasksPerSec: d.jobsPerSec, cpuSec: { producer: null, server: d.serverCpuSec, worker: d.workerCpuSec, postgres: d.storageCpuSec },
      });
      await sys.purge(queue);
      await sys.query('CHECKPOINT');
    }
  }
  loads.push(Math.round(loadavg()[0]! * 10) / 10);
  unregisterTracing();
  await Promise.all(Object.values(clients).map((c) => c.close()));
}

/** CPU per task of one process over the rounds (median), µs; undefined when not measured. */
function cpuUs(s: Sample[], k: keyof Sample['cpuSec']): number | undefined {
  const m = median(s.map((x) => x.cpuSec[k]));
  return m === undefined ? undefined : (m * 1e6) / N;
}

function report(): string {
  const out: string[] = [];
  const base = modes[0]!;
  for (const w of WORKLOADS) {
    const parts = (w === 'drain' ? ['server', 'worker', 'postgres'] : ['producer', 'server', 'postgres']) as (keyof Sample['cpuSec'])[];
    const total = (s: Sample[]) => median(s.map((x) => parts.reduce((a, k) => a + (x.cpuSec[k] ?? 0), 0)))! * 1e6 / N;
    const rows = modes.map((mode) => {
      const s = samples[`${w} ${mode}`]!;
      const b = samples[`${w} ${base}`]!;
      const rate = median(s.map((x) => x.tasksPerSec))!;
      const rates = s.map((x) => x.tasksPerSec);
      const perRound = s.map((x) => x.tasksPerSec / b.find((y) => y.round === x.round)!.tasksPerSec);
      return [
        mode, fmt(rate), `${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}`,
        `${(rate / median(b.map((x) => x.tasksPerSec))!).toFixed(3)}×`, perRound.map((x) => x.toFixed(2)).join(' / '),
        parts.map((k) => fmt(cpuUs(s, k))).join(' / '), fmt(total(s)),
        `${(((total(s) - total(b)) / total(b)) * 100).toFixed(1)}%`,
      ];
    });
    out.push(`\n### ${w}\n\n${table(
      ['mode', 'tasks/s', 'min–max', `÷ ${base}`, `÷ ${base} per round`, `CPU µs per task: ${parts.join(' / ')}`, 'all', `CPU vs ${base}`], rows)}`);
  }
  return out.join('\n');
}

try {
  await run();
} finally {
  for (const mode of modes) await systems[mode].teardown().catch((err) => console.error(`teardown of ${mode}:`, err));
  killAll();
}

console.log(`\nObservability modes (${modes.join(', ')}), N = ${fmt(N)}, medians of ${ROUNDS} rounds; load average (1 min) at each round's start and the end: ${loads.join(', ')}${report()}`);
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const file = `${dir}observability-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ environment: await describeEnvironment(DB, process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'), n: N, rounds: ROUNDS, modes, loads, samples }, null, 2));
console.log(`\nwrote ${file}`);
