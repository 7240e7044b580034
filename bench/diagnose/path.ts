/**
 * `--only path`: the enqueue→start path of the latency workload, one step at a time, each
 * 500 times at 100/s on an otherwise idle machine: the round trips it is made of (Redis,
 * PostgreSQL, a bare HTTP exchange, the server's own HTTP stack), the one-task insert alone,
 * the acknowledgement of `enqueue`, and the start of each task in the worker with its
 * acknowledgement timed too (both ends on the same clock, in fractional ms).
 */
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { statements as S } from '@taskflow/core/internal';
import { noopInsertParams } from '../lib/insert-params.ts';
import { sleep } from '../lib/proc.ts';
import { fmt, round, summarize, table } from '../lib/stats.ts';
import { spawnWorker } from '../lib/workloads.ts';
import { withServer, type DiagnoseContext } from './context.ts';
import { startHttpEcho } from './http.ts';
import { paced } from './measure.ts';

const COUNT = 500;
const RATE = 100;

export async function pathSection(ctx: DiagnoseContext): Promise<unknown> {
  const steps: { step: string; what: string; ms: number[] }[] = [];
  const { child, exchange } = await startHttpEcho();
  const redis = new Redis(ctx.redisUrl);
  try {
    const agent = new Agent({ keepAliveTimeout: 30_000 });
    await withServer(ctx, `bench_diagpath_${ctx.runId}`, async (sys, _workerId, connect) => {
      const c = await connect();
      const insert = { name: S.insertWithoutKeysKnownQueues.name, text: S.insertWithoutKeysKnownQueues.text };
      // The queue's row first, as the engine's first insert into a queue makes it; then the
      // statement the engine uses for queues it knows.
      await c.query({ name: S.insertWithoutKeys.name, text: S.insertWithoutKeys.text, values: noopInsertParams(0, 1) });
      const run = async (step: string, what: string, f: (i: number) => Promise<unknown>) => {
        await paced(50, RATE, f); // warm-up
        steps.push({ step, what, ms: await paced(COUNT, RATE, f) });
        console.error(`  ${step}`);
      };
      await run('Redis round trip', '`PING` (ioredis)', () => redis.ping());
      await run('PostgreSQL round trip', '`SELECT 1` (node-postgres)', () => c.query('SELECT 1'));
      await run('one-task insert alone', 'the engine\'s insert statement, synchronous commit (node-postgres)', (i) => c.query({ ...insert, values: noopInsertParams(i, 1) }));
      await run('bare HTTP exchange', 'a node:http server with nothing behind it, undici client', () => exchange(agent));
      await run('Taskflow HTTP, no database', '`GET /healthz` (Fastify, the service\'s hooks)', async () => {
        const res = await request(`${sys.url}/healthz`, { dispatcher: agent });
        await res.body.text();
      });
      await run('enqueue acknowledged', 'SDK `enqueue`: HTTP, validation, group commit, the insert, the answer', (i) => sys.enqueueOne('single', { p: 'a', i }));
      // The whole path, with a worker waiting (long poll) on the queue.
      const worker = await spawnWorker(sys, 'path', 50);
      await worker.request({ cmd: 'start' });
      await sleep(1000);
      await worker.request({ cmd: 'expect', phase: 'l', count: COUNT });
      const reached = worker.waitFor((m: { ev?: string; phase?: string }) => m?.ev === 'reached' && m.phase === 'l', 120_000);
      const acks = await paced(COUNT, RATE, (i) => sys.enqueueOne('path', { p: 'l', i, tu: performance.timeOrigin + performance.now() }));
      await reached;
      const report = await worker.request<{ phases: Record<string, { latencies: number[] }> }>({ cmd: 'report' });
      await worker.stop();
      steps.push({ step: 'enqueue acknowledged, a worker waiting', what: 'the same, while the worker long-polls the queue', ms: acks });
      steps.push({ step: 'enqueue → start', what: 'from just before `enqueue` to the handler\'s start in the worker process', ms: report.phases.l?.latencies ?? [] });
    });
    await agent.close();
  } finally {
    child.kill('SIGKILL');
    redis.disconnect();
  }
  const rows = steps.map(({ step, what, ms }) => {
    const s = summarize(ms);
    return { step, what, count: s.count, p50: round(s.p50, 2), p95: round(s.p95, 2), p99: round(s.p99, 2), max: round(s.max, 2) };
  });
  console.log(`\n### The path of one task, step by step (${COUNT} at ${RATE}/s each, one at a time; ms)\n`);
  console.log(table(['step', 'what', 'p50', 'p95', 'p99', 'max'], rows.map((r) => [r.step, r.what, fmt(r.p50, 2), fmt(r.p95, 2), fmt(r.p99, 2), fmt(r.max, 2)])));
  return rows;
}
