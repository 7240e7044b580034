/**
 * A workflow against the same number of independent tasks, on Taskflow (PostgreSQL), in one
 * run: the workflow is one root, a fan-out of N children and one join (N + 2 tasks, 2N edges);
 * the independent tasks are N + 2 no-op tasks. Each side is submitted, then drained by one
 * worker process (the SDK Worker, concurrency 50, as run.ts drains):
 *
 *   npm run workflows -- [--n 10000] [--rounds 1] [--concurrency 50] [--no-join] [--database-url postgres://...]
 *
 * `--no-join`: the fan-out alone (root and N children, N + 1 tasks), to tell the join's cost
 * from the children's.
 *
 * Reports the submit time (the workflow in one request, `POST /api/v1/workflows`; the
 * independent tasks in batches of 1,000, `enqueueManyIds`) and the drain time (run.ts's drain: from the first
 * task's start to the storage saying all N + 2 succeeded), and the ratios workflow ÷ independent. With
 * `--rounds R` each round runs both sides, alternating which goes first; the ratios are of the
 * medians. Writes results/workflows-<time>.json.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { killAll } from './lib/proc.ts';
import { describeEnvironment, taskflowRevision } from './lib/env.ts';
import { drain, spawnWorker } from './lib/workloads.ts';
import { TaskflowSystem } from './systems/taskflow.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '50' },
    'no-join': { type: 'boolean', default: false },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const N = Number(args.n);
const ROUNDS = Number(args.rounds);
const CONCURRENCY = Number(args.concurrency);
const JOIN = !args['no-join'];
const TOTAL = N + 1 + (JOIN ? 1 : 0);

interface Side { submitMs: number; drainMs: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (s: string) => process.stderr.write(`${s}\n`);

/** Submits the side's tasks into `queue` (payloads carry phase `p` and the index, as run.ts's). */
async function submit(sys: TaskflowSystem, kind: 'workflow' | 'independent', queue: string, p: string): Promise<number> {
  const payload = (i: number) => ({ p, i });
  const t0 = performance.now();
  if (kind === 'workflow') {
    const fan = Array.from({ length: N }, (_, k) => ({ ref: `c${k}`, type: 'noop', queue, payload: payload(k + 1), dependsOn: ['root'] }));
    await sys.client.createWorkflow({
      name: `bench-${p}`,
      tasks: [{ ref: 'root', type: 'noop', queue, payload: payload(0) }, ...fan,
        ...(JOIN ? [{ ref: 'join', type: 'noop', queue, payload: payload(N + 1), dependsOn: fan.map((f) => f.ref) }] : [])],
    });
  } else {
    for (let from = 0; from < TOTAL; from += 1000) {
      await sys.enqueueBatch(queue, Array.from({ length: Math.min(1000, TOTAL - from) }, (_, k) => payload(from + k)));
    }
  }
  return performance.now() - t0;
}

/**
 * Where the drain's time went, by the database's clock: the first task's run (the root), the
 * gap until the next tasks started (its children made ready), the run of the many, and the gap
 * before the last one (the join) started.
 */
async function timeline(sys: TaskflowSystem, queue: string): Promise<string> {
  const [r] = await sys.query<Record<string, number>>(`
    WITH t AS (SELECT id, started_at, finished_at FROM tasks WHERE queue = $1),
    f AS (SELECT * FROM t ORDER BY id LIMIT 1), l AS (SELECT * FROM t ORDER BY id DESC LIMIT 1),
    m AS (SELECT min(started_at) AS s, max(finished_at) AS e FROM t WHERE id > (SELECT id FROM f) AND id < (SELECT id FROM l))
    SELECT round(extract(epoch FROM (SELECT finished_at - started_at FROM f)) * 1000) AS first_ms,
           round(extract(epoch FROM (SELECT s FROM m) - (SELECT finished_at FROM f)) * 1000) AS gap_ms,
           round(extract(epoch FROM (SELECT e - s FROM m)) * 1000) AS many_ms,
           round(extract(epoch FROM (SELECT started_at FROM l) - (SELECT e FROM m)) * 1000) AS last_gap_ms`, [queue]);
  return `first task ${r!.first_ms} ms, then ${r!.gap_ms} ms to the next start, the rest ran in ${r!.many_ms} ms, the last started ${r!.last_gap_ms} ms after`;
}

async function measure(sys: TaskflowSystem, kind: 'workflow' | 'independent', round: number): Promise<Side> {
  const queue = `${kind}-${round}`;
  const phase = `${kind[0]}${round}`;
  const worker = await spawnWorker(sys, queue, CONCURRENCY);
  try {
    const submitMs = await submit(sys, kind, queue, phase);
    await sys.query('CHECKPOINT');
    const d = await drain(sys, worker, queue, TOTAL, { phase });
    const problems = await sys.verifyDrained(queue, TOTAL);
    if (problems.length > 0) throw new Error(`${kind}: ${problems.join('; ')}`);
    log(`round ${round} ${kind}: submit ${Math.round(submitMs)} ms, drain ${Math.round(d.ms)} ms (${Math.round(d.jobsPerSec)}/s); ${await timeline(sys, queue)}`);
    return { submitMs, drainMs: d.ms };
  } finally {
    await worker.stop();
  }
}

async function main(): Promise<void> {
  const sys = new TaskflowSystem({ driver: 'postgres', databaseUrl: args['database-url']!, schema: `bench_wf_${Date.now().toString(36)}` });
  const sides: Record<'workflow' | 'independent', Side[]> = { workflow: [], independent: [] };
  await sys.setup();
  try {
    for (let r = 1; r <= ROUNDS; r++) {
      const order = r % 2 === 1 ? (['independent', 'workflow'] as const) : (['workflow', 'independent'] as const);
      for (const kind of order) sides[kind].push(await measure(sys, kind, r));
    }
  } finally {
    await sys.teardown();
  }
  const med = (kind: 'workflow' | 'independent', k: keyof Side) => median(sides[kind].map((s) => s[k]));
  const rows = (['independent', 'workflow'] as const).map((kind) => ({
    kind, submitMs: Math.round(med(kind, 'submitMs')), drainMs: Math.round(med(kind, 'drainMs')),
    drainPerSec: Math.round(TOTAL / (med(kind, 'drainMs') / 1000)),
  }));
  const ratios = {
    submit: Math.round((med('workflow', 'submitMs') / med('independent', 'submitMs')) * 100) / 100,
    drain: Math.round((med('workflow', 'drainMs') / med('independent', 'drainMs')) * 100) / 100,
  };
  console.log(`\n${TOTAL} tasks (fan-out ${N}${JOIN ? ', one join' : ', no join'}) vs ${TOTAL} independent tasks, ${ROUNDS} round(s), medians:`);
  console.table(rows);
  console.log(`workflow ÷ independent: submit ${ratios.submit}×, drain ${ratios.drain}× (target: drain within 1.3×)`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const file = new URL(`./results/workflows-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, import.meta.url);
  const environment = await describeEnvironment(args['database-url']!, process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  writeFileSync(file, JSON.stringify({ n: N, join: JOIN, rounds: ROUNDS, rows, ratios, sides, revision: taskflowRevision(), environment }, null, 2));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    killAll();
    process.exit(1);
  },
);
