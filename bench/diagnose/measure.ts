/** CPU readings and timings the sections of diagnose.ts share. */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { cpuSecondsNamed, sleep } from '../lib/proc.ts';
import { percentile } from '../lib/stats.ts';

/** The median of unsorted samples. */
export const med = (a: number[]): number => percentile([...a].sort((x, y) => x - y), 50);

/** `sec` seconds of CPU over `n` tasks, in whole µs per task. */
export const us = (sec: number, n: number): number => Math.round((sec * 1e6) / n);

/** CPU seconds of every `postgres` process so far (with the backends the postmaster reaped). */
export const postgresCpu = (): number => cpuSecondsNamed('postgres');

/** CPU seconds of this process (the producer) so far. */
export function selfCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** CPU seconds the whole machine spent busy (all cores), from /proc/stat. */
export function machineBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - f[3]! - f[4]!) / 100; // minus idle and iowait, in clock ticks (100/s)
}

/** Wall time of one call, in ms. */
export async function timeMs(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/**
 * `count` calls of `f` at `rate` per second, each timed alone (the machine idles between
 * calls, as in the latency workload). Returns the times in ms.
 */
export async function paced(count: number, rate: number, f: (i: number) => Promise<unknown>): Promise<number[]> {
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

/** Transactions committed in the bench's database so far (all sessions). */
export async function commits(c: pg.Client): Promise<number> {
  await c.query('SELECT pg_stat_force_next_flush()');
  const r = await c.query<{ n: string }>('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()');
  return Number(r.rows[0]!.n);
}
