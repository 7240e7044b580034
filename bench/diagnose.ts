/**
 * Where Taskflow's time goes, in numbers the runs of run.ts do not give (Taskflow on PostgreSQL
 * only; the numbers behind "Against the targets" in README.md):
 *
 *   npm run diagnose -- [--n 20000] [--only cpu,http,statements,backlog,path,waiters,producers] [--server-node-flags "…"]
 *
 * - cpu: the bench's own workloads (lib/workloads.ts: single enqueue, one request per task and
 *   through the SDK's coalescing `submit`, bulk enqueue, drain,
 *   latency), each process's CPU read from /proc before and after each (producer = this
 *   process, the server, the worker, PostgreSQL = every `postgres` process summed, and the
 *   whole machine from /proc/stat); per task. During the drain the worker counts what its
 *   requests carry: results on claims vs results sent on their own (`POST …/results`). The
 *   server runs with --trace-gc: its collections and their pauses per workload. Its RSS after
 *   each workload and its peak (VmHWM).
 * - http: the floor of one HTTP exchange here: a bare node:http server (lib/http-echo.ts) in its
 *   own process, an undici client as the SDK's, one at a time and 50 in flight.
 * - statements: the engine's hot-path statements (`@taskflow/core/internal`) sent alone from one
 *   connection, one at a time: the database's own cost.
 * - backlog: the claim statement, and the drain's settle-and-claim statement, with 10,000 and
 *   1,000,000 tasks waiting (another queue, and the same queue under higher-priority tasks),
 *   and the completion counts scaling.ts polls with (--poll completed / unfinished), at both
 *   sizes.
 * - path: the enqueue→start path of the latency workload step by step, each step alone at
 *   100/s: a Redis and a PostgreSQL round trip, the one-task insert statement, a bare HTTP
 *   exchange, the server's HTTP stack without the database, `enqueue`'s acknowledgement, and
 *   enqueue→start with a worker waiting (both ends in fractional ms).
 * - waiters: tasks arriving one at a time (500 at 100/s) to idle workers, 1 and then 10 worker
 *   processes (2 and 20 claims long-polling): CPU per task of the server and of PostgreSQL, and
 *   PostgreSQL transactions committed per task (`pg_stat_database.xact_commit` of the bench's
 *   database: every claim, insert, report and heartbeat is one). What idle workers' wake-ups
 *   and polls cost.
 * - producers: 8 producers in this process (a TaskflowClient each, on connections of its own),
 *   each `submit`ting 2,500 tasks with 25 calls in flight, three times: tasks per second,
 *   PostgreSQL transactions committed per 1,000 tasks, and the CPU per task of the server and
 *   of PostgreSQL. What the server's group commit makes of many coalescing producers (their
 *   small batch requests share inserts).
 *
 * `--server-node-flags` replaces the service's own Node flags (those of `npm start`:
 * --max-semi-space-size=8 --heap-growing-percent=50); `--server-node-flags=` runs the server
 * with V8's defaults.
 * Every schema made is dropped, every process started is stopped. Output: tables on stdout,
 * everything in results/diagnose-<time>.json.
 */
import { parseArgs } from 'node:util';
import { fork, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Agent, request } from 'undici';
import { TaskflowClient } from '@taskflow/sdk';
import { statements as S, successesJson } from '@taskflow/core/internal';
import { noopInsertParams } from './lib/insert-params.ts';
import { cpuSeconds, cpuSecondsNamed, killAll, peakRssMiB, rssMiB, sleep, until } from './lib/proc.ts';
import { describeEnvironment } from './lib/env.ts';
import { fmt, percentile, round, summarize, table, type LatencySummary } from './lib/stats.ts';
import { bulkEnqueue, checkExactlyOnce, drain, latency, singleEnqueue, spawnWorker } from './lib/workloads.ts';
import { SERVICE_NODE_FLAGS, TaskflowSystem, UNFINISHED_COUNT_SQL, type RequestStats } from './systems/taskflow.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    only: { type: 'string', default: 'cpu,http,statements,backlog,path,waiters,producers' },
    'server-node-flags': { type: 'string' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const N = Number(args.n);
const DB = args['database-url']!;
const only = new Set(args.only!.split(',').map((s) => s.trim()));
const serviceNodeFlags = args['server-node-flags'] === undefined ? undefined : args['server-node-flags'].split(/\s+/).filter(Boolean);
const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const CORES = cpus().length;
const out: Record<string, unknown> = {};
const med = (a: number[]) => percentile([...a].sort((x, y) => x - y), 50);
const us = (sec: number, n: number) => Math.round((sec * 1e6) / n);

// ------------------------------------------------------------------ CPU of the processes

const postgresCpu = () => cpuSecondsNamed('postgres');
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
/** CPU seconds the whole machine spent busy (all cores), from /proc/stat. */
function machineBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - f[3]! - f[4]!) / 100; // minus idle and iowait, in clock ticks (100/s)
}

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

async function cpuSection(): Promise<void> {
  let gcPhase = 'start';
  const gc = new Map<string, GcEvent[]>();
  const sys = new TaskflowSystem({
    driver: 'postgres', databaseUrl: DB, schema: `bench_diag_${runId}`, serviceNodeFlags, serverExecArgv: ['--trace-gc'], countRequests: true,
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
    const measure = async (workload: string, n: number, f: () => Promise<{ jobsPerSec: number; ms: number }>) => {
      gcPhase = workload;
      const c0 = { producer: selfCpu(), server: cpuSeconds(server)!, postgres: postgresCpu(), worker: cpuSeconds(worker.pid)!, machine: machineBusy() };
      const r = await f();
      const c1 = { producer: selfCpu(), server: cpuSeconds(server)!, postgres: postgresCpu(), worker: cpuSeconds(worker.pid)!, machine: machineBusy() };
      await sleep(100); // the last GC lines of the window
      gcPhase = `after ${workload}`;
      const cpuSec: Record<string, number> = {};
      for (const k of ['producer', 'server', 'postgres', 'worker'] as const) cpuSec[k] = Math.round((c1[k] - c0[k]) * 100) / 100;
      const ours = cpuSec.producer! + cpuSec.server! + cpuSec.postgres! + cpuSec.worker!;
      const wallSec = r.ms / 1000;
      const usPerTask = Object.fromEntries(Object.entries(cpuSec).map(([k, v]) => [k, us(v, n)]));
      usPerTask.total = us(ours, n);
      const events = gc.get(workload) ?? [];
      const young = events.filter((e) => e.kind === 'Scavenge' || e.kind === 'Minor Mark-Sweep').map((e) => e.pauseMs).sort((a, b) => a - b);
      const full = events.filter((e) => e.kind === 'Mark-Compact' || e.kind === 'Mark-Sweep').map((e) => e.pauseMs);
      splits.push({
        workload, jobsPerSec: r.jobsPerSec, wallSec, cpuSec, usPerTask,
        busyPct: Math.round((100 * ours) / (CORES * wallSec)),
        machineBusyPct: Math.round((100 * (c1.machine - c0.machine)) / (CORES * wallSec)),
        gc: {
          young: young.length, youngMedianMs: percentile(young, 50), youngP90Ms: percentile(young, 90), youngMaxMs: young.at(-1) ?? NaN,
          youngTotalMs: Math.round(young.reduce((a, b) => a + b, 0)), full: full.length, fullMaxMs: full.length ? Math.max(...full) : NaN,
        },
        serverRssAfterMiB: rssMiB(server),
      });
      console.error(`  ${workload}: ${fmt(r.jobsPerSec)} jobs/s`);
    };
    await measure('single enqueue', N, () => singleEnqueue(sys, 'single', N, 50));
    await sys.purge('single');
    await measure('single, coalescing client', N, () => singleEnqueue(sys, 'single', N, 50, 's', true));
    await sys.purge('single');
    await measure('bulk enqueue', N, () => bulkEnqueue(sys, 'work', N, 1000, 'd'));
    await measure('drain', N, () => drain(sys, worker, 'work', N, 'd'));
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
  out.cpu = { splits, requests, rss, latency: latencyMs, problems, serviceNodeFlags: serviceNodeFlags ?? `the service's own (${SERVICE_NODE_FLAGS.join(' ')})` };

  console.log(`\n### CPU per task, by process (Taskflow on PostgreSQL, N = ${fmt(N)}; server flags: ${serviceNodeFlags ? serviceNodeFlags.join(' ') || '(none)' : 'the service\'s own'})\n`);
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
  if (requests) {
    const d = requests.drain;
    const total = d.resultsOnClaims + d.resultsOnReports;
    console.log(`\nRequests of the worker during the drain of ${fmt(N)} (up to the moment the storage had all of them): `
      + `${fmt(d.claims)} claims sent (${fmt(d.claims - d.claimsAnswered)} still long-polling, ${fmt(d.emptyClaims)} answered with no task), `
      + `${fmt(d.tasksClaimed)} tasks claimed (${(d.tasksClaimed / Math.max(1, d.claimsAnswered - d.emptyClaims)).toFixed(0)} per non-empty answer); `
      + `results: ${fmt(d.resultsOnClaims)} on ${fmt(d.claimsWithResults)} claims (${(d.resultsOnClaims / Math.max(1, d.claimsWithResults)).toFixed(0)} per claim), `
      + `${fmt(d.resultsOnReports)} on ${fmt(d.reports)} separate reports (${(d.resultsOnReports / Math.max(1, d.reports)).toFixed(0)} per report): `
      + `**${Math.round((100 * d.resultsOnClaims) / Math.max(1, total))}% of the results travelled on claims**`);
    console.log(`Tasks per claim answer: ${JSON.stringify(d.tasksPerClaim)}`);
  }
  if (problems.length) console.log(`\nPROBLEMS: ${problems.join('; ')}`);
}

// ------------------------------------------------------------------ HTTP floor

const ECHO_BODY = JSON.stringify({ type: 'noop', queue: 'single', payload: { p: 's', i: 1 } });
const ECHO_HEADERS = { 'content-type': 'application/json', authorization: 'Bearer x', accept: 'application/json' };

/**
 * The bare node:http server of lib/http-echo.ts in a process of its own, and one exchange with
 * it as the SDK makes one (a task-sized JSON POST, the answer parsed).
 */
async function startHttpEcho(): Promise<{ child: ChildProcess; exchange(agent: Agent): Promise<void> }> {
  const child = fork(fileURLToPath(new URL('./lib/http-echo.ts', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port: number = await new Promise((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  return {
    child,
    async exchange(agent) {
      const res = await request(`http://127.0.0.1:${port}/api/v1/tasks`, {
        method: 'POST', body: ECHO_BODY, headers: ECHO_HEADERS, dispatcher: agent, headersTimeout: 30_000, bodyTimeout: 30_000,
      });
      JSON.parse(await res.body.text());
    },
  };
}

async function httpSection(): Promise<void> {
  const { child, exchange } = await startHttpEcho();
  const rows: Record<string, number>[] = [];
  try {
    const agent = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
    const one = () => exchange(agent);
    for (let i = 0; i < 2000; i++) await one(); // warm-up
    for (const inFlight of [1, 50]) {
      let next = 0;
      const s0 = cpuSeconds(child.pid!)!;
      const h0 = selfCpu();
      const t0 = performance.now();
      await Promise.all(Array.from({ length: inFlight }, async () => {
        while (next++ < N) await one();
      }));
      const ms = performance.now() - t0;
      rows.push({ inFlight, perSec: Math.round((N * 1000) / ms), clientUs: us(selfCpu() - h0, N), serverUs: us(cpuSeconds(child.pid!)! - s0, N), wallUs: Math.round((ms * 1000) / N) });
    }
    await agent.close();
  } finally {
    child.kill('SIGKILL');
  }
  out.http = rows;
  console.log('\n### The floor of an HTTP exchange (bare node:http server in its own process, undici client)\n');
  console.log(table(['in flight', 'requests/s', 'wall per request', 'client CPU per request', 'server CPU per request'],
    rows.map((r) => [String(r.inFlight), fmt(r.perSec), `${r.wallUs} µs`, `${r.clientUs} µs`, `${r.serverUs} µs`])));
}

// ------------------------------------------------------------------ the path of one task, step by step

/**
 * `count` calls of `f` at `rate` per second, each timed alone (the machine idles between
 * calls, as in the latency workload). Returns the times in ms.
 */
async function paced(count: number, rate: number, f: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 1) await sleep(wait);
    const s = performance.now();
    await f(i);
    out.push(performance.now() - s);
  }
  return out;
}

/**
 * The enqueue→start path of the latency workload, one step at a time, each at 100/s on an idle
 * machine: the round trips it is made of (Redis, PostgreSQL, a bare HTTP exchange, the server's
 * own HTTP stack), the one-task insert alone, the acknowledgement of `enqueue`, and the start
 * of each task in the worker with its acknowledgement timed too (both ends on the same clock,
 * in fractional ms).
 */
async function pathSection(): Promise<void> {
  const COUNT = 500;
  const RATE = 100;
  const steps: { step: string; what: string; ms: number[] }[] = [];
  const { child, exchange } = await startHttpEcho();
  const { Redis } = await import('ioredis');
  const redis = new Redis(args['redis-url']!);
  try {
    const agent = new Agent({ keepAliveTimeout: 30_000 });
    await withServer(`bench_diagpath_${runId}`, async (sys, _workerId, connect) => {
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
  out.path = rows;
  console.log(`\n### The path of one task, step by step (${COUNT} at ${RATE}/s each, one at a time; ms)\n`);
  console.log(table(['step', 'what', 'p50', 'p95', 'p99', 'max'], rows.map((r) => [r.step, r.what, fmt(r.p50, 2), fmt(r.p95, 2), fmt(r.p99, 2), fmt(r.max, 2)])));
}

// ------------------------------------------------------------------ statements alone

const timeMs = async (f: () => Promise<unknown>) => {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
};

async function withServer<R>(schema: string, f: (sys: TaskflowSystem, workerId: string, connect: (relaxed?: boolean) => Promise<pg.Client>) => Promise<R>): Promise<R> {
  const sys = new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema, serviceNodeFlags });
  const clients: pg.Client[] = [];
  let heartbeat: NodeJS.Timeout | undefined;
  try {
    await sys.setup();
    const reg = await sys.client.registerWorker({ name: 'diagnose', queues: ['work', 'hot', 'cold'], concurrency: 50 });
    // The statements below claim as this worker; without heartbeats the server marks it lost
    // after its TTL (15 s, less than a million-row fill can take) and every claim returns nothing.
    // `running: []` renews no lease, so the heartbeat touches only the worker's row.
    heartbeat = setInterval(() => {
      sys.client.heartbeat(reg.id, { running: [] }).catch((err) => console.error('heartbeat failed', err));
    }, 3_000);
    const connect = async (relaxed = false) => {
      const c = new pg.Client({ connectionString: DB, options: `-c search_path="${schema}"${relaxed ? ' -c synchronous_commit=off' : ''}` });
      await c.connect();
      clients.push(c);
      return c;
    };
    return await f(sys, reg.id, connect);
  } finally {
    clearInterval(heartbeat);
    for (const c of clients) await c.end().catch(() => undefined);
    await sys.teardown().catch((err) => console.error('teardown failed', err));
  }
}

async function statementsSection(): Promise<void> {
  const r: Record<string, number> = {};
  await withServer(`bench_diagsql_${runId}`, async (_sys, workerId, connect) => {
    const sync = await connect();
    const relaxed = await connect(true);
    const q = (c: pg.Client, s: { name: string; text: string }, params: unknown[]) => c.query({ name: s.name, text: s.text, values: params });
    const rt: number[] = [];
    for (let i = 0; i < 3000; i++) rt.push(await timeMs(() => sync.query('SELECT 1')));
    r.selectOneUs = Math.round(med(rt.slice(500)) * 1000);
    await sync.query('CREATE TABLE diag_commit (id bigserial PRIMARY KEY, v int)');
    const cs: number[] = [];
    const ca: number[] = [];
    for (let i = 0; i < 3000; i++) cs.push(await timeMs(() => sync.query('INSERT INTO diag_commit (v) VALUES (1)')));
    for (let i = 0; i < 3000; i++) ca.push(await timeMs(() => relaxed.query('INSERT INTO diag_commit (v) VALUES (1)')));
    r.insertSyncUs = Math.round(med(cs.slice(500)) * 1000);
    r.insertAsyncUs = Math.round(med(ca.slice(500)) * 1000);

    const i1: number[] = [];
    const plain: number[] = [];
    const i50: number[] = [];
    const i1000: number[] = [];
    const plainText = `INSERT INTO tasks (queue, type, state, priority, run_at, payload, max_attempts, backoff, timeout_ms, tags)
      VALUES ('work', 'noop', 'queued', 0, now(), $1::jsonb, 5, '{"type":"exponential","delayMs":1000}', 30000, '{}') RETURNING id`;
    for (let i = 0; i < 1500; i++) i1.push(await timeMs(() => q(sync, S.insertWithoutKeys, noopInsertParams(i, 1))));
    for (let i = 0; i < 1500; i++) plain.push(await timeMs(() => sync.query({ name: 'diag_plain_insert', text: plainText, values: [`{"p":"d","i":${i}}`] })));
    for (let i = 0; i < 100; i++) i50.push(await timeMs(() => q(sync, S.insertWithoutKeys, noopInsertParams(0, 50))));
    for (let b = 0; b < 40; b++) i1000.push(await timeMs(() => q(sync, S.insertWithoutKeys, noopInsertParams(b * 1000, 1000))));
    r.insert1Us = Math.round(med(i1.slice(300)) * 1000);
    r.plainInsert1Us = Math.round(med(plain.slice(300)) * 1000);
    r.insert50Ms = +med(i50.slice(10)).toFixed(2);
    r.insert1000Ms = +med(i1000.slice(5)).toFixed(2);
    await sync.query('DELETE FROM tasks');
    await sync.query('VACUUM ANALYZE tasks');

    for (const B of [50, 250]) {
      for (let b = 0; b < 20; b++) await q(sync, S.insertWithoutKeys, noopInsertParams(b * 1000, 1000));
      await sync.query('ANALYZE tasks');
      const claims: number[] = [];
      const sac: number[] = [];
      let held = (await q(relaxed, S.claim, ['work', B, workerId, null])).rows;
      for (let k = 0; k < 10; k++) {
        let rows: any[] = [];
        claims.push(await timeMs(async () => {
          rows = (await q(relaxed, S.claim, ['work', B, workerId, null])).rows;
        }));
        held = held.concat(rows);
      }
      if (held.length !== 11 * B) throw new Error(`11 claims of ${B} took ${held.length} tasks, not ${11 * B}`);
      while (held.length > 0 && sac.length < 20_000 / B + 20) {
        const batch = held.splice(0, B);
        const results = successesJson(batch);
        let rows: any[] = [];
        sac.push(await timeMs(async () => {
          rows = (await q(sync, S.succeedAndClaim, [results, workerId, null, 'work', B])).rows;
        }));
        held = held.concat(rows.filter((t) => t.kind === 'claimed'));
      }
      r[`claim${B}Ms`] = +med(claims).toFixed(2);
      r[`succeedAndClaim${B}Ms`] = +med(sac.slice(2, -3)).toFixed(2);
      await sync.query('DELETE FROM tasks');
      await sync.query('VACUUM ANALYZE tasks');
    }
  });
  out.statements = r;
  console.log('\n### The engine\'s statements alone (one connection, one at a time, medians)\n');
  const per = (ms: number, n: number) => `${Math.round((ms * 1000) / n)} µs`;
  console.log(table(['statement', 'time', 'per task'], [
    ['`SELECT 1` round trip', `${r.selectOneUs} µs`, ''],
    ['one-row `INSERT`, synchronous commit / asynchronous', `${r.insertSyncUs} µs / ${r.insertAsyncUs} µs`, ''],
    ['`taskInsertManyWithoutKeys`, 1 row', `${r.insert1Us} µs`, `${r.insert1Us} µs`],
    ['plain `INSERT … VALUES` of one task, same columns', `${r.plainInsert1Us} µs`, `${r.plainInsert1Us} µs`],
    ['`taskInsertManyWithoutKeys`, 50 rows', `${r.insert50Ms} ms`, per(r.insert50Ms!, 50)],
    ['`taskInsertManyWithoutKeys`, 1,000 rows', `${r.insert1000Ms} ms`, per(r.insert1000Ms!, 1000)],
    ['`taskClaim` of 50 (asynchronous commit)', `${r.claim50Ms} ms`, per(r.claim50Ms!, 50)],
    ['`taskClaim` of 250 (asynchronous commit)', `${r.claim250Ms} ms`, per(r.claim250Ms!, 250)],
    ['`taskSucceedAndClaim`, 50 results + claim of 50', `${r.succeedAndClaim50Ms} ms`, per(r.succeedAndClaim50Ms!, 50)],
    ['`taskSucceedAndClaim`, 250 results + claim of 250', `${r.succeedAndClaim250Ms} ms`, per(r.succeedAndClaim250Ms!, 250)],
  ]));
}

// ------------------------------------------------------------------ the claim against the backlog

async function backlogSection(): Promise<void> {
  const rows: string[][] = [];
  const data: Record<string, unknown>[] = [];
  await withServer(`bench_diagbl_${runId}`, async (_sys, workerId, connect) => {
    const c = await connect();
    const relaxed = await connect(true);
    let cold = 0;
    await c.query(`INSERT INTO queues (name) VALUES ('cold'), ('hot') ON CONFLICT DO NOTHING`);
    const fill = (queue: string, priority: number, from: number, to: number) => c.query(
      `INSERT INTO tasks (queue, type, state, priority, run_at, payload, max_attempts, backoff, timeout_ms)
       SELECT $1, 'noop', 'queued', $2, now(), jsonb_build_object('i', g), 5, '{"type":"fixed","delayMs":1000}', 30000
         FROM generate_series($3::int, $4::int) g`, [queue, priority, from, to]);
    for (const backlog of [10_000, 1_000_000]) {
      console.error(`  backlog ${fmt(backlog)} ...`);
      await fill('cold', 0, cold, backlog - 1);
      cold = backlog;
      // 20,000 for the claims alone, then 20,000 for the claims that also settle.
      await fill('hot', 0, 1, 40_000);
      await fill('cold', 10, 1, 40_000);
      await c.query('CHECKPOINT');
      await c.query('ANALYZE tasks');
      for (const [queue, where] of [['hot', 'other queue'], ['cold', 'same queue (priority 10 over the backlog)']] as const) {
        // Claims of 250 as a drain does them, through the whole 20,000, one after the other.
        const t: number[] = [];
        let claimed = 0;
        for (let k = 0; k < 80; k++) {
          t.push(await timeMs(async () => {
            claimed += (await relaxed.query({ name: 'claim', text: S.claim.text, values: [queue, 250, workerId, null] })).rowCount ?? 0;
          }));
        }
        // A claim that returns nothing costs a fraction of one that takes 250: not a measurement.
        if (claimed !== 20_000) throw new Error(`backlog ${backlog}, ${where}: 80 claims of 250 took ${claimed} tasks, not 20,000`);
        data.push({ backlog, where, claimed, claim250MedianMs: +med(t).toFixed(2), firstTenMs: +med(t.slice(0, 10)).toFixed(2), lastTenMs: +med(t.slice(-10)).toFixed(2) });
        rows.push([fmt(backlog), `${where}: \`taskClaim\` of 250`, `${med(t).toFixed(2)} ms`, `${med(t.slice(0, 10)).toFixed(2)} / ${med(t.slice(-10)).toFixed(2)} ms`]);
        await relaxed.query(`UPDATE tasks SET state = 'succeeded', lease_expires_at = NULL, finished_at = now() WHERE state = 'running'`);
        // The drain's own statement: the 250 results of the last claim settled with the next claim
        // of 250 (synchronous commit, as the engine runs it), through the next 20,000.
        const s: number[] = [];
        let held = (await relaxed.query({ name: 'claim', text: S.claim.text, values: [queue, 250, workerId, null] })).rows;
        let settled = 0;
        for (let k = 0; k < 79; k++) {
          const results = successesJson(held);
          s.push(await timeMs(async () => {
            const rows = (await c.query({ name: 'sac', text: S.succeedAndClaim.text, values: [results, workerId, null, queue, 250] })).rows;
            settled += (rows[0]!.id as string | null)?.split(',').length ?? 0;
            held = rows.slice(1);
          }));
        }
        if (settled !== 79 * 250) throw new Error(`backlog ${backlog}, ${where}: 79 settle-and-claims settled ${settled} tasks, not ${79 * 250}`);
        data.push({ backlog, where, settled, succeedAndClaim250MedianMs: +med(s).toFixed(2), firstTenMs: +med(s.slice(0, 10)).toFixed(2), lastTenMs: +med(s.slice(-10)).toFixed(2) });
        rows.push([fmt(backlog), `${where}: \`taskSucceedAndClaim\`, 250 results and a claim of 250`, `${med(s).toFixed(2)} ms`, `${med(s.slice(0, 10)).toFixed(2)} / ${med(s.slice(-10)).toFixed(2)} ms`]);
        await relaxed.query(`UPDATE tasks SET state = 'succeeded', lease_expires_at = NULL, finished_at = now() WHERE state = 'running'`);
      }
      // What scaling.ts's drain polls with once the worker has started the last task.
      await c.query(`UPDATE tasks SET state = 'succeeded' WHERE state = 'running'`);
      const count = async (sql: string, params: unknown[] = []) => {
        const t: number[] = [];
        for (let k = 0; k < 7; k++) t.push(await timeMs(() => c.query(sql, params)));
        return +med(t.slice(2)).toFixed(1);
      };
      const other = await count(`SELECT count(*)::int AS n FROM tasks WHERE queue = 'hot' AND state = 'succeeded'`);
      const same = await count(`SELECT count(*)::int AS n FROM tasks WHERE queue = 'cold' AND priority = 10 AND state = 'succeeded'`);
      // With 500 of them still running (as at the end of a drain).
      await c.query(`UPDATE tasks SET state = 'running', worker_id = $1 WHERE id IN (SELECT id FROM tasks WHERE priority = 10 LIMIT 500)`, [workerId]);
      const left = (queue: string, minPriority: number) => count(UNFINISHED_COUNT_SQL, [queue, minPriority]);
      const otherLeft = await left('hot', 0);
      const sameLeft = await left('cold', 10);
      data.push({ backlog, completionCountOtherMs: other, completionCountSameMs: same, unfinishedCountOtherMs: otherLeft, unfinishedCountSameMs: sameLeft });
      rows.push([fmt(backlog), 'scaling.ts --poll completed: count of succeeded (other queue / same queue)', `${other} / ${same} ms`, '']);
      rows.push([fmt(backlog), 'scaling.ts --poll unfinished: count of unfinished (other queue / same queue)', `${otherLeft} / ${sameLeft} ms`, '']);
      await c.query(`DELETE FROM tasks WHERE queue = 'hot' OR priority = 10`);
      await c.query(`VACUUM ANALYZE tasks`);
    }
  });
  out.backlog = data;
  console.log('\n### The claim against the backlog (claims of 250, one connection, asynchronous commit, 80 in a row; then the settle-and-claim, synchronous commit, 79 in a row)\n');
  console.log(table(['backlog waiting in cold', 'claiming from', 'median', 'first 10 / last 10'], rows));
}

/** Transactions committed in the bench's database so far (all sessions). */
async function commits(c: pg.Client): Promise<number> {
  await c.query('SELECT pg_stat_force_next_flush()');
  const r = await c.query<{ n: string }>('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()');
  return Number(r.rows[0]!.n);
}

async function waitersSection(): Promise<void> {
  const COUNT = 500;
  const RATE = 100;
  const rows: { workers: number; waiting: number; serverUs: number; postgresUs: number; commitsPerTask: number; jobsPerSec: number }[] = [];
  for (const K of [1, 10]) {
    await withServer(`bench_diagwait_${runId}_${K}`, async (sys, _workerId, connect) => {
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
  out.waiters = rows;
  console.log('\n### Idle workers: 500 tasks at 100/s, each to workers long-polling (per task; the whole ~5 s, polls included)\n');
  console.log(table(
    ['worker processes', 'claims long-polling', 'server CPU', 'PostgreSQL CPU', 'transactions committed'],
    rows.map((r) => [String(r.workers), String(r.waiting), `${r.serverUs} µs`, `${r.postgresUs} µs`, String(r.commitsPerTask)]),
  ));
}

// ------------------------------------------------------------------ many producers

async function producersSection(): Promise<void> {
  const K = 8;
  const PER = 2_500;
  const IN_FLIGHT = 25;
  const rows: { round: number; jobsPerSec: number; commitsPer1000: number; serverUs: number; postgresUs: number }[] = [];
  await withServer(`bench_diagprod_${runId}`, async (sys, _workerId, connect) => {
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
  out.producers = rows;
  console.log(`\n### Many producers: ${K} clients in one process, each submitting ${fmt(PER)} tasks with ${IN_FLIGHT} calls in flight (per task)\n`);
  console.log(table(
    ['round', 'tasks/s', 'transactions committed per 1,000 tasks', 'server CPU', 'PostgreSQL CPU'],
    rows.map((r) => [String(r.round), fmt(r.jobsPerSec), String(r.commitsPer1000), `${r.serverUs} µs`, `${r.postgresUs} µs`]),
  ));
}

// ------------------------------------------------------------------

async function main(): Promise<void> {
  const env = await describeEnvironment(DB, args['redis-url']!);
  console.error(`diagnose ${runId}: N=${N}; sections: ${[...only].join(', ')}`);
  if (only.has('cpu')) await cpuSection();
  if (only.has('http')) await httpSection();
  if (only.has('statements')) await statementsSection();
  if (only.has('backlog')) await backlogSection();
  if (only.has('path')) await pathSection();
  if (only.has('waiters')) await waitersSection();
  if (only.has('producers')) await producersSection();
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}diagnose-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify({ runId, at: new Date().toISOString(), n: N, environment: env, ...out }, null, 2)}\n`);
  console.error(`\nwritten ${file}`);
  if ((out.cpu as { problems?: string[] } | undefined)?.problems?.length) process.exitCode = 1;
}

try {
  await main();
} finally {
  killAll();
}
