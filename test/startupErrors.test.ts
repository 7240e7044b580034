/**
 * The failures a user meets at start, each run as a real `taskflow` process: one line on stderr
 * naming the setting to check, the documented exit code (docs/operations.md, "Exit codes"), and
 * no stack trace unless asked for (--verbose).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL, dropSchema, freshSchema } from '@taskflow/core/test-support';
import { CLI, freePort, killAll, run, startServerProcess } from './support/processes.ts';

const dir = mkdtempSync(join(tmpdir(), 'taskflow-startup-'));
const schemas: string[] = [];
const servers: Server[] = [];

afterAll(async () => {
  await killAll();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await Promise.all(schemas.map(dropSchema));
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `taskflow <args>` to its exit, at the default log level, with no embedded data directory of the test runner's. */
async function failing(args: string[], env: Record<string, string> = {}) {
  const proc = run(process.execPath, [CLI, ...args], { LOG_LEVEL: '', DATABASE_URL: '', TASKFLOW_DATA_DIR: '', ...env });
  let stdout = '';
  proc.onLine((l) => (stdout += `${l}\n`));
  const { code } = await proc.exited;
  return { code, stderr: proc.stderr(), stdout };
}

/** One line, naming every one of `names`, and no stack anywhere in the output. */
function expectOneLine(out: { stderr: string; stdout: string }, ...names: string[]): void {
  const lines = out.stderr.trim().split('\n');
  expect(lines, out.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^taskflow: /);
  for (const n of names) expect(lines[0]).toContain(n);
  expect(out.stderr + out.stdout).not.toMatch(/^\s+at /m);
}

function urlWith(user: string, database: string, port = 5432): string {
  const u = new URL(TEST_DATABASE_URL);
  u.username = user;
  u.password = '';
  u.pathname = `/${database}`;
  u.port = String(port);
  return u.href;
}

describe('taskflow start: one line and an exit code per failure', () => {
  it('PostgreSQL refusing the connection (a closed port): exit 3, naming DATABASE_URL', async () => {
    const port = await freePort();
    const out = await failing(['start', '--port', '0'], { DATABASE_URL: urlWith('postgres', 'test', port) });
    expect(out.code).toBe(3);
    expectOneLine(out, 'DATABASE_URL', 'ECONNREFUSED', `127.0.0.1:${port}`);
  });

  it('an unknown role: exit 4, naming the role and DATABASE_URL', async () => {
    const role = `taskflow_no_such_role_${randomBytes(4).toString('hex')}`;
    const out = await failing(['start', '--port', '0'], { DATABASE_URL: urlWith(role, new URL(TEST_DATABASE_URL).pathname.slice(1)) });
    expect(out.code).toBe(4);
    expectOneLine(out, 'DATABASE_URL', `"${role}"`);
  });

  it('an unknown database: exit 4, naming the database and DATABASE_URL', async () => {
    const db = `taskflow_no_such_db_${randomBytes(4).toString('hex')}`;
    const out = await failing(['start', '--port', '0'], { DATABASE_URL: urlWith(new URL(TEST_DATABASE_URL).username || 'postgres', db) });
    expect(out.code).toBe(4);
    expectOneLine(out, 'DATABASE_URL', `"${db}"`);
  });

  it('a port already in use: exit 5, naming PORT and --port', async () => {
    const port = await freePort();
    const taken = createServer();
    servers.push(taken);
    await new Promise<void>((r) => taken.listen(port, '127.0.0.1', r));
    const schema = freshSchema('tfstart');
    schemas.push(schema);
    const out = await failing(['start', '--port', String(port)], { DATABASE_URL: TEST_DATABASE_URL, TASKFLOW_SCHEMA: schema });
    expect(out.code).toBe(5);
    expectOneLine(out, `port ${port}`, 'already in use', 'PORT', '--port');
  });

  it('a data directory that is a file: exit 6, naming TASKFLOW_DATA_DIR and --data-dir', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory\n');
    const out = await failing(['start', '--port', '0', '--data-dir', file]);
    expect(out.code).toBe(6);
    expectOneLine(out, file, 'not a directory', 'TASKFLOW_DATA_DIR', '--data-dir');
  });

  it('a data directory that cannot be created (under /proc) fails at once instead of spinning', async () => {
    const out = await failing(['start', '--port', '0'], { TASKFLOW_DATA_DIR: '/proc/taskflow-test/data' });
    expect(out.code).toBe(6);
    expectOneLine(out, '/proc/taskflow-test', 'cannot be created', 'TASKFLOW_DATA_DIR');
  });

  it('a schema migrated by a newer build: exit 8 (taskflow migrate and start)', async () => {
    const schema = freshSchema('tfstart');
    schemas.push(schema);
    const env = { DATABASE_URL: TEST_DATABASE_URL, TASKFLOW_SCHEMA: schema };
    expect((await failing(['migrate'], env)).code).toBe(0);
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    await client.query(`INSERT INTO "${schema}".taskflow_migrations (version, name) VALUES (999, 'from_the_future')`);
    await client.end();
    for (const args of [['migrate'], ['start', '--port', '0']]) {
      const out = await failing(args, env);
      expect(out.code).toBe(8);
      expectOneLine(out, `schema "${schema}" is at migration 999`);
    }
  });

  it('a bad configuration value: exit 2, naming the variable; --verbose (or LOG_LEVEL=debug) adds the stack', async () => {
    const out = await failing(['start'], { TASKFLOW_POLL_INTERVAL_MS: 'soon' });
    expect(out.code).toBe(2);
    expectOneLine(out, 'TASKFLOW_POLL_INTERVAL_MS="soon"');

    const port = await freePort();
    const url = urlWith('postgres', 'test', port);
    const verbose = await failing(['start', '--verbose'], { DATABASE_URL: url });
    const debug = await failing(['start'], { DATABASE_URL: url, LOG_LEVEL: 'debug' });
    for (const o of [verbose, debug]) {
      expect(o.code).toBe(3);
      expect(o.stderr.split('\n')[0]).toContain('DATABASE_URL');
      expect(o.stderr).toMatch(/^\s+at /m);
    }
  });
});

describe('taskflow worker: the API key and the service', () => {
  const module = join(dir, 'handlers.mjs');
  writeFileSync(module, 'export const handlers = { noop: async () => null };\n');

  it('an API key missing (exit 2), wrong or lacking the worker scope (exit 4), each naming TASKFLOW_API_KEY and --api-key', async () => {
    const missing = await failing(['worker', module], { TASKFLOW_API_KEY: '', TASKFLOW_URL: 'http://127.0.0.1:9' });
    expect(missing.code).toBe(2);
    expectOneLine(missing, 'TASKFLOW_API_KEY', '--api-key');

    const schema = freshSchema('tfstart');
    schemas.push(schema);
    const admin = `tf_startup_${randomBytes(12).toString('hex')}`;
    const { url, proc } = await startServerProcess({ DATABASE_URL: TEST_DATABASE_URL, TASKFLOW_SCHEMA: schema, TASKFLOW_BOOTSTRAP_API_KEY: admin });
    const wrong = await failing(['worker', module, '--url', url], { TASKFLOW_API_KEY: 'tf_not_a_key_of_this_service' });
    expect(wrong.code).toBe(4);
    expectOneLine(wrong, 'TASKFLOW_API_KEY', '--api-key', 'refused');

    const res = await fetch(`${url}/api/v1/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'producer only', scopes: ['producer'] }),
    });
    const { secret } = (await res.json()) as { secret: string };
    const producer = await failing(['worker', module, '--url', url, '--api-key', secret]);
    expect(producer.code).toBe(4);
    expectOneLine(producer, 'scope "worker"', 'TASKFLOW_API_KEY', '--api-key');
    proc.child.kill('SIGTERM');
    await proc.exited;
  }, 60_000);

  it('a service that is not there: exit 3, naming TASKFLOW_URL and --url', async () => {
    const port = await freePort();
    const out = await failing(['worker', module], { TASKFLOW_API_KEY: 'tf_whatever_key', TASKFLOW_URL: `http://127.0.0.1:${port}` });
    expect(out.code, out.stderr).toBe(3);
    expectOneLine(out, 'TASKFLOW_URL', '--url');
  });
});
