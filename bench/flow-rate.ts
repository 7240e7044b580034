/**
 * A queue rate limit held across nodes: two Taskflow server processes on one PostgreSQL schema,
 * one worker process on each, one queue limited to 50 starts per second (burst 5), a backlog
 * far larger than the window can start. The start rate is measured from the database (each
 * task's `started_at`, the database's clock) over the window:
 *
 *   npm run flow-rate -- [--seconds 20] [--limit 50] [--burst 5] [--database-url postgres://...]
 *
 * Prints the starts per second over the window, the share of each node's worker, and exits
 * with status 1 when the rate is more than 10% off the limit. (The test suite checks the same
 * GCRA arithmetic with a manual clock: packages/core/test/conformance/flow.suite.ts.)
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { killAll } from './lib/proc.ts';
import { adminQuery } from './lib/pg.ts';
import { spawnWorker } from './lib/workloads.ts';
import { TaskflowSystem } from './systems/taskflow.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    limit: { type: 'string', default: '50' },
    burst: { type: 'string', default: '5' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const SECONDS = Number(args.seconds);
const LIMIT = Number(args.limit);
const BURST = Number(args.burst);
const DB = args['database-url']!;
const schema = `bench_flow_rate_${Date.now().toString(36)}`;
const apiKey = `tf_bench_${Math.random().toString(36).slice(2)}`;
const nodes = [0, 1].map(() => new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema, apiKey }));
const queue = 'rated';

let status = 0;
try {
  for (const node of nodes) await node.setup();
  await nodes[0]!.client.updateQueueSettings(queue, { rateLimit: { limit: LIMIT, intervalMs: 1000, burst: BURST } });
  const backlog = LIMIT * (SECONDS + 10) * 2;
  for (let from = 0; from < backlog; from += 1000) {
    await nodes[0]!.client.enqueueManyIds(Array.from({ length: Math.min(1000, backlog - from) }, (_, k) => ({ type: 'noop', queue, payload: { p: 'r', i: from + k } })));
  }
  const workers = await Promise.all(nodes.map((node) => spawnWorker(node, queue, 10)));
  await Promise.all(workers.map((w) => w.request({ cmd: 'start' })));
  await sleep((SECONDS + 3) * 1000);
  const [first] = await adminQuery<{ t: Date }>(DB, `SELECT min(started_at) AS t FROM "${schema}".tasks WHERE queue = $1`, [queue]);
  const t0 = first!.t;
  const byWorker = await adminQuery<{ name: string; n: number }>(DB,
    `SELECT w.name, count(*)::integer AS n FROM "${schema}".tasks t JOIN "${schema}".workers w ON w.id = t.worker_id
      WHERE t.queue = $1 AND t.started_at >= $2 AND t.started_at < $2::timestamptz + $3 * interval '1 second'
      GROUP BY w.name ORDER BY w.name`, [queue, t0, SECONDS]);
  const starts = byWorker.reduce((sum, r) => sum + r.n, 0);
  const rate = starts / SECONDS;
  const off = Math.abs(rate - LIMIT) / LIMIT;
  console.log(`rate limit ${LIMIT}/s (burst ${BURST}), 2 nodes, 1 worker each: ${starts} starts in the first ${SECONDS} s = ${rate.toFixed(2)}/s (${(off * 100).toFixed(1)}% off)`);
  console.log(`per worker (node): ${byWorker.map((r) => `${r.name} ${r.n}`).join(', ')}`);
  if (off > 0.1 || byWorker.length < 2) {
    console.log('FAILED: the rate is more than 10% off the limit, or one node started nothing');
    status = 1;
  }
  await Promise.all(workers.map((w) => w.request({ cmd: 'exit' }).catch(() => undefined)));
} finally {
  await nodes[1]!.server?.stop();
  for (const node of nodes) await node.teardown().catch((err) => console.error('teardown failed', err));
  await killAll();
}
process.exit(status);
