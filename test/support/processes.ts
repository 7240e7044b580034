/**
 * Child processes for the tests that need real ones: server nodes (`taskflow start`), SDK
 * workers, a private Redis. Output is read line by line; everything started is killed by
 * `killAll` (call it in afterAll).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** The `taskflow` command as npm links it; in the repository it runs the sources. */
export const CLI = fileURLToPath(new URL('../../packages/server/bin/taskflow.js', import.meta.url));
const WORKER = fileURLToPath(new URL('./workerProcess.ts', import.meta.url));
/** Node's flag for a script of the repository: @taskflow packages resolve to their src/, not dist/. */
export const SOURCE_CONDITION = '--conditions=taskflow-source';

const started = new Set<ChildProcess>();

export interface Proc {
  child: ChildProcess;
  /** Resolves with the first stdout line matching `re` (rejects if the process exits first). */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Every stdout line: those already printed, then each as it comes. */
  onLine(fn: (line: string) => void): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  /** Sends `signal` to the process group (started with `group: true`). */
  signalGroup(signal: NodeJS.Signals): void;
}

/**
 * Starts a process. `group: true` puts it in a process group of its own, so `signalGroup`
 * reaches it and its children (as Ctrl-C in a terminal reaches `npm start` and the node under it).
 */
export function run(cmd: string, args: string[], env: Record<string, string>, cwd = REPO, group = false): Proc {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: group });
  started.add(child);
  const listeners: ((line: string) => void)[] = [];
  const lines: string[] = [];
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const l of listeners) l(line);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      started.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    exited,
    stderr: () => err,
    signalGroup: (signal) => process.kill(-child.pid!, signal),
    onLine(fn) {
      for (const l of lines) fn(l);
      listeners.push(fn);
    },
    waitForLine(re, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        for (const l of lines) {
          const m = l.match(re);
          if (m) return resolve(m);
        }
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; stderr: ${err.slice(-2000)}`)), timeoutMs);
        listeners.push((line) => {
          const m = line.match(re);
          if (m) {
            clearTimeout(timer);
            resolve(m);
          }
        });
        void exited.then(({ code, signal }) => {
          clearTimeout(timer);
          reject(new Error(`process exited (${code ?? signal}) before printing ${re}; stderr: ${err.slice(-2000)}`));
        });
      });
    },
  };
}

/** A `taskflow start` node in its own process; resolves with its URL once it serves. */
export async function startServerProcess(env: Record<string, string>): Promise<{ proc: Proc; url: string }> {
  const proc = run(process.execPath, [CLI, 'start'], { PORT: '0', LOG_LEVEL: 'warn', ...env });
  const m = await proc.waitForLine(/Taskflow is running at (http:\/\/\S+)/);
  return { proc, url: m[1]! };
}

/** An SDK worker in its own process (test/support/workerProcess.ts); resolves once registered. */
export async function startWorkerProcess(env: Record<string, string>): Promise<{ proc: Proc; workerId: string }> {
  const proc = run(process.execPath, [SOURCE_CONDITION, WORKER], env);
  const m = await proc.waitForLine(/^\{"e":"registered","worker":"([0-9a-f-]+)"/);
  return { proc, workerId: m[1]! };
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A Redis of the test's own, on its own port (the shared one stays untouched). */
export async function startRedis(port: number): Promise<Proc> {
  const proc = run('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {});
  const { Redis } = await import('ioredis');
  for (let i = 0; i < 100; i++) {
    const r = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      return proc;
    } catch {
      r.disconnect();
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  throw new Error(`redis-server on port ${port} did not start: ${proc.stderr()}`);
}

export async function killAll(): Promise<void> {
  await Promise.all(
    [...started].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          try {
            process.kill(-c.pid!, 'SIGKILL'); // a process group of its own, children included
          } catch {
            c.kill('SIGKILL');
          }
        }),
    ),
  );
}
