/**
 * /metrics after a known workload: 100 tasks submitted, 90 succeed, 10 fail on their last
 * attempt (dead), one late result is refused. The counters, histograms and snapshot gauges say
 * exactly that, no label holds an id, and `promtool check metrics` accepts the exposition.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './support/service.ts';
import { parseExposition, valueOf, type Sample } from './exposition.ts';

const QUEUE = 'metrics-q';
const TYPE = 'email.send';

/** promtool (Debian's `prometheus` package): a missing one fails the test, with how to install it. */
function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { input, encoding: 'utf8' });
  if (run.error) throw new Error(`promtool is needed (apt-get install -y prometheus): ${run.error.message}`);
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('/metrics', () => {
  let svc: TestService;
  let text: string;
  let samples: Sample[];
  let workerId: string;
  const ids: string[] = [];

  beforeAll(async () => {
    svc = await startTestService('postgres');
    const { ids: created } = await svc.admin.enqueueManyIds(
      Array.from({ length: 100 }, (_, i) => ({ queue: QUEUE, type: TYPE, payload: { i }, maxAttempts: 1 })),
    );
    ids.push(...created);
    const worker = await svc.admin.registerWorker({ name: 'metrics test', queues: [QUEUE], concurrency: 100 });
    workerId = worker.id;
    const claimed = await svc.admin.claim(workerId, { max: 100 });
    expect(claimed.tasks).toHaveLength(100);
    const results = claimed.tasks.map((t, i) => i < 90
      ? { id: t.id, attempt: t.attempt, status: 'succeeded' as const, result: { ok: true } }
      : { id: t.id, attempt: t.attempt, status: 'failed' as const, error: { message: `no such mailbox ${i}`, stack: `TypeError: no such mailbox ${i}\n    at send (mail.js:1:1)` } });
    // Successes with the next claim (one statement), failures before it: both settlement paths.
    const settled = await svc.admin.claim(workerId, { max: 10, results });
    expect(settled.tasks).toHaveLength(0);
    const late = await svc.admin.reportResults(workerId, [{ id: claimed.tasks[0]!.id, attempt: claimed.tasks[0]!.attempt + 1, status: 'succeeded' }]);
    expect(late.results[0]).not.toMatchObject({ outcome: 'accepted' });
    expect(await svc.service.engine.refreshStats(0)).toBe(true);
    const res = await fetch(`${svc.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    text = await res.text();
    samples = parseExposition(text);
  });
  afterAll(() => svc?.stop());

  it('counts submissions, attempts by outcome, finishes, failures by class and refused results', () => {
    const q = { queue: QUEUE, task_type: TYPE };
    expect(valueOf(samples, 'taskflow_tasks_submitted_total', q)).toBe(100);
    expect(valueOf(samples, 'taskflow_task_attempts_total', { ...q, outcome: 'succeeded' })).toBe(90);
    expect(valueOf(samples, 'taskflow_task_attempts_total', { ...q, outcome: 'failed' })).toBe(10);
    expect(valueOf(samples, 'taskflow_tasks_finished_total', { ...q, state: 'succeeded' })).toBe(90);
    expect(valueOf(samples, 'taskflow_tasks_finished_total', { ...q, state: 'dead' })).toBe(10);
    expect(valueOf(samples, 'taskflow_tasks_retried_total', q)).toBe(0);
    expect(valueOf(samples, 'taskflow_task_failures_total', { queue: QUEUE, error_type: 'TypeError' })).toBe(10);
    expect(valueOf(samples, 'taskflow_results_rejected_total', { reason: 'stale' })).toBe(1);
  });

  it('observes every claim in the queue wait and every attempt in the duration histograms', () => {
    expect(valueOf(samples, 'taskflow_task_queue_wait_seconds_count', { queue: QUEUE })).toBe(100);
    expect(valueOf(samples, 'taskflow_task_queue_wait_seconds_bucket', { queue: QUEUE, le: '+Inf' })).toBe(100);
    const d = { queue: QUEUE, task_type: TYPE };
    expect(valueOf(samples, 'taskflow_task_attempt_duration_seconds_count', { ...d, outcome: 'succeeded' })).toBe(90);
    expect(valueOf(samples, 'taskflow_task_attempt_duration_seconds_count', { ...d, outcome: 'failed' })).toBe(10);
    expect(valueOf(samples, 'taskflow_task_attempt_duration_seconds_sum', d)).toBeGreaterThanOrEqual(0);
  });

  it('exports the queue gauges from the shared snapshot', () => {
    const q = { queue: QUEUE };
    expect(valueOf(samples, 'taskflow_queue_tasks', { ...q, state: 'dead' })).toBe(10);
    expect(valueOf(samples, 'taskflow_queue_tasks', { ...q, state: 'queued' })).toBe(0);
    expect(valueOf(samples, 'taskflow_queue_tasks', { ...q, state: 'running' })).toBe(0);
    expect(valueOf(samples, 'taskflow_queue_workers', q)).toBe(1);
    expect(valueOf(samples, 'taskflow_queue_worker_slots', q)).toBe(100);
    expect(valueOf(samples, 'taskflow_queue_paused', q)).toBe(0);
    expect(valueOf(samples, 'taskflow_queue_stats_refresh_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 600);
  });

  it('exports HTTP requests by route template, statements by name, the build and the process', () => {
    expect(valueOf(samples, 'http_server_request_duration_seconds_count', { http_route: '/api/v1/workers/:id/claim', http_response_status_code: '200' })).toBe(2);
    expect(valueOf(samples, 'taskflow_db_statement_duration_seconds_count', { statement: 'tf_task_claim_observed' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(samples, 'taskflow_db_pool_max_connections', { pool: 'main' })).toBe(5);
    expect(valueOf(samples, 'taskflow_dependency_up', { dependency: 'postgres' })).toBe(1);
    expect(samples.find((s) => s.name === 'taskflow_build_info')?.labels.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(valueOf(samples, 'process_cpu_seconds_total')).toBeGreaterThan(0);
  });

  it('puts no task id, worker id or error message in a label', () => {
    // Ours (not nodejs_version_info's version numbers); bucket bounds (`le`) are numbers, as small ids are.
    const values = samples
      .filter((s) => s.name.startsWith('taskflow_') || s.name.startsWith('http_'))
      .flatMap((s) => Object.entries(s.labels).filter(([k]) => k !== 'le').map(([, v]) => v));
    expect(values).not.toContain(workerId);
    for (const id of ids) expect(values).not.toContain(id);
    expect(text).not.toContain('no such mailbox');
  });

  it('passes promtool check metrics', () => {
    const { status, output } = promtool(['check', 'metrics'], text);
    expect(output.trim()).toBe('');
    expect(status).toBe(0);
  });
});

describe('/metrics on a port of its own, and off', () => {
  it('serves the exposition alone on TASKFLOW_METRICS_PORT, and on the API port too', async () => {
    const svc = await startTestService('postgres', { metricsPort: 0 });
    try {
      const url = svc.service.metricsUrl!;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(url).not.toBe(svc.url);
      const res = await fetch(`${url}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('taskflow_build_info');
      expect((await fetch(`${url}/api/v1/tasks`)).status).toBe(404);
      expect((await fetch(`${svc.url}/metrics`)).status).toBe(200);
    } finally {
      await svc.stop();
    }
  });

  it('has no /metrics and counts nothing with TASKFLOW_METRICS=off', async () => {
    const svc = await startTestService('postgres', { metrics: false });
    try {
      expect(svc.service.metrics).toBeUndefined();
      expect((await fetch(`${svc.url}/metrics`)).status).toBe(404);
      expect((await fetch(`${svc.url}/readyz`)).status).toBe(200);
    } finally {
      await svc.stop();
    }
  });
});
