/**
 * Where the time goes: CPU profiles (node --cpu-prof) of the Taskflow server process and of
 * the SDK worker process while they drain N pre-loaded no-op tasks on PostgreSQL, and of the
 * server that took the enqueues: N single enqueues (50 in flight, as in run.ts), the same through
 * the coalescing client (`submit`), then the
 * bulk enqueue of the N tasks to drain (batches of 1,000).
 *
 *   npm run profile -- [--n 20000] [--single 20000]
 *
 * The tasks are loaded through a first server process; the drain is served by a second one,
 * started with --cpu-prof on the same schema, so that the server profile holds the drain
 * (and the node's start) and not the enqueue. The summaries are given for the whole process
 * and for the samples taken during each workload alone (a window on the monotonic clock that
 * V8 and process.hrtime share). Profiles go to bench/profiles/<time>/ (not committed),
 * summaries to stdout.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { killAll } from './lib/proc.ts';
import { fmt } from './lib/stats.ts';
import { bulkEnqueue, checkExactlyOnce, drain, singleEnqueue, spawnWorker } from './lib/workloads.ts';
import { TaskflowSystem } from './systems/taskflow.ts';
import { render, summarize } from './profile-summary.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    single: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '50' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const N = Number(args.n);
const SINGLE = Number(args.single);
const DB = args['database-url']!;
const schema = `bench_prof_${Date.now().toString(36)}`;
const dir = fileURLToPath(new URL(`./profiles/${new Date().toISOString().replace(/[:.]/g, '-')}/`, import.meta.url));
mkdirSync(dir, { recursive: true });
const prof = (name: string) => ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}.cpuprofile`];

/** The summaries printed: a profile file, and the workload whose window of samples is kept. */
const windows: { file: string; what: string; window: [number, number] }[] = [];
const now = () => Number(process.hrtime.bigint() / 1000n);

async function main(): Promise<void> {
  const loader = new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema, serverExecArgv: prof('server-enqueue') });
  const server = new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema, apiKey: loader.apiKey, serverExecArgv: prof('server') });
  try {
    await loader.setup();
    if (SINGLE > 0) {
      const s0 = now();
      const s = await singleEnqueue(loader, 'single', SINGLE, 50);
      windows.push({ file: 'server-enqueue', what: `the single enqueues (${fmt(SINGLE)}, 50 in flight)`, window: [s0, now()] });
      console.error(`single enqueue of ${fmt(SINGLE)}: ${fmt(s.jobsPerSec)} jobs/s`);
      await loader.purge('single');
      const c0 = now();
      const c = await singleEnqueue(loader, 'single', SINGLE, 50, 's', true);
      windows.push({ file: 'server-enqueue', what: `the single enqueues through the coalescing client (${fmt(SINGLE)}, 50 in flight)`, window: [c0, now()] });
      console.error(`single enqueue of ${fmt(SINGLE)} through submit: ${fmt(c.jobsPerSec)} jobs/s`);
      await loader.purge('single');
    }
    const e0 = now();
    const b = await bulkEnqueue(loader, 'work', N, 1000, 'd');
    windows.push({ file: 'server-enqueue', what: `the bulk enqueue (${fmt(N)} in batches of 1,000)`, window: [e0, now()] });
    console.error(`bulk enqueue of ${fmt(N)}: ${fmt(b.jobsPerSec)} jobs/s`);
    await loader.server!.stop();
    await server.setup();
    const worker = await spawnWorker(server, 'work', Number(args.concurrency), prof('worker'));
    const from = now();
    const d = await drain(server, worker, 'work', N, 'd');
    const to = now();
    windows.push({ file: 'server', what: 'the drain', window: [from, to] }, { file: 'worker', what: 'the drain', window: [from, to] });
    console.error(`drain of ${fmt(N)}: ${fmt(d.jobsPerSec)} jobs/s; CPU: server ${d.serverCpuSec} s, worker ${d.workerCpuSec} s`);
    const report = await worker.request<{ phases: Record<string, { counts: number[] }> }>({ cmd: 'report' });
    const problems = [...checkExactlyOnce(report.phases.d?.counts, N, 'd'), ...(await server.verifyDrained('work', N))];
    if (problems.length) console.error(`PROBLEMS: ${problems.join('; ')}`);
    await worker.stop();
    await server.server!.stop();
  } finally {
    await server.teardown().catch(() => undefined);
    await loader.teardown().catch(() => undefined);
  }
  for (const name of ['server', 'worker', 'server-enqueue']) {
    const file = readdirSync(dir).find((f) => f === `${name}.cpuprofile`);
    if (!file) {
      console.log(`${name}: no profile written`);
      continue;
    }
    const profile = JSON.parse(readFileSync(dir + file, 'utf8'));
    console.log(`${render(`${name}, whole process (${dir}${file})`, summarize(profile, 12))}\n`);
    for (const { what, window: w } of windows.filter((x) => x.file === name)) {
      console.log(`${render(`${name}, during ${what} only (samples from ${w[0]} to ${w[1]} µs)`, summarize(profile, 25, w))}\n`);
    }
  }
}

try {
  await main();
} finally {
  killAll();
}
