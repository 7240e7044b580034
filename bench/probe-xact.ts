import pg from 'pg';
import { TaskflowSystem } from './systems/taskflow.ts';
import { bulkEnqueue, drain, singleEnqueue, spawnWorker } from './lib/workloads.ts';
const N = 20000;
const sys = new TaskflowSystem({ driver: 'postgres', databaseUrl: 'postgres://postgres@127.0.0.1:5432/test', schema: `probe_${Date.now().toString(36)}` });
await sys.setup();
const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' }); await c.connect();
const stat = async () => (await c.query(`SELECT xact_commit::int AS x, tup_inserted::int AS i, tup_updated::int AS u, tup_fetched::int AS f, tup_returned::int AS r FROM pg_stat_database WHERE datname = 'test'`)).rows[0];
const worker = await spawnWorker(sys, 'work', 50);
try {
  for (const [label, f] of [
    ['single', () => singleEnqueue(sys, 'single', N, 50)],
    ['submit', () => singleEnqueue(sys, 'single', N, 50, 's', true)],
    ['bulk', () => bulkEnqueue(sys, 'work', N, 1000, 'd')],
    ['drain', () => drain(sys, worker, 'work', N, 'd')],
  ] as const) {
    await new Promise((r) => setTimeout(r, 800));
    const a = await stat(); const r: any = await f(); await new Promise((r) => setTimeout(r, 800)); const b = await stat();
    console.log(label.padEnd(8), r.jobsPerSec, 'commits', b.x - a.x, 'inserted', b.i - a.i, 'updated', b.u - a.u, 'fetched', b.f - a.f, 'returned', b.r - a.r);
  }
} finally { await worker.stop(); await c.end(); await sys.teardown(); }
