/**
 * The harness every test project runs in: each package's vitest.config.ts (`npm test -w
 * @taskflow/core`) and the root's, which runs them all once and the end-to-end tests in test/
 * (`npm test`). One place, so that a package run alone and the whole suite run alike.
 */
import { fileURLToPath } from 'node:url';
import type { TestProjectInlineConfiguration } from 'vitest/config';

const harness = (file: string) => fileURLToPath(new URL(`./test/harness/${file}`, import.meta.url));

type ProjectTestOptions = NonNullable<TestProjectInlineConfiguration['test']>;

/**
 * Resolution of the @taskflow packages to their TypeScript sources (the `taskflow-source`
 * condition of their exports), not to the dist/ that only a build makes: the tests run what is
 * in the tree, with no build step. The condition is added to every Vite environment (the test
 * files', and vitest's own, which loads the global setup), and vitest starts its workers with
 * it as `--conditions`. Spread this into each project's config beside `test`.
 */
export const sourceResolution = {
  plugins: [{ name: 'taskflow-source', configEnvironment: () => ({ resolve: { conditions: ['taskflow-source'] } }) }],
} satisfies Omit<TestProjectInlineConfiguration, 'test'>;

/**
 * The test options of one project. `services`: the project talks to the real PostgreSQL and
 * Redis, so the run first checks they answer and fails with the command that starts them.
 */
export function projectTest(name: string, opts: { services: boolean }): ProjectTestOptions {
  return {
    name,
    include: ['test/**/*.test.ts'],
    globalSetup: opts.services ? [harness('services.ts')] : [],
    // Fails a test file that leaves a pool, a server, a worker, a process or a timer open.
    setupFiles: [harness('leakCheck.ts')],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Child processes, a fresh one per test file (vitest isolates files by default).
    pool: 'forks',
    // No test may leave a focused or skipped test behind.
    allowOnly: false,
  };
}
