/**
 * deploy/prometheus/taskflow-alerts.yml: valid rules (`promtool check rules`) that fire as
 * taskflow-alerts.test.yml expects on fabricated series (`promtool test rules`), over metric
 * names this server exports.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TaskflowMetrics } from '../src/ops/metrics.ts';

const DIR = fileURLToPath(new URL('../../../deploy/prometheus/', import.meta.url));

function promtool(args: string[]): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8' });
  if (run.error) throw new Error(`promtool is needed (apt-get install -y prometheus): ${run.error.message}`);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('the shipped Prometheus alert rules', () => {
  it('pass promtool check rules', () => {
    const { status, output } = promtool(['check', 'rules', 'taskflow-alerts.yml']);
    expect(output).toMatch(/SUCCESS: 8 rules found/);
    expect(status).toBe(0);
  });

  it('fire as their unit tests expect (promtool test rules)', () => {
    const { status, output } = promtool(['test', 'rules', 'taskflow-alerts.test.yml']);
    expect(output).toMatch(/SUCCESS/);
    expect(status).toBe(0);
  });

  it('use only metrics the server exports', async () => {
    const rules = readFileSync(`${DIR}/taskflow-alerts.yml`, 'utf8');
    const used = new Set([...rules.matchAll(/\b(taskflow_[a-z_]+)/g)].map((m) => m[1]!));
    const exported = new Set((await new TaskflowMetrics({ version: '0.0.0' }).registry.getMetricsAsJSON()).map((m) => m.name));
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
  });
});
