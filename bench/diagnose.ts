/**
 * Where Taskflow's time goes, in numbers the runs of run.ts do not give (Taskflow on
 * PostgreSQL only): the floors and splits behind "What bounds the targets not met" in
 * README.md. Each section is a file of diagnose/, named by what it measures:
 *
 *   npm run diagnose -- [--n 20000] [--only cpu,http,statements,backlog,path,waiters,producers] [--server-node-flags "…"]
 *
 * - cpu: CPU per task of each process (producer, server, worker, PostgreSQL) during the
 *   bench's workloads, the server's GC, and what the worker's requests carried (~1 minute);
 * - http: the floor of one HTTP exchange (a bare node:http server, an undici client);
 * - statements: the engine's hot-path statements alone, from one connection;
 * - backlog: the claim and the settle-and-claim with 10,000 and 1,000,000 tasks waiting
 *   (fills a million rows: the longest section, a few minutes);
 * - path: the enqueue→start path of one task, step by step, each at 100/s;
 * - waiters: tasks at 100/s to 1 and 10 idle worker processes: CPU and commits per task;
 * - producers: 8 coalescing producers at once: tasks/s, commits per 1,000 tasks, CPU.
 *
 * `--n` sizes the workloads of cpu and the exchanges of http. `--server-node-flags` replaces
 * the service's own Node flags (those of `npm start`: --max-semi-space-size=8
 * --heap-growing-percent=50); `--server-node-flags=` runs the server with V8's defaults.
 * Every schema made is dropped, every process started is stopped. Output: tables on stdout,
 * everything in results/diagnose-<time>.json.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { killAll } from './lib/proc.ts';
import { describeEnvironment } from './lib/env.ts';
import type { DiagnoseContext, Section } from './diagnose/context.ts';
import { cpuSection } from './diagnose/cpu.ts';
import { httpSection } from './diagnose/http.ts';
import { statementsSection } from './diagnose/statements.ts';
import { backlogSection } from './diagnose/backlog.ts';
import { pathSection } from './diagnose/path.ts';
import { waitersSection } from './diagnose/waiters.ts';
import { producersSection } from './diagnose/producers.ts';

/** The sections, in the order a run takes them. */
const SECTIONS: Record<string, Section> = {
  cpu: cpuSection, http: httpSection, statements: statementsSection, backlog: backlogSection,
  path: pathSection, waiters: waitersSection, producers: producersSection,
};

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    only: { type: 'string', default: Object.keys(SECTIONS).join(',') },
    'server-node-flags': { type: 'string' },
    'database-url': { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    'redis-url': { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const only = new Set(args.only!.split(',').map((s) => s.trim()));
for (const o of only) if (!SECTIONS[o]) throw new Error(`--only: unknown section "${o}" (expected ${Object.keys(SECTIONS).join(', ')})`);
const n = Number(args.n);
if (!Number.isInteger(n) || n <= 0) throw new Error('--n: a whole number above 0');
const ctx: DiagnoseContext = {
  n,
  databaseUrl: args['database-url']!,
  redisUrl: args['redis-url']!,
  serviceNodeFlags: args['server-node-flags'] === undefined ? undefined : args['server-node-flags'].split(/\s+/).filter(Boolean),
  runId: `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`,
};

async function main(): Promise<void> {
  const env = await describeEnvironment(ctx.databaseUrl, ctx.redisUrl);
  console.error(`diagnose ${ctx.runId}: N=${ctx.n}; sections: ${[...only].join(', ')}`);
  const out: Record<string, unknown> = {};
  for (const [name, section] of Object.entries(SECTIONS)) if (only.has(name)) out[name] = await section(ctx);
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}diagnose-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, `${JSON.stringify({ runId: ctx.runId, at: new Date().toISOString(), n: ctx.n, environment: env, ...out }, null, 2)}\n`);
  console.error(`\nwritten ${file}`);
  if ((out.cpu as { problems?: string[] } | undefined)?.problems?.length) process.exitCode = 1;
}

try {
  await main();
} finally {
  killAll();
}
