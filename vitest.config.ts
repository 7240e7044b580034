/**
 * `npm test`: every package's tests (packages/*\/vitest.config.ts) and the end-to-end tests
 * in test/, each file once. `npm test -w @taskflow/core` runs one package's alone. The inline
 * project of test/ extends this config, its source resolution included.
 */
import { defineConfig } from 'vitest/config';
import { projectTest, sourceResolution } from './vitest.shared.ts';

export default defineConfig({
  ...sourceResolution,
  test: {
    projects: ['packages/*/vitest.config.ts', { test: projectTest('integration', { services: true }) }],
  },
});
