/**
 * The leak check (leakCheck.ts) catches what it claims to. The fixtures each leave one kind of
 * thing open and must fail naming it; the clean one closes what it opens, keeps an unref'd
 * interval running, and must pass. They run in a vitest of their own (fixtures/vitest.config.ts),
 * as the suite runs its files, and its JSON report is read.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CONFIG = fileURLToPath(new URL('./fixtures/vitest.config.ts', import.meta.url));
const VITEST = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');

interface FileReport {
  name: string;
  status: 'passed' | 'failed';
  message: string;
}

const out = mkdtempSync(join(tmpdir(), 'taskflow-leaks-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Runs the fixtures; resolves with the exit code and each file's outcome, by file name. */
async function runFixtures(): Promise<{ code: number | null; files: Map<string, FileReport> }> {
  const report = join(out, 'report.json');
  // The run's own vitest variables would make the child think it is a worker of this run.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST')));
  const child = spawn(process.execPath, [VITEST, 'run', '--config', CONFIG, '--reporter=json', `--outputFile=${report}`], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  let parsed: { testResults: FileReport[] };
  try {
    parsed = JSON.parse(readFileSync(report, 'utf8'));
  } catch (err) {
    throw new Error(`the fixtures' vitest wrote no report (exit ${code}): ${stderr}`, { cause: err });
  }
  return { code, files: new Map(parsed.testResults.map((r) => [basename(r.name), r])) };
}

describe('the leak check', () => {
  let run: Awaited<ReturnType<typeof runFixtures>>;
  beforeAll(async () => {
    run = await runFixtures();
  }, 180_000);

  it('fails the run', () => {
    expect(run.code).toBe(1);
  });

  it.each([
    ['pool.fixture.ts', /a connection to 127\.0\.0\.1:5432 \(PostgreSQL\)/],
    ['redis.fixture.ts', /a connection to 127\.0\.0\.1:6379 \(Redis\)/],
    ['server.fixture.ts', /a server listening on 127\.0\.0\.1:\d+/],
    ['child.fixture.ts', /a child process \(pid \d+: sleep 60\)/],
    ['timer.fixture.ts', /setInterval\(…, 1000\) made at .*timer\.fixture\.ts:\d+/],
    ['pglite.fixture.ts', /a PGlite instance \(memory:\/\/\), not closed/],
    ['worker.fixture.ts', /an SDK Worker \([0-9a-f-]{36}\), started and not stopped/],
  ])('fails %s, naming what it left open', (file, named) => {
    const result = run.files.get(file);
    expect(result?.status).toBe('failed');
    expect(result?.message).toMatch(/^leak check: this test file left open/m);
    expect(result?.message).toMatch(named);
  });

  it('passes a file that closes what it opens, though an unref\'d interval still runs', () => {
    expect(run.files.get('clean.fixture.ts')).toMatchObject({ status: 'passed', message: '' });
  });
});
