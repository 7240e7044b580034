/**
 * The workloads, the same for every system. Each measures once (the machine is noisy: the
 * README reports two consecutive runs, never a best-of).
 */
import { fileURLToPath } from 'node:url';
import { spawnChild, until, sleep, cpuSeconds, cpuSecondsNamed, type Child } from './proc.ts';
import { summarize, type LatencySummary } from './stats.ts';
import { backendCpu, backendCpuDelta, backendsOf } from './backends.ts';
import type { BenchPayload, SystemUnderTest } from './types.ts';

const WORKER_CHILD = fileURLToPath(new URL('./worker-child.ts', import.meta.url));

export interface Throughput {
  jobs: number;
  ms: number;
  jobsPerSec: number;
}

function throughput(jobs: number, ms: number): Throughput {
  return { jobs, ms: Math.round(ms), jobsPerSec: Math.round((jobs * 1000) / ms) };
}

/** N single enqueues, `inFlight` at a time (through the client's coalescing with `coalesced`). */
export async function singleEnqueue(sys: SystemUnderTest, queue: string, n: number, inFlight: number, phase = 's', coalesced = false): Promise<Throughput> {
  const one = coalesced ? sys.enqueueOneCoalesced?.bind(sys) : sys.enqueueOne.bind(sys);
  if (!one) throw new Error(`${sys.label}: no coalescing client`);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, async () => {
    while (next < n) {
      const i = next++;
      await one(queue, { p: phase, i });
    }
  }));
  return throughput(n, performance.now() - t0);
}

/** N tasks in batches of `batch`, one batch at a time. */
export async function bulkEnqueue(sys: SystemUnderTest, queue: string, n: number, batch: number, phase = 'd', extra: Partial<BenchPayload> = {}): Promise<Throughput> {
  const t0 = performance.now();
  for (let from = 0; from < n; from += batch) {
    const payloads: BenchPayload[] = [];
    for (let i = from; i < Math.min(n, from + batch); i++) payloads.push({ p: phase, i, ...extra });
    await sys.enqueueBatch(queue, payloads);
  }
  return throughput(n, performance.now() - t0);
}

/** A worker process for `sys`, connected and ready, not yet started. */
export async function spawnWorker(sys: SystemUnderTest, queue: string, concurrency: number, execArgv: string[] = []): Promise<Child> {
  const w = spawnChild(sys.workerChild ?? WORKER_CHILD, { execArgv });
  await w.waitFor((m) => m?.ev === 'hello', 60_000);
  await w.request({ cmd: 'init', system: sys.module, options: sys.workerOptions(queue, concurrency) }, 120_000);
  return w;
}

export interface DrainResult extends Throughput {
  /** From just before the worker's start to the end (start-up included), ms; `ms` is from the first task's start. */
  wallMs: number;
  /** CPU seconds used during the drain (from the first task's start) by the worker process and by the server process (if any). */
  workerCpuSec: number | null;
  serverCpuSec: number | null;
  /**
   * CPU seconds of the system's storage during the drain: the PostgreSQL backends of the
   * system's own connections (lib/backends.ts), or every `redis-server` for BullMQ.
   */
  storageCpuSec: number | null;
}

export interface DrainOptions {
  /** The drain's tasks carry this phase. */
  phase?: string;
  /** Tasks of the queue already completed before. */
  completedBefore?: number;
  /** The worker is started here (false: it runs already). */
  startWorker?: boolean;
  /** For the CPU of the system's PostgreSQL backends (systems with `backendsOf`). */
  databaseUrl?: string;
}

/**
 * Starts the worker and times the drain of `n` tasks, **from the start of the first task** (the
 * worker's start-up excluded: its registration, its connections) to the moment the storage
 * says all `n` tasks of `phase` are completed. The CPU readings start at the first task too.
 * The storage is polled only after the worker has started the last task, so the polling does
 * not load the system during the drain.
 */
export async function drain(sys: SystemUnderTest, worker: Child, queue: string, n: number, opts: DrainOptions = {}): Promise<DrainResult> {
  const { phase = 'd', completedBefore = 0, startWorker = true, databaseUrl } = opts;
  await worker.request({ cmd: 'expect', phase, count: n });
  const reached = worker.waitFor((m) => m?.ev === 'reached' && m.phase === phase, 300_000);
  const serverPid = sys.serverPid?.();
  const ownerPid = sys.backendsOf === 'server' ? serverPid : sys.backendsOf === 'worker' ? worker.pid : undefined;
  const pgBackends = databaseUrl !== undefined && ownerPid !== undefined;
  const storage = sys.storageProcess;
  const backends0 = pgBackends ? await backendsOf(databaseUrl!, ownerPid!) : [];
  let cpu0: { w: number | null; s: number | null; db: number | null; pg: Map<number, number> } | undefined;
  let firstAt = 0;
  const first = worker.waitFor((m) => m?.ev === 'first' && m.phase === phase, 1_800_000).then(async (m) => {
    firstAt = m.at;
    cpu0 = {
      w: cpuSeconds(worker.pid), s: serverPid ? cpuSeconds(serverPid) : null,
      db: storage && !pgBackends ? cpuSecondsNamed(storage) : null, pg: backendCpu(backends0),
    };
    // Connections the worker opened at its start (graphile-worker's, pg-boss's pools).
    if (pgBackends) for (const [p, s] of backendCpu((await backendsOf(databaseUrl!, ownerPid!)).filter((p) => !cpu0!.pg.has(p)))) cpu0.pg.set(p, s);
  });
  const atStart = {
    w: cpuSeconds(worker.pid), s: serverPid ? cpuSeconds(serverPid) : null,
    db: storage && !pgBackends ? cpuSecondsNamed(storage) : null, pg: backendCpu(backends0),
  };
  const t0 = performance.now();
  if (startWorker) await worker.request({ cmd: 'start' });
  await reached;
  // A worker process of an older checkout (run.ts --baseline) sends no `first`: its clock starts at the worker's start.
  await Promise.race([first, sleep(1000)]);
  if (cpu0 === undefined) {
    cpu0 = atStart;
    firstAt = performance.timeOrigin + t0;
  }
  const total = completedBefore + n;
  await until(async () => (await sys.countCompleted(queue, total)) >= total, `${sys.label}: ${total} tasks completed in ${queue}`, 600_000, 10);
  const end = performance.timeOrigin + performance.now();
  const wallMs = performance.now() - t0;
  const w1 = cpuSeconds(worker.pid);
  const s1 = serverPid ? cpuSeconds(serverPid) : null;
  const db1 = storage && !pgBackends ? cpuSecondsNamed(storage) : null;
  const pg1 = pgBackends ? backendCpu(new Set([...cpu0!.pg.keys(), ...(await backendsOf(databaseUrl!, ownerPid!))])) : undefined;
  const c0 = cpu0!;
  const d = (a: number | null, b: number | null) => (a !== null && b !== null ? Math.round((b - a) * 100) / 100 : null);
  return {
    ...throughput(n, end - firstAt),
    wallMs: Math.round(wallMs),
    workerCpuSec: d(c0.w, w1),
    serverCpuSec: d(c0.s, s1),
    storageCpuSec: pg1 ? backendCpuDelta(c0.pg, pg1) : d(c0.db, db1),
  };
}

/**
 * `count` single enqueues at `ratePerSec` to an idle, started worker; each payload carries
 * Date.now() taken just before the enqueue call, and the worker records Date.now() at the
 * start of the task. Waits until all have completed in the storage.
 */
export async function latency(sys: SystemUnderTest, worker: Child, queue: string, count: number, ratePerSec: number, completedBefore: number, phase = 'l'): Promise<LatencySummary> {
  await sleep(1000); // let the worker go idle (long-poll / blocking fetch in place)
  await worker.request({ cmd: 'expect', phase, count });
  const reached = worker.waitFor((m) => m?.ev === 'reached' && m.phase === phase, 600_000);
  const interval = 1000 / ratePerSec;
  const t0 = performance.now();
  const sends: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    sends.push(sys.enqueueOne(queue, { p: phase, i, t: Date.now() }));
  }
  await Promise.all(sends);
  await reached;
  const total = completedBefore + count;
  await until(async () => (await sys.countCompleted(queue, total)) >= total, `${sys.label}: latency tasks completed`, 120_000, 20);
  const report = await worker.request<{ phases: Record<string, { latencies: number[] }> }>({ cmd: 'report' });
  return summarize(report.phases[phase]?.latencies ?? []);
}

/**
 * Exactly-once as the worker saw it: every index 0..n-1 of `phase` started once, none twice,
 * none outside the range. Returns problems found ([] when all is well).
 */
export function checkExactlyOnce(counts: number[] | undefined, n: number, phase: string): string[] {
  const c = counts ?? [];
  let missing = 0;
  let twice = 0;
  const examples: number[] = [];
  for (let i = 0; i < Math.max(n, c.length); i++) {
    const k = c[i] ?? 0;
    if (i >= n && k > 0) {
      twice += k;
      examples.push(i);
    } else if (k === 0 && i < n) missing++;
    else if (k > 1) {
      twice += k - 1;
      if (examples.length < 5) examples.push(i);
    }
  }
  const problems: string[] = [];
  if (missing) problems.push(`worker: ${missing} of ${n} tasks of phase "${phase}" never started`);
  if (twice) problems.push(`worker: ${twice} extra starts in phase "${phase}" (e.g. index ${examples.join(', ')})`);
  return problems;
}
