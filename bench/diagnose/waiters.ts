/**
 * `--only waiters`: what idle workers' wake-ups and polls cost. Tasks arrive one at a time
 * (500 at 100/s) to 1 and then 10 worker processes (2 and 20 claims long-polling): CPU per
 * task of the server and of PostgreSQL, and PostgreSQL transactions committed per task
 * (`pg_stat_database.xact_commit` of the bench's database: every claim, insert, report and
 * heartbeat is one).
 */
import { cpuSeconds, sleep, until } from '../lib/proc.ts';
import { round, table } from '../lib/stats.ts';
import { spawnWorker } from '../lib/workloads.ts';
import { withServer, type DiagnoseContext } from './context.ts';
import { commits, paced, postgresCpu, us } from './measure.ts';

const COUNT = 500;
const RATE = 100;

export async function waitersSection(ctx: DiagnoseContext): Promise<unknown> {
  const rows: { workers: number; waiting: number; serverUs: number; postgresUs: number; commitsPerTask: number; jobsPerSec: number }[] = [];
  for (const K of [1, 10]) {
    await withServer(ctx, `bench_diagwait_${ctx.runId}_${K}`, async (sys, _workerId, connect) => {
      const c = await connect();
      const workers: Awaited<ReturnType<typeof spawnWorker>>[] = [];
      try {
        for (let k = 0; k < K; k++) workers.push(await spawnWorker(sys, 'idle', 50));
        for (const w of workers) await w.request({ cmd: 'start' });
        await sleep(1500); // every claim loop parked in its long poll
        const server = sys.serverPid()!;
        const c0 = { server: cpuSeconds(server)!, postgres: postgresCpu(), commits: await commits(c) };
        const t0 = performance.now();
        await paced(COUNT, RATE, (i) => sys.enqueueOne('idle', { p: 'w', i }));
        await until(async () => (await sys.countCompleted('idle', COUNT)) >= COUNT, 'the waiters workload to complete', 60_000, 20);
        const sec = (performance.now() - t0) / 1000;
        const c1 = { server: cpuSeconds(server)!, postgres: postgresCpu(), commits: await commits(c) };
        rows.push({
          workers: K, waiting: 2 * K, jobsPerSec: Math.round(COUNT / sec),
          serverUs: us(c1.server - c0.server, COUNT), postgresUs: us(c1.postgres - c0.postgres, COUNT),
          // Every session of the database: the server's, this harness's count polls (one per 20 ms).
          commitsPerTask: round((c1.commits - c0.commits) / COUNT, 2),
        });
        console.error(`  waiters: ${K} worker process(es)`);
      } finally {
        for (const w of workers) await w.request({ cmd: 'exit' }).catch(() => undefined);
      }
    });
  }
  console.log('\n### Idle workers: 500 tasks at 100/s, each to workers long-polling (per task; the whole ~5 s, polls included)\n');
  console.log(table(
    ['worker processes', 'claims long-polling', 'server CPU', 'PostgreSQL CPU', 'transactions committed'],
    rows.map((r) => [String(r.workers), String(r.waiting), `${r.serverUs} µs`, `${r.postgresUs} µs`, String(r.commitsPerTask)]),
  ));
  return rows;
}
