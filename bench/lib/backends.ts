/**
 * The PostgreSQL backends of one system, for its CPU: the backends whose client socket is one
 * of a given process's (the Taskflow server's pool, graphile-worker's and pg-boss's worker
 * pools), matched by port: the process's sockets from /proc/<pid>/fd, their local ports from
 * /proc/net/tcp{,6}, the backends from pg_stat_activity.client_port. The machine's other
 * databases, the harness's own connections and PostgreSQL's background processes do not count.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { cpuSeconds } from './proc.ts';
import { adminQuery } from './pg.ts';

/** Local TCP ports of the sockets process `pid` has open. */
export function localPorts(pid: number): number[] {
  const inodes = new Set<string>();
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && inodes.has(f[9]!)) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** Pids of the PostgreSQL backends serving process `pid`'s connections. */
export async function backendsOf(databaseUrl: string, pid: number): Promise<number[]> {
  const ports = localPorts(pid);
  if (ports.length === 0) return [];
  const rows = await adminQuery<{ pid: number }>(databaseUrl, 'SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])', [ports]);
  return rows.map((r) => r.pid);
}

/**
 * CPU seconds so far of each backend (by pid). A backend that exits before the second reading
 * keeps its first (its CPU since is lost: a pool that closes connections mid-drain is
 * under-counted, which the report says).
 */
export function backendCpu(pids: Iterable<number>): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of pids) {
    const s = cpuSeconds(p);
    if (s !== null) out.set(p, s);
  }
  return out;
}

/** Between two readings: the CPU of the backends in either (those present only in the second count from zero). */
export function backendCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [p, s] of after) sum += s - (before.get(p) ?? 0);
  return Math.round(sum * 100) / 100;
}
