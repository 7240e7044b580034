/**
 * What an idempotency key per task costs Taskflow (on PostgreSQL): each workload run with tasks
 * without keys and with keys made up by the SDK client (`idempotencyKeys: 'none'` and `'all'`),
 * alternating, in one run, against one server process:
 *
 *   npm run keys -- [--n 10000] [--rounds 4] [--database-url postgres://...]
 *
 * - single: `enqueue`, one request per task, 50 in flight;
 * - submit: `submit`, 50 in flight (coalesced into batch requests);
 * - bulk: `enqueueManyIds`, batches of 1,000;
 * - drain: the bulk's tasks, one worker process (concurrency 50): the keys live in a table of
 *   their own (task_idempotency_keys), which claims and settlements do not touch, so the two
 *   should drain alike.
 *
 * Reports tasks/s and CPU per task of the producer (this process), the server and PostgreSQL
 * (the backends of the server's connections only, found by their application_name, so that
 * other work on the machine's PostgreSQL does not count), the medians of the rounds; the order
 * of plain and keyed swaps each round. CPU per task is what to compare on a busy machine, where
 * tasks/s moves with the neighbours. For PostgreSQL's share without any noise, see
 * `npm run pg-instructions -- --variants base,keyed`. Output: tables on stdout, everything in
 * results/keys-<time>.json. The schema is dropped and the processes stopped at the end.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TaskflowClient } from '@taskflow/sdk';
import { cpuSeconds, killAll } from './lib/proc.ts';
import { adminQuery } from './lib/pg.ts';
import { describeEnvironment } from './lib/env.ts';
import { table } from './lib/stats.ts';
import { drain, spawnWorker } from './lib/workloads.ts';
import { sdkBulk, sdkSingles } from './lib/sdkEnqueue.ts';
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

type Kind = 'plain' | 'keyed';
interface Sample { tasksPerSec: number; producerUs: number; serverUs: number; postgresUs: number; workerUs?: number }
const samples: Record<string, Sample[]> = {};

const DB = args['database-url']!;
const APP = `bench_keys_${process.pid}`;
const sys = new TaskflowSystem({
  driver: 'postgres', databaseUrl: `${DB}${DB.includes('?') ? '&' : '?'}application_name=${APP}`, schema: `bench_keys_${Date.now().toString(36)}`,
});

/**
 * CPU seconds of the PostgreSQL backends serving the server (application_name APP) from
 * `start()` to `stop()`, read every 200 ms so that a backend that exits meanwhile still counts
 * up to its last reading.
 */
class BackendCpu {
  #first = new Map<number, number>();
  #last = new Map<number, number>();
  #timer: NodeJS.Timeout | undefined;
  async #read(): Promise<void> {
    const rows = await adminQuery<{ pid: number }>(DB, 'SELECT pid FROM pg_stat_activity WHERE application_name = $1', [APP]);
    for (const { pid } of rows) {
      const cpu = cpuSeconds(pid);
      if (cpu === null) continue;
      if (!this.#first.has(pid)) this.#first.set(pid, this.#timer === undefined ? cpu : 0);
      this.#last.set(pid, cpu);
    }
  }
  async start(): Promise<void> {
    await this.#read();
    const tick = () => void this.#read().finally(() => { if (this.#timer) this.#timer = setTimeout(tick, 200); });
    this.#timer = setTimeout(tick, 200);
  }
  async stop(): Promise<number> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#read();
    let sum = 0;
    for (const [pid, last] of this.#last) sum += last - (this.#first.get(pid) ?? 0);
    return sum;
  }
}

/** Runs `fn` (N tasks) and records its rate and CPU per task under `label`. */
async function measure(label: string, fn: () => Promise<void>): Promise<void> {
  const backends = new BackendCpu();
  await backends.start();
  const p0 = process.cpuUsage();
  const s0 = cpuSeconds(sys.serverPid()!)!;
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const p = process.cpuUsage(p0);
  const serverUs = Math.round(((cpuSeconds(sys.serverPid()!)! - s0) * 1e6) / N);
  const postgresUs = Math.round(((await backends.stop()) * 1e6) / N);
  (samples[label] ??= []).push({ tasksPerSec: Math.round((N * 1000) / ms), producerUs: Math.round((p.user + p.system) / N), serverUs, postgresUs });
}

await sys.setup();
try {
  const clients: Record<Kind, TaskflowClient> = {
    plain: new TaskflowClient({ url: sys.url, apiKey: sys.apiKey, idempotencyKeys: 'none' }),
    keyed: new TaskflowClient({ url: sys.url, apiKey: sys.apiKey, idempotencyKeys: 'all' }),
  };
  // Untimed, so that neither kind pays for the JIT and the caches of the first round.
  for (const c of Object.values(clients)) {
    await sdkSingles(c, 'warm', N, false);
    await sdkSingles(c, 'warm', N, true);
    await sdkBulk(c, 'warm', N);
    await sys.purge('warm');
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const kind of (r % 2 ? ['keyed', 'plain'] : ['plain', 'keyed']) as Kind[]) {
      const c = clients[kind];
      await measure(`single ${kind}`, () => sdkSingles(c, 'single', N, false));
      await sys.purge('single');
      await measure(`submit ${kind}`, () => sdkSingles(c, 'single', N, true));
      await sys.purge('single');
      const queue = `work_${kind}_${r}`;
      await measure(`bulk ${kind}`, () => sdkBulk(c, queue, N));
      const worker = await spawnWorker(sys, queue, 50);
      const backends = new BackendCpu();
      await backends.start();
      const d = await drain(sys, worker, queue, N);
      const drainPg = await backends.stop();
      await worker.request({ cmd: 'exit' }).catch(() => undefined);
      (samples[`drain ${kind}`] ??= []).push({
        tasksPerSec: d.jobsPerSec, producerUs: 0, serverUs: Math.round(((d.serverCpuSec ?? 0) * 1e6) / N),
        postgresUs: Math.round((drainPg * 1e6) / N), workerUs: Math.round(((d.workerCpuSec ?? 0) * 1e6) / N),
      });
      await sys.purge(queue);
      await sys.query('CHECKPOINT');
    }
  }
  await Promise.all(Object.values(clients).map((c) => c.close()));
} finally {
  await sys.teardown();
  await killAll();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: string[][] = [];
for (const workload of ['single', 'submit', 'bulk', 'drain']) {
  const [p, k] = (['plain', 'keyed'] as Kind[]).map((kind) => samples[`${workload} ${kind}`]!);
  const cpu = (s: Sample[]) => median(s.map((x) => x.producerUs + x.serverUs + x.postgresUs + (x.workerUs ?? 0)));
  const pg = (s: Sample[]) => median(s.map((x) => x.postgresUs));
  const rate = (s: Sample[]) => median(s.map((x) => x.tasksPerSec));
  rows.push([workload, String(rate(p!)), String(rate(k!)), `${(rate(k!) / rate(p!)).toFixed(2)}×`,
    `${cpu(p!)} → ${cpu(k!)} µs (${(((cpu(k!) - cpu(p!)) / cpu(p!)) * 100).toFixed(0)}%)`, `${pg(p!)} → ${pg(k!)} µs`]);
}
console.log(`\nIdempotency keys, N = ${N}, medians of ${ROUNDS} rounds\n\n${table(['workload', 'plain tasks/s', 'keyed tasks/s', 'keyed ÷ plain', 'CPU per task, all processes', 'of it PostgreSQL'], rows)}`);
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const file = `${dir}keys-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ environment: await describeEnvironment(DB, process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'), n: N, rounds: ROUNDS, samples }, null, 2));
console.log(`\nwrote ${file}`);
