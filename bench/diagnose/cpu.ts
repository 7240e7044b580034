/**
 * `--only cpu`: the bench's own workloads (lib/workloads.ts: single enqueue, one request per
 * task and through the SDK's coalescing `submit`, bulk enqueue, drain, latency), each
 * process's CPU read from /proc before and after each: the producer (this process), the
 * server, the worker, PostgreSQL (every `postgres` process summed), and the whole machine
 * from /proc/stat; per task. During the drain the worker counts what its requests carry:
 * results on claims against results sent on their own (`POST …/results`). The server runs with
 * --trace-gc: its collections and their pauses per workload; its RSS after each workload and
 * its peak (VmHWM).
 */
import { cpus } from 'node:os';
import { cpuSeconds, peakRssMiB, rssMiB, sleep } from '../lib/proc.ts';
import { fmt, percentile, table, type LatencySummary } from '../lib/stats.ts';
import { bulkEnqueue, checkExactlyOnce, drain, latency, singleEnqueue, spawnWorker } from '../lib/workloads.ts';
import { SERVICE_NODE_FLAGS, TaskflowSystem, type RequestStats } from '../systems/taskflow.ts';
import type { DiagnoseContext } from './context.ts';
import { machineBusy, postgresCpu, selfCpu, us } from './measure.ts';

interface GcEvent { kind: string; pauseMs: number }

/** `--trace-gc` lines: "[pid:0x…]  123 ms: Scavenge 20.1 (25.3) -> 12.2 (26.3) MB, pooled: 0 MB, 1.23 / 0.00 ms …". */
function parseGc(line: string): GcEvent | undefined {
  const m = /\d+ ms: (Scavenge|Minor Mark-Sweep|Mark-Compact|Mark-Sweep)[^,]*,(?:[^,]*pooled[^,]*,)? ([\d.]+) \/ [\d.]+ ms/.exec(line);
  return m ? { kind: m[1]!, pauseMs: Number(m[2]) } : undefined;
}

interface Split {
  workload: string;
  jobsPerSec: number;
  wallSec: number;
  cpuSec: Record<string, number>;
  usPerTask: Record<string, number>;
  busyPct: number;
  machineBusyPct: number;
  gc: { young: number; youngMedianMs: number; youngP90Ms: number; youngMaxMs: number; youngTotalMs: number; full: number; fullMaxMs: number };
  serverRssAfterMiB: number | null;
}

type Reading = Record<'producer' | 'server' | 'postgres' | 'worker' | 'machine', number>;

/** One workload's split of the CPU between the processes, and the server's collections during it. */
function split(workload: string, n: number, r: { jobsPerSec: number; ms: number }, c0: Reading, c1: Reading, events: GcEvent[], serverPid: number): Split {
  const cores = cpus().length;
  const cpuSec: Record<string, number> = {};
  for (const k of ['producer', 'server', 'postgres', 'worker'] as const) cpuSec[k] = Math.round((c1[k] - c0[k]) * 100) / 100;
  const ours = cpuSec.producer! + cpuSec.server! + cpuSec.postgres! + cpuSec.worker!;
  const wallSec = r.ms / 1000;
  const usPerTask = Object.fromEntries(Object.entries(cpuSec).map(([k, v]) => [k, us(v, n)]));
  usPerTask.total = us(ours, n);
  const young = events.filter((e) => e.kind === 'Scavenge' || e.kind === 'Minor Mark-Sweep').map((e) => e.pauseMs).sort((a, b) => a - b);
  const full = events.filter((e) => e.kind === 'Mark-Compact' || e.kind === 'Mark-Sweep').map((e) => e.pauseMs);
  return {
    workload, jobsPerSec: r.jobsPerSec, wallSec, cpuSec, usPerTask,
    busyPct: Math.round((100 * ours) / (cores * wallSec)),
    machineBusyPct: Math.round((100 * (c1.machine - c0.machine)) / (cores * wallSec)),
    gc: {
      young: young.length, youngMedianMs: percentile(young, 50), youngP90Ms: percentile(young, 90), youngMaxMs: young.at(-1) ?? NaN,
      youngTotalMs: Math.round(young.reduce((a, b) => a + b, 0)), full: full.length, fullMaxMs: full.length ? Math.max(...full) : NaN,
    },
    serverRssAfterMiB: rssMiB(serverPid),
  };
}

export async function cpuSection(ctx: DiagnoseContext): Promise<unknown> {
  const N = ctx.n;
  let gcPhase = 'start';
  const gc = new Map<string, GcEvent[]>();
  const sys = new TaskflowSystem({
    driver: 'postgres', databaseUrl: ctx.databaseUrl, schema: `bench_diag_${ctx.runId}`, serviceNodeFlags: ctx.serviceNodeFlags, serverExecArgv: ['--trace-gc'], countRequests: true,
    onServerLine: (line) => {
      const e = parseGc(line);
      if (!e) return process.stderr.write(`[taskflow server] ${line}\n`);
      let list = gc.get(gcPhase);
      if (!list) gc.set(gcPhase, (list = []));
      list.push(e);
    },
  });
  const splits: Split[] = [];
  const problems: string[] = [];
  let requests: { drain: RequestStats; afterLatency: RequestStats } | undefined;
  const rss: Record<string, number | null> = {};
  let latencyMs: LatencySummary | undefined;
  try {
    await sys.setup();
    await sleep(500);
    const server = sys.serverPid()!;
    rss.started = rssMiB(server);
    const worker = await spawnWorker(sys, 'work', 50);
    const stats = async () => (await worker.request<{ stats: RequestStats }>({ cmd: 'stats' })).stats;
    const read = (): Reading => ({ producer: selfCpu(), server: cpuSeconds(server)!, postgres: postgresCpu(), worker: cpuSeconds(worker.pid)!, machine: machineBusy() });
    const measure = async (workload: string, n: number, f: () => Promise<{ jobsPerSec: number; ms: number }>) => {
      gcPhase = workload;
      const c0 = read();
      const r = await f();
      const c1 = read();
      await sleep(100); // the last GC lines of the window
      gcPhase = `after ${workload}`;
      splits.push(split(workload, n, r, c0, c1, gc.get(workload) ?? [], server));
      console.error(`  ${workload}: ${fmt(r.jobsPerSec)} jobs/s`);
    };
    await measure('single enqueue', N, () => singleEnqueue(sys, 'single', N, 50));
    await sys.purge('single');
    await measure('single, coalescing client', N, () => singleEnqueue(sys, 'single', N, 50, 's', true));
    await sys.purge('single');
    await measure('bulk enqueue', N, () => bulkEnqueue(sys, 'work', N, 1000, 'd'));
    await measure('drain', N, () => drain(sys, worker, 'work', N, { databaseUrl: ctx.databaseUrl }));
    const afterDrain = await stats();
    await measure('latency (500 at 100/s)', 500, async () => {
      const t0 = performance.now();
      latencyMs = await latency(sys, worker, 'work', 500, 100, N);
      const ms = performance.now() - t0;
      return { jobsPerSec: Math.round((500 * 1000) / ms), ms };
    });
    requests = { drain: afterDrain, afterLatency: await stats() };
    rss.peak = peakRssMiB(server);
    const report = await worker.request<{ phases: Record<string, { counts: number[] }> }>({ cmd: 'report' });
    await worker.stop();
    problems.push(...checkExactlyOnce(report.phases.d?.counts, N, 'd'), ...checkExactlyOnce(report.phases.l?.counts, 500, 'l'));
    problems.push(...(await sys.verifyDrained('work', N + 500)));
  } finally {
    await sys.teardown().catch((err) => console.error('teardown failed', err));
  }
  print(ctx, splits, rss, latencyMs, requests);
  if (problems.length) console.log(`\nPROBLEMS: ${problems.join('; ')}`);
  return { splits, requests, rss, latency: latencyMs, problems, serviceNodeFlags: ctx.serviceNodeFlags ?? `the service's own (${SERVICE_NODE_FLAGS.join(' ')})` };
}

function print(ctx: DiagnoseContext, splits: Split[], rss: Record<string, number | null>, latencyMs: LatencySummary | undefined, requests: { drain: RequestStats } | undefined): void {
  const flags = ctx.serviceNodeFlags;
  console.log(`\n### CPU per task, by process (Taskflow on PostgreSQL, N = ${fmt(ctx.n)}; server flags: ${flags ? flags.join(' ') || '(none)' : 'the service\'s own'})\n`);
  console.log(table(
    ['workload', 'jobs/s', 'producer (harness)', 'Taskflow server', 'PostgreSQL', 'worker', 'all four', 'busy: the four / whole machine, of cores × wall'],
    splits.map((s) => [
      s.workload, fmt(s.jobsPerSec), `${s.usPerTask.producer} µs`, `${s.usPerTask.server} µs`, `${s.usPerTask.postgres} µs`,
      s.workload.startsWith('drain') || s.workload.startsWith('latency') ? `${s.usPerTask.worker} µs` : '—', `${s.usPerTask.total} µs`, `${s.busyPct}% / ${s.machineBusyPct}%`,
    ]),
  ));
  console.log(`\n(latency: per task of the 500, over the ~6 s the workload lasts (a 1 s pause, then 5 s of enqueues), so "busy" is low by design; `
    + `enqueue→start p50 ${fmt(latencyMs?.p50)} ms, p95 ${fmt(latencyMs?.p95)} ms, p99 ${fmt(latencyMs?.p99)} ms, max ${fmt(latencyMs?.max)} ms)\n`);
  console.log(table(
    ['workload', 'server young GCs', 'pause median / p90 / max (ms)', 'young GC total (ms)', 'full GCs (max ms)', 'server RSS after (MiB)'],
    splits.map((s) => [
      s.workload, fmt(s.gc.young), `${fmt(s.gc.youngMedianMs, 2)} / ${fmt(s.gc.youngP90Ms, 2)} / ${fmt(s.gc.youngMaxMs, 2)}`, fmt(s.gc.youngTotalMs),
      `${s.gc.full}${s.gc.full ? ` (${fmt(s.gc.fullMaxMs, 1)})` : ''}`, fmt(s.serverRssAfterMiB),
    ]),
  ));
  console.log(`\nServer RSS: ${fmt(rss.started)} MiB after start, peak ${fmt(rss.peak, 1)} MiB (VmHWM)`);
  if (!requests) return;
  const d = requests.drain;
  const total = d.resultsOnClaims + d.resultsOnReports;
  console.log(`\nRequests of the worker during the drain of ${fmt(ctx.n)} (up to the moment the storage had all of them): `
    + `${fmt(d.claims)} claims sent (${fmt(d.claims - d.claimsAnswered)} still long-polling, ${fmt(d.emptyClaims)} answered with no task), `
    + `${fmt(d.tasksClaimed)} tasks claimed (${(d.tasksClaimed / Math.max(1, d.claimsAnswered - d.emptyClaims)).toFixed(0)} per non-empty answer); `
    + `results: ${fmt(d.resultsOnClaims)} on ${fmt(d.claimsWithResults)} claims (${(d.resultsOnClaims / Math.max(1, d.claimsWithResults)).toFixed(0)} per claim), `
    + `${fmt(d.resultsOnReports)} on ${fmt(d.reports)} separate reports (${(d.resultsOnReports / Math.max(1, d.reports)).toFixed(0)} per report): `
    + `**${Math.round((100 * d.resultsOnClaims) / Math.max(1, total))}% of the results travelled on claims**`);
  console.log(`Tasks per claim answer: ${JSON.stringify(d.tasksPerClaim)}`);
}
