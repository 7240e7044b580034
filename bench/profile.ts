/**
 * Where the time goes: CPU profiles (node --cpu-prof) of the Taskflow server process and of
 * the SDK worker process while they drain N pre-loaded no-op tasks on PostgreSQL, and of the
 * server that took the bulk enqueue of those tasks (batches of 1,000).
 *
 *   npm run profile -- [--n 20000]
 *
 * The tasks are loaded through a first server process; the drain is served by a second one,
 * started with --cpu-prof on the same schema, so that the server profile holds the drain
 * (and the node's start) and not the enqueue. The summaries are given for the whole process
 * and for the samples taken during the drain alone (a window on the monotonic clock that
 * V8 and process.hrtime share). Profiles go to bench/profiles/<time>/ (not committed),
 * summaries to stdout.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { killAll } from './lib/proc.ts';
import { fmt } from './lib/stats.ts';
import { bulkEnqueue, checkExactlyOnce, drain, spawnWorker } from './lib/workloads.ts';
import { TaskflowSystem } from './systems/taskflow.ts';
import { render, summarize } from './profile-summary.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '50' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const N = Number(args.n);
const DB = args['database-url']!;
const schema = `bench_prof_${Date.now().toString(36)}`;
const dir = fileURLToPath(new URL(`./profiles/${new Date().toISOString().replace(/[:.]/g, '-')}/`, import.meta.url));
mkdirSync(dir, { recursive: true });
const prof = (name: string) => ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}.cpuprofile`];

const windows: Record<string, [number, number]> = {};

async function main(): Promise<void> {
  const loader = new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema, serverExecArgv: prof('server-enqueue') });
  const server = new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema, apiKey: loader.apiKey, serverExecArgv: prof('server') });
  try {
    await loader.setup();
    const e0 = Number(process.hrtime.bigint() / 1000n);
    const b = await bulkEnqueue(loader, 'work', N, 1000, 'd');
    windows['server-enqueue'] = [e0, Number(process.hrtime.bigint() / 1000n)];
    console.error(`bulk enqueue of ${fmt(N)}: ${fmt(b.jobsPerSec)} jobs/s`);
    await loader.server!.stop();
    await server.setup();
    const worker = await spawnWorker(server, 'work', Number(args.concurrency), prof('worker'));
    const from = Number(process.hrtime.bigint() / 1000n);
    const d = await drain(server, worker, 'work', N, 'd');
    const to = Number(process.hrtime.bigint() / 1000n);
    windows.server = windows.worker = [from, to];
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
    const w = windows[name]!;
    const what = name === 'server-enqueue' ? 'the bulk enqueue' : 'the drain';
    console.log(`${render(`${name}, during ${what} only (samples from ${w[0]} to ${w[1]} µs)`, summarize(profile, 25, w))}\n`);
  }
}

try {
  await main();
} finally {
  killAll();
}
