/**
 * `--only producers`: what the server's group commit makes of many coalescing producers (their
 * small batch requests share inserts). 8 producers in this process (a TaskflowClient each, on
 * connections of its own), each `submit`ting 2,500 tasks with 25 calls in flight, three
 * times: tasks per second, PostgreSQL transactions committed per 1,000 tasks, and the CPU per
 * task of the server and of PostgreSQL.
 */
import { Agent } from 'undici';
import { TaskflowClient } from '@taskflow/sdk';
import { cpuSeconds, sleep } from '../lib/proc.ts';
import { fmt, round, table } from '../lib/stats.ts';
import { withServer, type DiagnoseContext } from './context.ts';
import { commits, postgresCpu, us } from './measure.ts';

const K = 8;
const PER = 2_500;
const IN_FLIGHT = 25;

export async function producersSection(ctx: DiagnoseContext): Promise<unknown> {
  const rows: { round: number; jobsPerSec: number; commitsPer1000: number; serverUs: number; postgresUs: number }[] = [];
  await withServer(ctx, `bench_diagprod_${ctx.runId}`, async (sys, _workerId, connect) => {
    const c = await connect();
    const clients = Array.from({ length: K }, () => new TaskflowClient({ url: sys.url, apiKey: sys.apiKey, dispatcher: new Agent({ keepAliveTimeout: 30_000 }) }));
    try {
      for (const cl of clients) await cl.submit({ type: 'noop', queue: 'warm', payload: null });
      for (let pass = 1; pass <= 3; pass++) {
        await sleep(300);
        const server = sys.serverPid()!;
        const c0 = { server: cpuSeconds(server)!, postgres: postgresCpu(), commits: await commits(c) };
        const t0 = performance.now();
        await Promise.all(clients.map(async (cl, k) => {
          let next = 0;
          await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
            while (next < PER) {
              const i = next++;
              if (!(await cl.submit({ type: 'noop', queue: 'many', payload: { p: 'm', k, i } })).created) throw new Error('submit: not created');
            }
          }));
        }));
        const sec = (performance.now() - t0) / 1000;
        const c1 = { server: cpuSeconds(server)!, postgres: postgresCpu(), commits: await commits(c) };
        const n = K * PER;
        rows.push({
          round: pass, jobsPerSec: Math.round(n / sec), commitsPer1000: round((1000 * (c1.commits - c0.commits)) / n, 1),
          serverUs: us(c1.server - c0.server, n), postgresUs: us(c1.postgres - c0.postgres, n),
        });
        await sys.purge('many');
        console.error(`  producers: round ${pass}`);
      }
    } finally {
      for (const cl of clients) await cl.close().catch(() => undefined);
    }
  });
  console.log(`\n### Many producers: ${K} clients in one process, each submitting ${fmt(PER)} tasks with ${IN_FLIGHT} calls in flight (per task)\n`);
  console.log(table(
    ['round', 'tasks/s', 'transactions committed per 1,000 tasks', 'server CPU', 'PostgreSQL CPU'],
    rows.map((r) => [String(r.round), fmt(r.jobsPerSec), String(r.commitsPer1000), `${r.serverUs} µs`, `${r.postgresUs} µs`]),
  ));
  return rows;
}
