/**
 * The README's quick start, as a newcomer runs it: `npm start` brings up the embedded service
 * (PGlite in a data directory), serves /healthz, and prints an admin key once that works. A
 * second start on the same data keeps the data and prints no new key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, run } from './support/processes.ts';

describe('quick start: npm start', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'taskflow-quickstart-'));
  afterAll(async () => {
    await killAll();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function npmStart() {
    const proc = run('npm', ['start', '--silent'], { TASKFLOW_DATA_DIR: dataDir, PORT: '0', TASKFLOW_BOOTSTRAP_API_KEY: '' }, undefined, true);
    const [, url] = await proc.waitForLine(/Taskflow is running at (http:\/\/\S+)/, 90_000);
    return { proc, url: url! };
  }

  it('serves /healthz, prints a working admin key once, and keeps its data across restarts', async () => {
    const first = await npmStart();
    const [, key] = await first.proc.waitForLine(/^\s+(tf_\S+)\s*$/);
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
    const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const created = await fetch(`${first.url}/api/v1/tasks`, { method: 'POST', headers: auth, body: JSON.stringify({ type: 'hello' }) });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    // Ctrl-C: the service stops gracefully (and closes its database) before npm returns.
    first.proc.signalGroup('SIGINT');
    await first.proc.waitForLine(/"msg":"stopping"/);
    await first.proc.exited;
    await expect(fetch(`${first.url}/healthz`)).rejects.toThrow();

    const second = await npmStart();
    await second.proc.waitForLine(/Log in with the admin API key printed on the first start/);
    const again = await fetch(`${second.url}/api/v1/tasks/${id}`, { headers: auth });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { type: string }).type).toBe('hello');
    second.proc.signalGroup('SIGINT');
    await second.proc.exited;
  }, 180_000);
});
