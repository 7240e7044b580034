/**
 * The analytics API over HTTP (PostgreSQL): a fabricated history of the last hours, the
 * rollup duty's passes, then every endpoint through the SDK, compared with figures computed
 * from the history itself; and bad input as 400 problems naming the query field. The rollup's
 * arithmetic on both drivers is core's analytics conformance suite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Analytics, databaseClock, ERROR_BOUND } from '@taskflow/core';
import { fabricate, insertHistory, WORKER_IDS, type FabricatedTask } from '@taskflow/core/test-support';
import { routes } from '@taskflow/contracts';
import { startTestService, type TestService } from './support/service.ts';

const HOUR = 3_600_000;

describe('analytics API (postgres)', () => {
  let svc: TestService;
  let history: FabricatedTask[];
  let t0: number;

  beforeAll(async () => {
    svc = await startTestService('postgres', {}, { maintenance: false });
    t0 = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
    history = fabricate(900, t0, 2 * HOUR, 11);
    await insertHistory(svc.service.db, history, t0 + 2 * HOUR);
    const analytics = new Analytics(svc.service.db, databaseClock);
    while ((await analytics.rollup({ backfillMs: 4 * HOUR })).behind);
  });

  afterAll(async () => {
    await svc?.stop();
  });

  const until = () => new Date(t0 + 3 * HOUR - 1).toISOString();

  it('answers throughput per bucket, summing to the history', async () => {
    const res = await svc.admin.analyticsThroughput({ window: '3h', bucket: '15m', until: until() });
    expect(res).toMatchObject({ from: new Date(t0).toISOString(), to: new Date(t0 + 3 * HOUR).toISOString(), bucket: '15m' });
    expect(res.points).toHaveLength(12);
    const sum = (k: 'submitted' | 'succeeded' | 'failed' | 'dead') => res.points.reduce((n, p) => n + p[k], 0);
    expect(sum('submitted')).toBe(history.length);
    expect(sum('succeeded')).toBe(history.filter((t) => t.state === 'succeeded').length);
    expect(sum('dead')).toBe(history.filter((t) => t.state === 'dead').length);
    expect(sum('failed')).toBe(history.reduce((n, t) => n + t.attempts.filter((a) => a.outcome !== 'succeeded').length, 0));
    const one = await svc.admin.analyticsThroughput({ window: '3h', bucket: '1h', until: until(), queue: 'emails', type: 'send' });
    expect(one.points.reduce((n, p) => n + p.submitted, 0)).toBe(history.filter((t) => t.queue === 'emails' && t.type === 'send').length);
  });

  it('answers duration percentiles and failure rates per queue and type', async () => {
    const d = await svc.admin.analyticsDurations({ window: '6h', until: until() });
    expect(d.items).toHaveLength(6);
    const durations = history.flatMap((t) => t.attempts.filter((a) => a.outcome !== 'lease_expired').map((a) => a.finishedAt - a.startedAt)).sort((a, b) => a - b);
    expect(d.overall.count).toBe(durations.length);
    const exact95 = durations[Math.ceil(0.95 * durations.length) - 1]!;
    expect(Math.abs(d.overall.p95Ms! / exact95 - 1)).toBeLessThanOrEqual(ERROR_BOUND + 1e-9);

    const f = await svc.admin.analyticsFailures({ window: '6h', until: until(), queue: 'reports' });
    expect(f.items.map((i) => i.queue)).toEqual(['reports', 'reports', 'reports']);
    for (const i of f.items) expect(i.failureRate).toBeCloseTo(i.failed / (i.succeeded + i.failed), 12);
  });

  it('answers per-worker performance and the health summary', async () => {
    const w = await svc.admin.analyticsWorkers({ window: '6h', until: until() });
    expect(w.items.map((i) => i.workerId).sort()).toEqual([...WORKER_IDS].sort());
    const total = history.reduce((n, t) => n + t.attempts.length, 0);
    expect(w.items.reduce((n, i) => n + i.tasks, 0)).toBe(total);
    expect(w.items.every((i) => i.lastSeenAt !== null && i.p50Ms !== null)).toBe(true);

    const h = await svc.admin.analyticsHealth();
    expect(h.alerts).toEqual({ firing: [] });
    expect(h.queues.map((q) => q.name)).toEqual(['emails', 'reports']);
    expect(h.queues.every((q) => q.ready === 0 && q.oldestReadyAgeMs === 0)).toBe(true);
    expect(h.workers).toEqual({ online: 3, slots: 30 });
    expect(h.rollup.finalThrough).not.toBeNull();
  });

  const bad: { name: string; query: string; field: string }[] = [
    { name: 'unknown bucket size', query: 'throughput?bucket=2m', field: '/query/bucket' },
    { name: 'window not a duration', query: 'throughput?window=yesterday', field: '/query/window' },
    { name: 'window too large for its bucket', query: 'throughput?window=3d&bucket=1m', field: '/query/window' },
    { name: 'window of more than 1440 buckets', query: 'throughput?window=61d&bucket=1h', field: '/query/window' },
    { name: 'window not whole buckets', query: 'throughput?window=90m&bucket=1h', field: '/query/window' },
    { name: 'window shorter than a bucket', query: 'throughput?window=5m&bucket=15m', field: '/query/window' },
    { name: 'summary window too large', query: 'durations?window=91d', field: '/query/window' },
    { name: 'summary window over 6h not whole hours', query: 'failures?window=400m', field: '/query/window' },
    { name: 'summary window over 2d not whole days', query: 'workers?window=50h', field: '/query/window' },
    { name: 'throughput window beyond the day rows kept', query: 'throughput?window=401d&bucket=1d', field: '/query/window' },
    { name: 'until not a date-time', query: 'workers?until=noon', field: '/query/until' },
    { name: 'queue name invalid', query: 'durations?queue=no%20spaces', field: '/query/queue' },
    { name: 'unknown parameter', query: 'durations?verbose=1', field: '/query/verbose' },
  ];

  it.each(bad)('refuses $name with a 400 naming $field', async (c) => {
    const res = await fetch(`${svc.url}/api/v1/analytics/${c.query}`, { headers: { authorization: `Bearer ${svc.adminKey}` } });
    const text = await res.text();
    expect(res.status, text).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(text) as { detail: string; errors?: { field: string }[] };
    expect(problem.detail).toContain(c.field);
    expect(problem.errors?.map((e) => e.field)).toContain(c.field);
  });

  it('is for admin and read keys only', async () => {
    const producer = await svc.clientWith(['producer']);
    await expect(producer.analyticsHealth()).rejects.toMatchObject({ status: 403 });
  });

  it('answers a read key, which reads queues, tasks and workers and writes nothing', async () => {
    const reader = await svc.clientWith(['read']);
    const res = await reader.analyticsThroughput({ window: '3h', bucket: '1h', until: until() });
    expect(res.points.reduce((n, p) => n + p.submitted, 0)).toBe(history.length);
    expect((await reader.analyticsHealth()).workers).toEqual({ online: 3, slots: 30 });
    expect((await reader.listQueues()).items.map((q) => q.name)).toEqual(['emails', 'reports']);
    expect((await reader.listWorkers()).items).toHaveLength(3);
    expect((await reader.listTasks({ queue: 'emails', limit: 5 })).items).toHaveLength(5);
    await reader.listDead();
    await reader.alerts.firing();
    await reader.alerts.history();

    const forbidden = { status: 403, code: 'forbidden' };
    await expect(reader.enqueue({ queue: 'emails', type: 'send' })).rejects.toMatchObject(forbidden);
    await expect(reader.pauseQueue('emails')).rejects.toMatchObject(forbidden);
    await expect(reader.createApiKey({ name: 'escalate', scopes: ['admin'] })).rejects.toMatchObject(forbidden);
    await expect(reader.listApiKeys()).rejects.toMatchObject(forbidden);
    await expect(reader.alerts.listRules()).rejects.toMatchObject(forbidden);
    await expect(reader.registerWorker({ name: 'w', queues: ['emails'] })).rejects.toMatchObject(forbidden);
    const queues = await svc.admin.listQueues();
    expect(queues.items.every((q) => !q.paused)).toBe(true);
    expect((await svc.admin.listTasks({ queue: 'emails', limit: 500 })).items).toHaveLength(history.filter((t) => t.queue === 'emails').length);
  });

  it('opens to read keys GET routes only, never the API keys nor the alert rules', () => {
    const readable = Object.entries(routes).filter(([, def]) => 'read' in def && def.read);
    expect(readable.length).toBeGreaterThan(15);
    for (const [name, def] of readable) {
      expect(def.method, name).toBe('GET');
      expect(def.path, name).not.toMatch(/api-keys|alerts\/rules/);
    }
  });
});
