/**
 * The CLI commands that run a worker, as a user runs them, each in its own process:
 * `taskflow worker <module>` runs the handlers a module exports against a running service, and
 * `taskflow demo` runs its samples on an in-memory service. The service itself does not load
 * the SDK; these two commands load it when they run.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TaskflowClient, type Task } from '@taskflow/sdk';
import { TEST_DATABASE_URL, dropSchema, freshSchema } from '@taskflow/core/test-support';
import { CLI, killAll, run, startServerProcess } from './support/processes.ts';

const KEY = `tf_cli_${randomBytes(12).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'taskflow-cli-'));
const schemas: string[] = [];

afterAll(async () => {
  await killAll();
  await Promise.all(schemas.map(dropSchema));
  rmSync(dir, { recursive: true, force: true });
});

/** Polls the task until it is finished (succeeded or dead). */
async function finished(client: TaskflowClient, id: string): Promise<Task> {
  const end = Date.now() + 30_000;
  for (;;) {
    const task = await client.getTask(id);
    if (task.state === 'succeeded' || task.state === 'dead') return task;
    if (Date.now() > end) throw new Error(`task ${id} still ${task.state}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('taskflow worker <module>', () => {
  it('runs the handlers the module exports on its queues, and stops on SIGTERM', async () => {
    const schema = freshSchema('tfcli');
    schemas.push(schema);
    const { url } = await startServerProcess({ DATABASE_URL: TEST_DATABASE_URL, TASKFLOW_SCHEMA: schema, TASKFLOW_BOOTSTRAP_API_KEY: KEY });
    const module = join(dir, 'handlers.mjs');
    writeFileSync(module, `
export const queues = ['cli-q'];
export const handlers = {
  greet: async (payload) => ({ hello: payload.name }),
  refuse: async () => { throw new Error('refused on purpose'); },
};
`);
    const worker = run(process.execPath, [CLI, 'worker', module, '--concurrency', '2', '--name', 'cli-test'], { TASKFLOW_URL: url, TASKFLOW_API_KEY: KEY, LOG_LEVEL: 'info' });
    await worker.waitForLine(/"msg":"worker started"/);

    const client = new TaskflowClient({ url, apiKey: KEY });
    const greet = await client.enqueue({ type: 'greet', queue: 'cli-q', payload: { name: 'ada' } });
    const refuse = await client.enqueue({ type: 'refuse', queue: 'cli-q', maxAttempts: 1 });
    const [done, failed] = await Promise.all([finished(client, greet.id), finished(client, refuse.id)]);
    expect(done.state).toBe('succeeded');
    expect(done.result).toEqual({ hello: 'ada' });
    expect(failed.state).toBe('dead');
    expect(failed.lastError?.message).toBe('refused on purpose');
    const workers = await client.listWorkers({ state: ['active'] });
    expect(workers.items.map((w) => w.name)).toContain('cli-test');

    worker.child.kill('SIGTERM');
    expect((await worker.exited).code).toBe(0);
    await client.close();
  }, 90_000);

  it('refuses a module that exports no handlers, naming it', async () => {
    const module = join(dir, 'empty.mjs');
    writeFileSync(module, 'export const queues = ["x"];\n');
    const worker = run(process.execPath, [CLI, 'worker', module], { TASKFLOW_URL: 'http://127.0.0.1:9', TASKFLOW_API_KEY: KEY });
    const { code } = await worker.exited;
    expect(code).not.toBe(0);
    expect(worker.stderr()).toContain(`${module} exports no handlers`);
  });
});

describe('taskflow demo', () => {
  it('runs its sample tasks on an in-memory service: all succeed but the one meant for the dead-letter queue', async () => {
    const demo = run(process.execPath, [CLI, 'demo', '--tasks', '6'], {});
    const [, succeeded, dead] = await demo.waitForLine(/^done: (\d+) succeeded, (\d+) in the dead-letter queue/, 60_000);
    expect(Number(succeeded)).toBe(5);
    expect(Number(dead)).toBe(1);
    expect((await demo.exited).code).toBe(0);
  }, 90_000);
});

describe('taskflow --version and the environment', () => {
  it('--version and -V print the version of the package', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../packages/server/package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const proc = run(process.execPath, [CLI, flag], {});
      const [line] = await proc.waitForLine(/^.+$/);
      expect(line).toBe(version);
      expect((await proc.exited).code).toBe(0);
    }
  });

  it('warns, one line each, of TASKFLOW_* variables it does not know, with the nearest known name', async () => {
    // An invalid PORT ends the start right after the warnings.
    const proc = run(process.execPath, [CLI, 'start', '--port', 'abc'], { TASKFLOW_POOL_SIZE: '3', TASKFLOW_FROBNICATE: '1' });
    expect((await proc.exited).code).toBe(2);
    expect(proc.stderr().trim().split('\n')).toEqual([
      'taskflow: warning: TASKFLOW_FROBNICATE is not a Taskflow setting; it is ignored',
      'taskflow: warning: TASKFLOW_POOL_SIZE is not a Taskflow setting (did you mean DATABASE_POOL_SIZE?); it is ignored',
      'taskflow: PORT="abc" is not valid: expected an integer from 0 to 65535',
    ]);
  });
});
