/**
 * What flow control costs the drain (Taskflow on PostgreSQL): the same N bulk-enqueued no-op
 * tasks drained by one worker process (concurrency 50), in one run against one server process,
 * the variants alternating round by round:
 *
 *   npm run flow -- [--n 10000] [--rounds 3] [--keys 100] [--database-url postgres://...]
 *
 * - plain: no settings, no keys (the plain claim statement);
 * - keyed: every task with a concurrencyKey (one of --keys), the queue's maxRunningPerKey set
 *   high enough never to bind (the flow claim: queue lock, fairness across keys, slot counts);
 * - keyed+rate: the same plus a queue rate limit of 1,000,000/s with a burst of 1,000,000 (the
 *   GCRA bucket read and charged in every claim, never binding).
 *
 * Reports tasks/s and CPU per task of the server and of PostgreSQL (all its processes, so a
 * busy neighbour counts: compare the ratios of one run), the worker's requests (claims and
 * separate result reports) and the tasks per non-empty claim answer, the medians of the
 * rounds, and each variant over plain. Output: a table on stdout, everything in results/flow-<time>.json. The
 * schema is dropped and the processes stopped at the end.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TaskflowClient } from '@taskflow/sdk';
import { killAll } from './lib/proc.ts';
import { describeEnvironment } from './lib/env.ts';
import { table } from './lib/stats.ts';
import { drain, spawnWorker } from './lib/workloads.ts';
import { sdkBulk } from './lib/sdkEnqueue.ts';
import { TaskflowSystem, type RequestStats } from './systems/taskflow.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '3' },
    keys: { type: 'string', default: '100' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const N = Number(args.n);
const ROUNDS = Number(args.rounds);
const KEYS = Number(args.keys);
if (![N, ROUNDS, KEYS].every((x) => Number.isInteger(x) && x > 0)) throw new Error('--n, --rounds and --keys: whole numbers above 0');

const VARIANTS = ['plain', 'keyed', 'keyed+rate'] as const;
type Variant = (typeof VARIANTS)[number];
interface Sample { tasksPerSec: number; serverUs: number; postgresUs: number; workerUs: number; requests: number; tasksPerClaim: number }
const samples: Record<string, Sample[]> = {};

const DB = args['database-url']!;
const sys = new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema: `bench_flow_${Date.now().toString(36)}`, countRequests: true });

async function prepare(client: TaskflowClient, queue: string, variant: Variant): Promise<void> {
  if (variant !== 'plain') {
    await client.updateQueueSettings(queue, {
      maxRunningPerKey: 1_000_000,
      ...(variant === 'keyed+rate' ? { rateLimit: { limit: 1_000_000, intervalMs: 1000, burst: 1_000_000 } } : {}),
    });
  }
  await sdkBulk(client, queue, N, variant === 'plain' ? 0 : KEYS);
}

await sys.setup();
try {
  const client = new TaskflowClient({ url: sys.url, apiKey: sys.apiKey, idempotencyKeys: 'none' });
  for (let r = 0; r < ROUNDS; r++) {
    const order = VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length]!);
    for (const variant of order) {
      const queue = `flow_${variant.replace('+', '_')}_${r}`;
      await prepare(client, queue, variant);
      await sys.query('CHECKPOINT');
      const worker = await spawnWorker(sys, queue, 50);
      const d = await drain(sys, worker, queue, N, { phase: 'd' });
      const requests = (await worker.request<{ stats: Partial<RequestStats> }>({ cmd: 'stats' })).stats;
      await worker.request({ cmd: 'exit' }).catch(() => undefined);
      (samples[variant] ??= []).push({
        tasksPerSec: d.jobsPerSec, serverUs: Math.round(((d.serverCpuSec ?? 0) * 1e6) / N),
        postgresUs: Math.round(((d.storageCpuSec ?? 0) * 1e6) / N), workerUs: Math.round(((d.workerCpuSec ?? 0) * 1e6) / N),
        requests: (requests.claims ?? 0) + (requests.reports ?? 0),
        tasksPerClaim: Math.round((requests.tasksClaimed ?? 0) / Math.max(1, (requests.claimsAnswered ?? 0) - (requests.emptyClaims ?? 0))),
      });
      console.log(`round ${r + 1}: ${variant} ${d.jobsPerSec} tasks/s`);
      await sys.purge(queue);
    }
  }
  await client.close();
} finally {
  await sys.teardown();
  await killAll();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rate = (v: Variant) => median(samples[v]!.map((s) => s.tasksPerSec));
const rows = VARIANTS.map((v) => [
  v, String(rate(v)), `${(rate('plain') / rate(v)).toFixed(2)}×`,
  `${median(samples[v]!.map((s) => s.serverUs))} µs`, `${median(samples[v]!.map((s) => s.postgresUs))} µs`, `${median(samples[v]!.map((s) => s.workerUs))} µs`,
  String(median(samples[v]!.map((s) => s.requests))), String(median(samples[v]!.map((s) => s.tasksPerClaim))),
]);
console.log(`\nFlow control, drain of N = ${N}, ${KEYS} keys, medians of ${ROUNDS} rounds\n\n${table(['variant', 'tasks/s', 'plain ÷ variant (time)', 'server CPU/task', 'PostgreSQL CPU/task', 'worker CPU/task', 'worker requests', 'tasks per claim'], rows)}`);
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const file = `${dir}flow-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ environment: await describeEnvironment(DB, process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'), n: N, rounds: ROUNDS, keys: KEYS, samples }, null, 2));
console.log(`\nwrote ${file}`);
