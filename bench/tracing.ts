/**
 * What OpenTelemetry tracing costs Taskflow's hot path (on PostgreSQL): each workload run with
 * tracing off (no OpenTelemetry SDK anywhere, the server without a tracer: the default) and on
 * (an SDK registered with no exporter in the producer, the worker and the server: every span
 * made and recorded, then dropped), alternating, in one run, against two server processes:
 *
 *   npm run tracing -- [--n 10000] [--rounds 4] [--database-url postgres://...]
 *
 * - single: `enqueue`, one request per task, 50 in flight (a `send` span each, on both sides);
 * - submit: `submit`, 50 in flight, coalesced into batch requests (a `send` span per call);
 * - bulk: `enqueueManyIds`, batches of 1,000 (one `send` span per batch);
 * - drain: the bulk's tasks (each carrying a trace context), one worker process (concurrency
 *   50): a `process` span per task, its trace id reported with the result (the full result
 *   form instead of the compact one), `receive` and `settle` spans on the server.
 *
 * Reports tasks/s and CPU per task of the producer (this process), the server, the worker and
 * PostgreSQL (all its processes, read from /proc), the medians of the rounds; the order of off
 * and on swaps each round. Output: a table on stdout, everything in results/tracing-<time>.json.
 * The schemas are dropped and the processes stopped at the end.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TaskflowClient } from '@taskflow/sdk';
import { cpuSeconds, killAll } from './lib/proc.ts';
import { describeEnvironment } from './lib/env.ts';
import { table } from './lib/stats.ts';
import { drain, spawnWorker } from './lib/workloads.ts';
import { sdkBulk, sdkSingles } from './lib/sdkEnqueue.ts';
import { registerTracing, unregisterTracing } from './lib/tracing-sdk.ts';
import { TaskflowSystem } from './systems/taskflow.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '4' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const N = Number(args.n);
const ROUNDS = Number(args.rounds);
if (!Number.isInteger(N) || N <= 0 || !Number.isInteger(ROUNDS) || ROUNDS <= 0) throw new Error('--n and --rounds: whole numbers above 0');

type Mode = 'off' | 'on';
interface Sample { tasksPerSec: number; cpuUs: number }
const samples: Record<string, Sample[]> = {};
const DB = args['database-url']!;
const stamp = Date.now().toString(36);
const systems: Record<Mode, TaskflowSystem> = {
  off: new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema: `bench_trace_off_${stamp}` }),
  on: new TaskflowSystem({
    driver: 'postgres', databaseUrl: DB, schema: `bench_trace_on_${stamp}`, serverConfig: { benchTracing: true }, workerTracing: true,
  }),
};

/** Runs `fn` (N tasks) and records its rate and CPU per task (producer and server) under `label`. */
async function measure(label: string, sys: TaskflowSystem, fn: () => Promise<void>): Promise<void> {
  const p0 = process.cpuUsage();
  const s0 = cpuSeconds(sys.serverPid()!)!;
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const p = process.cpuUsage(p0);
  const serverUs = ((cpuSeconds(sys.serverPid()!)! - s0) * 1e6) / N;
  (samples[label] ??= []).push({ tasksPerSec: Math.round((N * 1000) / ms), cpuUs: Math.round((p.user + p.system) / N + serverUs) });
}

/** The producer's side of a mode: the SDK registered in this process only while `on` runs. */
function enter(mode: Mode): void {
  if (mode === 'on') registerTracing();
  else unregisterTracing();
}

await systems.off.setup();
await systems.on.setup();
try {
  const clients: Record<Mode, TaskflowClient> = {
    off: new TaskflowClient({ url: systems.off.url, apiKey: systems.off.apiKey }),
    on: new TaskflowClient({ url: systems.on.url, apiKey: systems.on.apiKey }),
  };
  // Untimed, so that neither mode pays for the JIT and the caches of the first round.
  for (const mode of ['off', 'on'] as Mode[]) {
    enter(mode);
    await sdkSingles(clients[mode], 'warm', N, false);
    await sdkSingles(clients[mode], 'warm', N, true);
    await sdkBulk(clients[mode], 'warm', N);
    await systems[mode].purge('warm');
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of (r % 2 ? ['on', 'off'] : ['off', 'on']) as Mode[]) {
      const sys = systems[mode];
      const c = clients[mode];
      enter(mode);
      await measure(`single ${mode}`, sys, () => sdkSingles(c, 'single', N, false));
      await sys.purge('single');
      await measure(`submit ${mode}`, sys, () => sdkSingles(c, 'single', N, true));
      await sys.purge('single');
      const queue = `work_${mode}_${r}`;
      await measure(`bulk ${mode}`, sys, () => sdkBulk(c, queue, N));
      const worker = await spawnWorker(sys, queue, 50);
      const d = await drain(sys, worker, queue, N);
      await worker.request({ cmd: 'exit' }).catch(() => undefined);
      (samples[`drain ${mode}`] ??= []).push({
        tasksPerSec: d.jobsPerSec, cpuUs: Math.round((((d.serverCpuSec ?? 0) + (d.workerCpuSec ?? 0)) * 1e6) / N),
      });
      await sys.purge(queue);
      await sys.query('CHECKPOINT');
    }
  }
  unregisterTracing();
  await Promise.all(Object.values(clients).map((c) => c.close()));
} finally {
  await systems.off.teardown();
  await systems.on.teardown();
  await killAll();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: string[][] = [];
for (const workload of ['single', 'submit', 'bulk', 'drain']) {
  const [off, on] = (['off', 'on'] as Mode[]).map((mode) => samples[`${workload} ${mode}`]!);
  const rate = (s: Sample[]) => median(s.map((x) => x.tasksPerSec));
  const cpu = (s: Sample[]) => median(s.map((x) => x.cpuUs));
  rows.push([workload, String(rate(off!)), String(rate(on!)), `${(rate(on!) / rate(off!)).toFixed(3)}×`,
    `${cpu(off!)} → ${cpu(on!)} µs (${(((cpu(on!) - cpu(off!)) / cpu(off!)) * 100).toFixed(1)}%)`]);
}
console.log(`\nTracing off and on (SDK, no exporter), N = ${N}, medians of ${ROUNDS} rounds\n\n${table(
  ['workload', 'off tasks/s', 'on tasks/s', 'on ÷ off', 'CPU per task (producer + server; drain: server + worker)'], rows)}`);
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const file = `${dir}tracing-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ environment: await describeEnvironment(DB, process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'), n: N, rounds: ROUNDS, samples }, null, 2));
console.log(`\nwrote ${file}`);
