/**
 * The `taskflow` command: start (the service), migrate, worker <module>, demo.
 * This is an entry point: it alone reads the environment (through loadConfig) and argv.
 *
 * Node runs it with --max-semi-space-size=8 --heap-growing-percent=50 --liftoff-only (`npm start`
 * and bin/taskflow.js). The first: V8's default young generation reserves tens of MB that a service like this
 * does not need. Measured with bench/run.ts and bench/diagnose.ts: peak RSS about 198 MiB by
 * default, 150 with 4 (but four to six times the young collections, ~10% more CPU per
 * submission), 155-158 with 8 (half of those collections). The second: the old generation may
 * grow by half its live size between full collections, where V8 by default lets it grow to
 * several times that under sustained load (live heap ~30 MB, ~90 MB before a full collection).
 * Measured with bench/scaling.ts --hot 100000: peak RSS 168-175 MiB without it, 155-157 MiB with
 * it, the same server CPU (docs/operations.md). The third concerns WebAssembly only, that is the
 * embedded PGlite (and undici's HTTP parser in `worker`): V8 compiles it with its baseline
 * compiler only. Its optimizing compiler, once the SQL parser (one 105 KB function) runs hot,
 * takes 640 MB and several seconds of a core to compile it; that compile was the embedded
 * server's memory peak. Measured with `npm run bench -- --only pglite` in bench/, three
 * alternating rounds (N = 20,000): peak RSS 248-255 MiB with it, 783-807 without, and drains
 * no slower (docs/operations.md, "Memory of the embedded mode").
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { createLogger } from './logging.ts';
import { migrate, openDatabase } from '@taskflow/core';
import type { TaskHandler } from '@taskflow/sdk';
import { ConfigError, loadConfig, logLevelOf, unknownVariables, type Config } from './config.ts';
import { startService } from './service.ts';
import { runDemo } from './demo.ts';
import { explainFailure, fullStack, type FailureContext } from './startupErrors.ts';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('taskflow')
  .description('Taskflow: a distributed task queue service on PostgreSQL')
  .version(version, '-V, --version', 'print the version')
  .option('--verbose', 'on failure, print the stack too (as LOG_LEVEL=debug does)')
  .hook('preAction', () => {
    // A typo in a variable's name would otherwise do nothing, silently.
    for (const { name, suggestion } of unknownVariables(process.env)) {
      console.error(`taskflow: warning: ${name} is not a Taskflow setting${suggestion ? ` (did you mean ${suggestion}?)` : ''}; it is ignored`);
    }
  });

/** What the running command knows, for the message if it fails. */
const failure: FailureContext = {};

/** Flags override the environment variables of the same options, and are validated with them. */
function serviceConfig(opts: { port?: string; host?: string; dataDir?: string; databaseUrl?: string }): Config {
  const flags: Record<string, string | undefined> = {
    PORT: opts.port,
    HOST: opts.host,
    TASKFLOW_DATA_DIR: opts.dataDir,
    DATABASE_URL: opts.databaseUrl,
  };
  const config = loadConfig({ ...process.env, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) });
  Object.assign(failure, { databaseUrl: config.databaseUrl, host: config.host, port: config.port });
  return config;
}

program
  .command('start')
  .description('run the service (embedded PGlite unless DATABASE_URL is set)')
  .option('-p, --port <port>', 'port to listen on (env PORT, default 7700)')
  .option('--host <host>', 'address to bind (env HOST, default 127.0.0.1)')
  .option('--data-dir <dir>', 'PGlite data directory (env TASKFLOW_DATA_DIR, default ./.taskflow)')
  .option('--database-url <url>', 'PostgreSQL connection string (env DATABASE_URL)')
  .action(async (opts) => {
    const config = serviceConfig(opts);
    const service = await startService(config);
    printBanner(service.url, config, service.createdAdminKey);
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) process.exit(130);
      stopping = true;
      service.logger.info({ signal }, 'stopping');
      await service.stop();
      process.exit(0);
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
  });

program
  .command('migrate')
  .description('apply pending migrations and exit')
  .option('--data-dir <dir>', 'PGlite data directory')
  .option('--database-url <url>', 'PostgreSQL connection string')
  .action(async (opts) => {
    const config = serviceConfig(opts);
    const logger = createLogger(config.logLevel);
    const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, schema: config.schema, connectionTimeoutMs: config.connectionTimeoutMs, logger });
    try {
      const result = await migrate(db, logger);
      console.log(result.applied.length ? `applied migrations ${result.applied.join(', ')}; schema "${config.schema}" is at ${result.version}` : `schema "${config.schema}" is up to date (version ${result.version})`);
    } finally {
      await db.close();
    }
  });

program
  .command('worker <module>')
  .description('run the handlers a module exports (`export const handlers = { "email.send": async (payload, ctx) => ... }`)')
  .option('--url <url>', 'service URL (env TASKFLOW_URL)', process.env.TASKFLOW_URL ?? 'http://127.0.0.1:7700')
  .option('--api-key <key>', 'API key with scope worker (env TASKFLOW_API_KEY)', process.env.TASKFLOW_API_KEY)
  .option('-q, --queues <names>', 'comma-separated queues (default: the module\'s `queues`, else "default")')
  .option('-c, --concurrency <n>', 'tasks at once (default: the module\'s `concurrency`, else 10)')
  .option('--name <name>', 'worker name shown in the dashboard')
  .action(async (modulePath: string, opts) => {
    if (!opts.apiKey) throw new ConfigError('the worker needs an API key with scope "worker": set TASKFLOW_API_KEY (or --api-key)');
    const mod = (await import(pathToFileURL(resolve(modulePath)).href).catch((err: unknown) => {
      // The module itself missing is the user's argument; an error inside it keeps its stack.
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes(resolve(modulePath))) throw new ConfigError(`${modulePath}: no such module`);
      throw err;
    })) as {
      handlers?: Record<string, TaskHandler>;
      default?: Record<string, TaskHandler>;
      queues?: string[];
      concurrency?: number;
    };
    const handlers = mod.handlers ?? mod.default;
    if (!handlers || typeof handlers !== 'object') throw new ConfigError(`${modulePath} exports no handlers (export const handlers = {...})`);
    const logger = createLogger(logLevelOf(process.env));
    // Only this command (and `demo`) needs the SDK and its HTTP client: `start` does not load them.
    const { Worker, TaskflowApiError, TaskflowNetworkError } = await import('@taskflow/sdk');
    Object.assign(failure, { url: opts.url, sdk: { TaskflowApiError, TaskflowNetworkError } });
    const worker = new Worker({
      url: opts.url,
      apiKey: opts.apiKey,
      queues: opts.queues ? String(opts.queues).split(',').map((q) => q.trim()).filter(Boolean) : (mod.queues ?? ['default']),
      concurrency: opts.concurrency ? Number(opts.concurrency) : (mod.concurrency ?? 10),
      name: opts.name,
      handlers,
      logger,
    });
    worker.on('stopped', () => process.exit(0));
    await worker.start();
    logger.info({ workerId: worker.workerId, types: Object.keys(handlers) }, 'worker started');
  });

program
  .command('demo')
  .description('see tasks flow: enqueue sample tasks and run a sample worker (against --url, or an in-memory service)')
  .option('--url <url>', 'a running service (env TASKFLOW_URL); default: start one in memory')
  .option('--api-key <key>', 'admin API key for --url (env TASKFLOW_API_KEY)', process.env.TASKFLOW_API_KEY)
  .option('-n, --tasks <n>', 'how many tasks', '30')
  .action(async (opts) => {
    await runDemo({ url: opts.url ?? process.env.TASKFLOW_URL, apiKey: opts.apiKey, tasks: Number(opts.tasks) });
  });

function printBanner(url: string, config: Config, createdAdminKey: string | undefined): void {
  const where = config.databaseUrl ? 'PostgreSQL'
    : config.dataDir.startsWith('memory://') ? 'embedded PostgreSQL (PGlite) in memory' : `embedded PostgreSQL (PGlite) in ${resolve(config.dataDir)}`;
  const lines = [
    '',
    `  Taskflow is running at ${url}  (${where})`,
    `  API docs:     ${url}/api/v1/docs`,
  ];
  if (createdAdminKey) {
    lines.push(
      `  Admin API key (shown once; store it now):`,
      `      ${createdAdminKey}`,
      `  Try it:       curl -H "Authorization: Bearer ${createdAdminKey}" ${url}/api/v1/queues`,
    );
  } else {
    lines.push(
      config.bootstrapApiKey
        ? '  Log in with the API key in TASKFLOW_BOOTSTRAP_API_KEY.'
        : '  Log in with the admin API key printed on the first start (or set TASKFLOW_BOOTSTRAP_API_KEY).',
    );
  }
  lines.push('');
  process.stdout.write(lines.join('\n') + '\n');
}

program.parseAsync().catch((err: unknown) => {
  const { exitCode, message, showStack } = explainFailure(err, failure);
  const verbose = program.opts().verbose === true || ['debug', 'trace'].includes(process.env.LOG_LEVEL ?? '');
  console.error(`taskflow: ${message}`);
  if (showStack || verbose) console.error(fullStack(err));
  process.exit(exitCode);
});
