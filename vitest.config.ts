/**
 * `npm test`: every package's tests (packages/*\/vitest.config.ts) and the end-to-end tests
 * in test/, each file once. `npm test -w @taskflow/core` runs one package's alone.
 */
import { defineConfig } from 'vitest/config';
import { projectTest } from './vitest.shared.ts';

export default defineConfig({
  test: {
    projects: ['packages/*/vitest.config.ts', { test: projectTest('integration', { services: true }) }],
  },
});
