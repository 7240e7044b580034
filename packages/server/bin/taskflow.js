#!/usr/bin/env node
/**
 * The `taskflow` command (src/cli.ts), as npm installs it: plain JavaScript under plain `node`.
 *
 * It runs Node with the service's memory flags, as `npm start` does (src/cli.ts says what they
 * save): where the process lacks one, it re-executes itself in place with them (process.execve:
 * the same process id, no second process; on Windows, which has no execve, it runs without).
 * A flag already given, on the command line or in NODE_OPTIONS, is left as it is.
 *
 * Installed from npm, it runs the build in dist/. In the repository, where src/ sits beside it,
 * it runs the sources on Node's type stripping and resolves the other @taskflow packages to
 * their sources too (their `taskflow-source` export condition, as `npm start` and the tests
 * do), so that `npx taskflow` there needs no build step.
 */
import { existsSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { fileURLToPath } from 'node:url';

const MEMORY_FLAGS = ['--max-semi-space-size=8', '--heap-growing-percent=50', '--liftoff-only'];

const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
const missing = MEMORY_FLAGS.filter((flag) => !given.some((g) => g.startsWith(flag.split('=')[0])));
if (missing.length > 0 && typeof process.execve === 'function') {
  process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], process.env);
}

const source = new URL('../src/cli.ts', import.meta.url);
if (existsSync(source)) {
  registerHooks({
    resolve: (specifier, context, nextResolve) =>
      nextResolve(specifier, { ...context, conditions: [...context.conditions, 'taskflow-source'] }),
  });
  await import(source.href);
} else {
  await import('../dist/cli.js');
}
