/**
 * run.ts's results: one system's row of one round, the medians of the rounds (with their
 * spread), and the targets judged from them as ratios.
 */
import { table, type LatencySummary } from './stats.ts';
import type { DrainResult, Throughput } from './workloads.ts';

export interface SystemResult {
  key: string;
  label: string;
  single?: Throughput;
  /** Single enqueues through the client's coalescing (systems that have one). */
  singleCoalesced?: Throughput;
  bulk?: Throughput;
  drain?: DrainResult;
  latency?: LatencySummary;
  serverRssMiB?: number | null;
  /** The server's peak RSS over all its workloads (VmHWM, read before it stops). */
  serverPeakRssMiB?: number | null;
  exactlyOnce: boolean;
  problems: string[];
  error?: string;
  /** Over the rounds (medians only): the lowest and the highest drain rate and latency p99. */
  spread?: { drain?: [number, number]; p99?: [number, number] };
}

export function median(xs: readonly (number | null | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** Per system, the median of each number over the rounds (the peak RSS: the highest). */
export function medians(rounds: SystemResult[][], keys: readonly string[]): SystemResult[] {
  const ROUNDS = rounds.length;
  return keys.map((key) => {
    const rs = rounds.map((r) => r.find((x) => x.key === key)).filter((r): r is SystemResult => r !== undefined);
    const tp = <T extends Throughput>(f: (r: SystemResult) => T | undefined): Throughput | undefined => {
      const xs = rs.map(f).filter((x): x is T => x !== undefined);
      if (xs.length === 0) return undefined;
      return { jobs: xs[0]!.jobs, ms: Math.round(median(xs.map((x) => x.ms))!), jobsPerSec: Math.round(median(xs.map((x) => x.jobsPerSec))!) };
    };
    const drainTp = tp((r) => r.drain);
    const lat = rs.map((r) => r.latency).filter((l): l is LatencySummary => l !== undefined);
    const peaks = rs.map((r) => r.serverPeakRssMiB).filter((x): x is number => typeof x === 'number');
    return {
      key, label: rs[0]!.label,
      single: tp((r) => r.single), singleCoalesced: tp((r) => r.singleCoalesced), bulk: tp((r) => r.bulk),
      drain: drainTp && {
        ...drainTp,
        wallMs: Math.round(median(rs.map((r) => r.drain?.wallMs))!),
        workerCpuSec: median(rs.map((r) => r.drain?.workerCpuSec)) ?? null,
        serverCpuSec: median(rs.map((r) => r.drain?.serverCpuSec)) ?? null,
        storageCpuSec: median(rs.map((r) => r.drain?.storageCpuSec)) ?? null,
      },
      latency: lat.length === 0 ? undefined : {
        count: lat[0]!.count, p50: median(lat.map((l) => l.p50))!, p95: median(lat.map((l) => l.p95))!,
        p99: median(lat.map((l) => l.p99))!, max: median(lat.map((l) => l.max))!, mean: median(lat.map((l) => l.mean))!,
      },
      serverRssMiB: median(rs.map((r) => r.serverRssMiB)) ?? null,
      serverPeakRssMiB: peaks.length ? Math.max(...peaks) : null,
      exactlyOnce: rs.length === ROUNDS && rs.every((r) => r.exactlyOnce),
      problems: rs.flatMap((r) => r.problems),
      error: rs.find((r) => r.error)?.error,
      spread: { drain: range(rs.map((r) => r.drain?.jobsPerSec)), p99: range(lat.map((l) => l.p99)) },
    };
  });
}

function range(xs: (number | undefined)[]): [number, number] | undefined {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? [Math.min(...v), Math.max(...v)] : undefined;
}

interface Target {
  target: string;
  /** Taskflow's number over the peers' (higher is better, or lower when `atMost`). */
  ratio(rs: SystemResult[]): number | undefined;
  need: number;
  atMost?: boolean;
}

const by = (rs: SystemResult[], key: string) => rs.find((r) => r.key === key);
const best = (xs: (number | undefined)[], lowest = false) => {
  const v = xs.filter((x): x is number => typeof x === 'number' && x > 0);
  return v.length ? (lowest ? Math.min(...v) : Math.max(...v)) : undefined;
};
const over = (a: number | undefined, b: number | undefined) => (a && b ? a / b : undefined);
const PEERS = ['bullmq', 'bullmq-aof', 'pgboss', 'graphile'];
const peersOf = (rs: SystemResult[]) => rs.filter((r) => PEERS.includes(r.key));
/** The best-tuned PostgreSQL peers' fastest drain. */
const bestPgDrain = (rs: SystemResult[]) => best(['pgboss-best', 'graphile-best'].map((k) => by(rs, k)?.drain?.jobsPerSec));

/** The targets one run of this harness can judge (the backlog ones are scaling.ts's). */
const TARGETS: Target[] = [
  { target: 'drain, Taskflow defaults ≥ 1.5× the best-tuned best PostgreSQL peer', need: 1.5, ratio: (rs) => over(by(rs, 'taskflow')?.drain?.jobsPerSec, bestPgDrain(rs)) },
  { target: 'drain, Taskflow best-tuned ≥ 1.5× the best-tuned best PostgreSQL peer', need: 1.5, ratio: (rs) => over(by(rs, 'taskflow-best')?.drain?.jobsPerSec, bestPgDrain(rs)) },
  { target: 'drain, Taskflow defaults ≥ 0.9× Taskflow best-tuned', need: 0.9, ratio: (rs) => over(by(rs, 'taskflow')?.drain?.jobsPerSec, by(rs, 'taskflow-best')?.drain?.jobsPerSec) },
  { target: 'single enqueue, one request per task ≥ BullMQ AOF (its faster client)', need: 1, ratio: (rs) => over(by(rs, 'taskflow')?.single?.jobsPerSec, best([by(rs, 'bullmq-aof')?.single?.jobsPerSec, by(rs, 'bullmq-aof')?.singleCoalesced?.jobsPerSec])) },
  { target: 'single enqueue, `submit` ≥ BullMQ AOF (its faster client)', need: 1, ratio: (rs) => over(by(rs, 'taskflow')?.singleCoalesced?.jobsPerSec, best([by(rs, 'bullmq-aof')?.single?.jobsPerSec, by(rs, 'bullmq-aof')?.singleCoalesced?.jobsPerSec])) },
  { target: 'single enqueue, one request per task ≥ 10× pg-boss', need: 10, ratio: (rs) => over(by(rs, 'taskflow')?.single?.jobsPerSec, by(rs, 'pgboss')?.single?.jobsPerSec) },
  { target: 'single enqueue, `submit` ≥ 10× pg-boss', need: 10, ratio: (rs) => over(by(rs, 'taskflow')?.singleCoalesced?.jobsPerSec, by(rs, 'pgboss')?.single?.jobsPerSec) },
  { target: 'bulk enqueue ≥ 1.5× the best peer', need: 1.5, ratio: (rs) => over(by(rs, 'taskflow')?.bulk?.jobsPerSec, best(peersOf(rs).map((p) => p.bulk?.jobsPerSec))) },
  { target: 'latency p99, defaults ≤ the best peer\'s p99 at its defaults', need: 1, atMost: true, ratio: (rs) => over(by(rs, 'taskflow')?.latency?.p99, best(peersOf(rs).map((p) => p.latency?.p99), true)) },
  { target: 'server peak RSS ≤ 200 MB (ratio: peak / 200 MB)', need: 1, atMost: true, ratio: (rs) => { const mib = by(rs, 'taskflow')?.serverPeakRssMiB; return typeof mib === 'number' ? (mib * 1.048576) / 200 : undefined; } },
];

export function targetsTable(med: SystemResult[], rounds: SystemResult[][]): string {
  const met = (t: Target, x: number | undefined) => x !== undefined && (t.atMost ? x <= t.need : x >= t.need);
  const x = (v: number | undefined) => (v === undefined ? '—' : `${v.toFixed(2)}×`);
  return table(
    ['target (Taskflow on PostgreSQL)', 'needs', rounds.length > 1 ? `median of ${rounds.length} rounds` : 'this run', ...(rounds.length > 1 ? ['each round', 'rounds meeting it'] : []), 'met'],
    TARGETS.map((t) => {
      const m = t.ratio(med);
      const each = rounds.map((r) => t.ratio(r));
      return [
        t.target, `${t.atMost ? '≤' : '≥'} ${t.need}×`, x(m),
        ...(rounds.length > 1 ? [each.map(x).join(' / '), `${each.filter((v) => met(t, v)).length} of ${rounds.length}`] : []),
        m === undefined ? '—' : met(t, m) ? 'yes' : 'no',
      ];
    }),
  );
}

