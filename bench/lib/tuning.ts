/**
 * The systems under test and their settings: `defaults` (each library's own, the bench's
 * concurrency aside) and `best` (the setting sweep.ts found fastest on the drain, kept in
 * bench/tuning.json with the sweep that found it).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { SystemUnderTest, Tuning } from './types.ts';
import { TaskflowSystem } from '../systems/taskflow.ts';
import { BullmqSystem } from '../systems/bullmq.ts';
import { PgbossSystem } from '../systems/pgboss.ts';
import { GraphileSystem } from '../systems/graphile.ts';

export const TUNING_FILE = fileURLToPath(new URL('../tuning.json', import.meta.url));

/** One setting of the sweep and its drains. */
export interface SweepPoint {
  tuning: Tuning;
  /** Drain rate (tasks/s) of each round. */
  drains: number[];
  median: number;
  /** CPU per task during the drain (µs, the median over the rounds): worker, server, the system's storage, all. */
  cpuUs: { worker: number | null; server: number | null; storage: number | null; total: number | null };
}

export interface TuningFile {
  at: string;
  commit: string;
  n: number;
  concurrency: number;
  rounds: number;
  /** `uptime` before and after the sweep: the machine is shared. */
  load: string[];
  /** What a reader of the figures must know (a round cut short, a choice made by hand). */
  note?: string;
  /** Per system: the best setting and the sweep. */
  systems: Record<string, { best: Tuning; sweep: SweepPoint[] }>;
}

export function readTuning(file = TUNING_FILE): TuningFile | undefined {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as TuningFile) : undefined;
}

/** "prefetch 450, pipeline 2", or "defaults". */
export function describeTuning(t: Tuning): string {
  const parts = Object.entries(t).map(([k, v]) => `${k} ${v}`);
  return parts.length ? parts.join(', ') : 'defaults';
}

/**
 * Most tasks a drain takes for a system at a setting, where the system's own defaults are too
 * slow to drain the bench's N in reasonable time (the drain's rate is the same over fewer
 * tasks; the clock starts at the first): pg-boss's `work()` at its defaults fetches one job per
 * loop and waits its 2 s polling interval after each, ~25 jobs/s at 50 loops (500 tasks);
 * graphile-worker without its local queue fetches each job with a statement of its own (5,000).
 */
export function drainCap(key: string, tuning: Tuning, n: number): number {
  if (key === 'pgboss' && tuning.batchSize === undefined) return Math.min(n, 500);
  if (key === 'graphile' && tuning.localQueueSize === undefined) return Math.min(n, 5000);
  return n;
}

export interface Connections {
  databaseUrl: string;
  redisUrl: string;
  aofRedisPort: number;
  pgliteMemory?: boolean;
  /** Another checkout's root (run.ts --baseline). */
  baseline?: string;
}

/** The system `key` (taskflow, baseline, pglite, bullmq, bullmq-aof, pgboss, graphile) in namespace `id`, with `tuning`. */
export function makeSystem(key: string, id: string, tuning: Tuning, c: Connections, label?: string): SystemUnderTest {
  const DB = c.databaseUrl;
  switch (key) {
    case 'taskflow': return new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema: `bench_tf_${id}`, tuning, label });
    case 'taskflow-nometrics': return new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema: `bench_tfn_${id}`, serverConfig: { metrics: false }, label: label ?? 'Taskflow, metrics off (PostgreSQL)', tuning });
    case 'baseline': return new TaskflowSystem({ driver: 'postgres', databaseUrl: DB, schema: `bench_tfb_${id}`, checkout: c.baseline, label: label ?? 'Taskflow@baseline (PostgreSQL)', tuning });
    case 'pglite': return new TaskflowSystem({ driver: 'pglite', databaseUrl: DB, schema: 'taskflow', pgliteInMemory: c.pgliteMemory, tuning, label });
    case 'bullmq': return withLabel(new BullmqSystem({ redisUrl: c.redisUrl, prefix: `tfbench_${id}`, tuning }), label);
    // BullMQ on a Redis of its own that fsyncs every write (AOF, appendfsync always).
    case 'bullmq-aof': return withLabel(new BullmqSystem({ redisUrl: c.redisUrl, prefix: `tfbench_${id}`, aofPort: c.aofRedisPort, tuning }), label);
    case 'pgboss': return withLabel(new PgbossSystem({ databaseUrl: DB, schema: `bench_pgboss_${id}`, tuning }), label);
    case 'graphile': return withLabel(new GraphileSystem({ databaseUrl: DB, schema: `bench_gw_${id}`, tuning }), label);
    default: throw new Error(key);
  }
}

function withLabel(sys: SystemUnderTest, label: string | undefined): SystemUnderTest {
  if (label !== undefined) sys.label = label;
  return sys;
}
