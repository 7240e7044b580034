/**
 * The packages as a user gets them from npm: built and packed (`npm run build`, `npm pack`),
 * installed into an empty project outside the repository, and used there on Node 24 (the
 * repository's) and on Node 22.19.0, the oldest the engines allow (installed from npm as the
 * `node` package). In that project `taskflow start` serves (on Node 24 embedded, PGlite in a data
 * directory; on Node 22 on PostgreSQL); examples/ type-checks with the project's own tsc
 * against the packed declarations, and runs: the TypeScript under Node, the JavaScript tsc makes
 * of it, handlers.mjs under `taskflow worker`; and CommonJS can require() the SDK.
 *
 * Everything is packed and installed once per run (npm prefers its cache), then shared by
 * both Node versions. Nothing is published.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL, dropSchema, freshSchema } from '@taskflow/core/test-support';
import { REPO, killAll, run, type Proc } from './support/processes.ts';
import { runWorkerAndProducer } from './support/examples.ts';

const NODE_22 = '22.19.0';
const PACKAGES = ['@taskflow/contracts', '@taskflow/core', '@taskflow/sdk', '@taskflow/server'];
const KEY = `tf_pack_${randomBytes(12).toString('hex')}`;

const dir = mkdtempSync(join(tmpdir(), 'taskflow-pack-'));
const app = join(dir, 'app');
const schemas: string[] = [];

/** PATH with `nodeDir` first and no node_modules/.bin of the repository's (npm adds them to `npm test`). */
function pathWith(nodeDir: string): string {
  return [nodeDir, ...(process.env.PATH ?? '').split(delimiter).filter((p) => !p.endsWith(join('node_modules', '.bin')))].join(delimiter);
}

/**
 * The environment of a command run outside the repository: none of the variables npm sets for
 * `npm test` (npm_config_*, which would point npm back at the repository), no NODE_OPTIONS, and
 * `nodeDir`'s Node first on the PATH.
 */
function outsideEnv(nodeDir: string): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|NODE_OPTIONS$|INIT_CWD$|VITEST)/.test(k)));
  return { ...env, PATH: pathWith(nodeDir) };
}

/** Runs a command to its end; resolves with its output, or rejects with it and the exit code. */
function sh(cmd: string, args: string[], cwd: string, nodeDir: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env: outsideEnv(nodeDir), maxBuffer: 64 << 20, timeout: 240_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\n${stdout}\n${stderr}`, { cause: err }));
      else resolve({ stdout, stderr });
    });
  });
}

const NODE_24_DIR = dirname(process.execPath);
let node22Dir = '';
let packed: { name: string; filename: string; files: { path: string }[] }[] = [];
let tsc: { ok: boolean; output: string };

/** Node 22 from npm, in a directory of its own (its package installs the binary by a script). */
async function installNode22(): Promise<string> {
  const at = join(dir, 'node22');
  mkdirSync(at);
  writeFileSync(join(at, 'package.json'), JSON.stringify({ private: true, allowScripts: { node: true } }));
  await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', `node@${NODE_22}`], at, NODE_24_DIR);
  return join(at, 'node_modules', 'node', 'bin');
}

async function buildAndPack(): Promise<void> {
  await sh('npm', ['run', 'build'], REPO, NODE_24_DIR);
  const tarballs = join(dir, 'tarballs');
  mkdirSync(tarballs);
  const workspaces = PACKAGES.flatMap((p) => ['-w', p]);
  const { stdout } = await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tarballs, ...workspaces], REPO, NODE_24_DIR);
  packed = JSON.parse(stdout);
  for (const p of packed) p.filename = join(tarballs, p.filename);
}

/** The user's project: the tarballs, TypeScript and Node's types; the examples; a tsconfig. */
async function makeApp(): Promise<void> {
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'taskflow-pack-check', private: true, type: 'module' }));
  const version = (pkg: string) => JSON.parse(readFileSync(join(REPO, 'node_modules', pkg, 'package.json'), 'utf8')).version as string;
  const deps = [...packed.map((p) => p.filename), `typescript@${version('typescript')}`, `@types/node@${version('@types/node')}`];
  await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...deps], app, NODE_24_DIR);
  for (const file of ['producer.ts', 'worker.ts', 'handlers.mjs']) cpSync(join(REPO, 'examples', file), join(app, file));
  // What a project running TypeScript on Node's type stripping would use; skipLibCheck off, so
  // that the packed declarations are checked too. tsc also writes the JavaScript to js/.
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'es2024', module: 'nodenext', strict: true, erasableSyntaxOnly: true, verbatimModuleSyntax: true,
      allowJs: true, skipLibCheck: false, types: ['node'], outDir: 'js',
    },
    include: ['*.ts', '*.mjs'],
  }));
}

/** `taskflow start` in the project on the Node in `nodeDir`; resolves with its URL. */
async function startService(nodeDir: string, env: Record<string, string>): Promise<string> {
  const { stdout } = await sh('npx', ['taskflow', '--help'], app, nodeDir);
  expect(stdout).toContain('Usage: taskflow');
  const proc = run(join(app, 'node_modules', '.bin', 'taskflow'), ['start'], {
    PATH: pathWith(nodeDir), NODE_OPTIONS: '', PORT: '0', LOG_LEVEL: 'warn', TASKFLOW_BOOTSTRAP_API_KEY: KEY, ...env,
  }, app);
  return (await proc.waitForLine(/Taskflow is running at (http:\/\/\S+)/, 180_000))[1]!;
}

const urls = new Map<string, string>();

beforeAll(async () => {
  const node22 = installNode22();
  node22.catch(() => undefined); // awaited below; not unhandled meanwhile
  await buildAndPack();
  await makeApp();
  node22Dir = await node22;
  const schema = freshSchema('tfpack');
  schemas.push(schema);
  // One after the other, not side by side: each is CPU-heavy, and the suite's other files run
  // meanwhile, some with leases of a few hundred milliseconds.
  tsc = await sh(join(app, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], app, NODE_24_DIR).then(
    () => ({ ok: true, output: '' }),
    (err: Error) => ({ ok: false, output: err.message }),
  );
  urls.set('24', await startService(NODE_24_DIR, { TASKFLOW_DATA_DIR: join(dir, 'data') }));
  urls.set(NODE_22, await startService(node22Dir, { DATABASE_URL: TEST_DATABASE_URL, TASKFLOW_SCHEMA: schema }));
}, 600_000);

afterAll(async () => {
  await killAll();
  await Promise.all(schemas.map(dropSchema));
  rmSync(dir, { recursive: true, force: true });
});

describe('the packed packages', () => {
  it('hold JavaScript, declarations and READMEs, no TypeScript sources; the bin is plain JavaScript', () => {
    expect(packed.map((p) => p.name)).toEqual(PACKAGES);
    for (const p of packed) {
      const files = p.files.map((f) => f.path);
      expect(files, p.name).toContain('README.md');
      expect(files, p.name).toContain('dist/index.js');
      expect(files, p.name).toContain('dist/index.d.ts');
      expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), p.name).toEqual([]);
    }
    const bin = readFileSync(join(app, 'node_modules', '@taskflow', 'server', 'bin', 'taskflow.js'), 'utf8');
    expect(bin.split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it("type-check examples/ with the project's tsc against the packed declarations", () => {
    expect(tsc.ok, tsc.output).toBe(true);
  });
});

/** The examples and the CLI in the project, on the Node in `nodeDir`, against its service. */
function usedOn(label: string, nodeDir: () => string) {
  describe(`on Node ${label}, in a project of its own`, () => {
    /** A process in the project on this Node, with the examples' environment for `queue`. */
    const inApp = (cmd: string, args: string[], queue: string, extra: Record<string, string> = {}): Proc =>
      run(cmd, args, { PATH: pathWith(nodeDir()), NODE_OPTIONS: '', TASKFLOW_URL: urls.get(label)!, TASKFLOW_API_KEY: KEY, TASKFLOW_QUEUE: queue, ...extra }, app);
    const node = (file: string, queue: string) => () => inApp(join(nodeDir(), 'node'), [file], queue);
    const taskflow = join(app, 'node_modules', '.bin', 'taskflow');

    it('runs the TypeScript examples as they are: worker.ts runs what producer.ts submits', async () => {
      await runWorkerAndProducer(node('worker.ts', 'ts'), /^worker \S+ is running/, node('producer.ts', 'ts'));
    });

    it('runs the JavaScript that tsc made of them', async () => {
      await runWorkerAndProducer(node('js/worker.js', 'js'), /^worker \S+ is running/, node('js/producer.js', 'js'));
    });

    it('runs handlers.mjs under `taskflow worker`', async () => {
      await runWorkerAndProducer(() => inApp(taskflow, ['worker', './handlers.mjs'], 'cli', { LOG_LEVEL: 'info' }), /"msg":"worker started"/, node('js/producer.js', 'cli'));
    });

    it('loads the SDK from CommonJS', async () => {
      const script = "const sdk = require('@taskflow/sdk'); const t = require('@taskflow/sdk/testing'); console.log(typeof sdk.Worker, typeof sdk.TaskflowClient, typeof t.runTaskOnce)";
      const { stdout } = await sh(join(nodeDir(), 'node'), ['--input-type=commonjs', '-e', script], app, nodeDir());
      expect(stdout.trim()).toBe('function function function');
    });
  });
}

usedOn('24', () => NODE_24_DIR);
usedOn(NODE_22, () => node22Dir);
