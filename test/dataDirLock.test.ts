/**
 * One embedded data directory, one process: a second `taskflow start` on it is refused (exit 7,
 * naming the holder), and after a SIGKILL of the holder, while a producer submits, a new start
 * takes over the stale lock and finds every task that was acknowledged. PGlite writes each
 * commit's WAL to the file (no buffering in the WebAssembly heap), so a killed process loses
 * nothing acknowledged (docs/operations.md, "The data directory's lock").
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TaskflowClient } from '@taskflow/sdk';
import { CLI, killAll, run, startServerProcess } from './support/processes.ts';

const KEY = `tf_lock_${randomBytes(12).toString('hex')}`;
const root = mkdtempSync(join(tmpdir(), 'taskflow-lock-'));

afterAll(async () => {
  await killAll();
  rmSync(root, { recursive: true, force: true });
});

const env = (dataDir: string) => ({ DATABASE_URL: '', TASKFLOW_DATA_DIR: dataDir, TASKFLOW_BOOTSTRAP_API_KEY: KEY });

/** Submits tasks from `loops` concurrent callers until `stop()`; `acked` holds the id of every task answered 2xx. */
function producer(url: string, loops: number) {
  const client = new TaskflowClient({ url, apiKey: KEY });
  const acked: string[] = [];
  let stopped = false;
  const done = Promise.all(
    Array.from({ length: loops }, async (_, i) => {
      for (let n = 0; !stopped; n++) {
        try {
          const task = await client.enqueue({ type: 'lock.test', payload: { loop: i, n } });
          acked.push(task.id);
        } catch {
          return; // the server is gone: what was not answered was not acknowledged
        }
      }
    }),
  );
  return {
    acked,
    async stop() {
      stopped = true;
      await done;
      await client.close();
    },
  };
}

describe('the embedded data directory lock', () => {
  it('refuses a second start, and after a SIGKILL a new start takes over with every acknowledged task', async () => {
    const dataDir = join(root, 'data');
    const first = await startServerProcess(env(dataDir));
    const lock = JSON.parse(readFileSync(join(dataDir, 'taskflow.lock'), 'utf8')) as { pid: number; host: string; startedAt: string };
    expect(lock).toMatchObject({ pid: first.proc.child.pid, host: hostname() });

    const second = run(process.execPath, [CLI, 'start', '--port', '0'], env(dataDir));
    expect((await second.exited).code).toBe(7);
    const lines = second.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`in use by another Taskflow process: pid ${lock.pid} on host ${lock.host}, started ${lock.startedAt}`);
    expect(lines[0]).toContain('TASKFLOW_DATA_DIR');

    const load = producer(first.url, 8);
    while (load.acked.length < 500) await new Promise((r) => setTimeout(r, 20));
    first.proc.child.kill('SIGKILL');
    expect((await first.proc.exited).signal).toBe('SIGKILL');
    await load.stop();
    expect(existsSync(join(dataDir, 'taskflow.lock'))).toBe(true); // left behind: stale

    const third = await startServerProcess(env(dataDir));
    const warned = await third.proc.waitForLine(/.*took over the lock of a Taskflow process that is gone.*/);
    expect(warned[0]).toContain(`"stalePid":${lock.pid}`);
    const client = new TaskflowClient({ url: third.url, apiKey: KEY });
    const missing: string[] = [];
    for (let i = 0; i < load.acked.length; i += 50) {
      await Promise.all(load.acked.slice(i, i + 50).map((id) => client.getTask(id).catch(() => missing.push(id))));
    }
    expect(missing).toEqual([]);
    await client.close();

    third.proc.child.kill('SIGTERM');
    expect((await third.proc.exited).code).toBe(0);
    expect(existsSync(join(dataDir, 'taskflow.lock'))).toBe(false); // a clean stop releases it
  }, 180_000);
});
