/**
 * Child processes of the harness: the Taskflow server and the workers each run in their own
 * Node process (the binary running the harness, Node 24), talk to the harness over IPC, and
 * are stopped and reaped by it whatever happens.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** Sends a request and resolves with the reply that carries the same id. */
  request<T = any>(msg: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Resolves on the first message for which `match` returns true. */
  waitFor<T = any>(match: (m: any) => boolean, timeoutMs?: number): Promise<T>;
  /** Ends the process: asks nicely (`stop` request), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();

/** Kills whatever children are left, by pid (never by name). Called on every exit path. */
export function killAll(): void {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

export interface SpawnOptions {
  args?: string[];
  /** Extra Node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=…']. */
  execArgv?: string[];
  env?: Record<string, string | undefined>;
  /** Lines printed on stdout are passed here (the server prints its URL there). */
  onStdoutLine?: (line: string) => void;
}

export function spawnChild(script: string, opts: SpawnOptions = {}): Child {
  const proc = fork(script, opts.args ?? [], {
    execPath: process.execPath,
    // The @taskflow packages resolve to their sources (src/), as in the repository's `npm start`;
    // a checkout from before the condition existed ignores it.
    execArgv: ['--conditions=taskflow-source', ...(opts.execArgv ?? [])],
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  live.add(proc);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => {
    live.delete(proc);
    resolve(code);
  }));
  const rl = createInterface({ input: proc.stdout! });
  rl.on('line', (line) => (opts.onStdoutLine ? opts.onStdoutLine(line) : process.stderr.write(`[${script}] ${line}\n`)));
  let nextId = 1;
  const waitFor = <T>(match: (m: any) => boolean, timeoutMs = 600_000): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const onMsg = (m: any) => {
        if (m?.ev === 'fatal') {
          cleanup();
          reject(new Error(`child ${script} failed: ${m.error}`));
        } else if (match(m)) {
          cleanup();
          resolve(m as T);
        }
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`child ${script} exited (code ${code}) while waiting`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`child ${script}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        proc.off('message', onMsg);
        proc.off('exit', onExit);
      };
      proc.on('message', onMsg);
      proc.once('exit', onExit);
    });
  const request = <T>(msg: Record<string, unknown>, timeoutMs?: number): Promise<T> => {
    const id = nextId++;
    const reply = waitFor<any>((m) => m?.id === id, timeoutMs).then((m) => {
      if (m.error) throw new Error(`${script}: ${msg.cmd}: ${m.error}`);
      return m as T;
    });
    proc.send({ ...msg, id });
    return reply;
  };
  const stop = async (graceMs = 60_000) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    try {
      if (proc.connected) proc.send({ cmd: 'exit' });
      else proc.kill('SIGTERM');
    } catch {
      proc.kill('SIGKILL');
    }
    await exited;
    clearTimeout(timer);
  };
  return { proc, pid: proc.pid!, request, waitFor, stop, exited };
}

/**
 * A non-Node helper process (e.g. a redis-server of a system's own), stdout/stderr to
 * `logLine`, killed with the harness's other children whatever happens.
 */
export function spawnProcess(command: string, args: string[], logLine: (line: string) => void): { pid: number; exited: Promise<number | null>; stop(): Promise<void> } {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.on('error', (err) => logLine(`${command}: ${err.message}`));
  live.add(proc);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => {
    live.delete(proc);
    resolve(code);
  }));
  for (const stream of [proc.stdout!, proc.stderr!]) createInterface({ input: stream }).on('line', logLine);
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    proc.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
  };
  return { pid: proc.pid!, exited, stop };
}

/** Resident set size of a process, in MiB (VmRSS from /proc). */
export function rssMiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** The kernel's high-water mark of a process's resident set so far, in MiB (VmHWM from /proc). */
export function peakRssMiB(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : null;
  } catch {
    return null;
  }
}

/**
 * Total CPU time (user + system) a process used so far, in seconds, from /proc/<pid>/stat; with
 * `withReapedChildren`, plus that of the children it has waited for.
 */
export function cpuSeconds(pid: number, withReapedChildren = false): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime (and cutime, cstime: the reaped children's) in clock ticks (100/s)
    const own = Number(fields[11]) + Number(fields[12]);
    return (withReapedChildren ? own + Number(fields[13]) + Number(fields[14]) : own) / 100;
  } catch {
    return null;
  }
}

/** Pids of the processes whose command name is `comm` (`postgres`, `redis-server`). */
export function pidsNamed(comm: string): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === comm;
    } catch {
      return false;
    }
  });
}

/**
 * CPU seconds used so far by every process named `comm` and by the children they have reaped
 * (utime + stime + cutime + cstime): a PostgreSQL backend that exits is reaped by the postmaster,
 * so its CPU stays in the sum instead of vanishing from it (pg-boss's pool closes idle
 * connections during its long drain).
 */
export const cpuSecondsNamed = (comm: string): number => pidsNamed(comm).reduce((a, p) => a + (cpuSeconds(p, true) ?? 0), 0);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it returns true; throws after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, what: string, timeoutMs = 600_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
