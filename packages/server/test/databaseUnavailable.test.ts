/**
 * A database that cannot answer makes every route answer 503 `database_unavailable` with
 * `Retry-After`, never a 500, and `/readyz` say not ready; once it answers again, so does the
 * service. PostgreSQL behind a TCP proxy that cuts every connection (refused, reset) or drops
 * them silently (the pool's connection timeout), and PGlite closed under a running node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL } from '@taskflow/core/test-support';
import { startTestService, type TestService } from './support/index.ts';
import { startTcpProxy, type TcpProxy } from './support/tcpProxy.ts';

interface Call {
  method: string;
  path: string;
  body?: unknown;
}

/** One request to every route that reads or writes the database, with input valid enough to reach it. */
function everyRoute(ids: { task: string; worker: string; schedule: string; key: string; rule: string }): Call[] {
  const { task, worker, schedule, key, rule } = ids;
  return [
    { method: 'POST', path: '/api/v1/tasks', body: { type: 't', queue: 'down' } },
    { method: 'POST', path: '/api/v1/tasks/batch', body: { tasks: [{ type: 't', queue: 'down' }] } },
    { method: 'GET', path: '/api/v1/tasks' },
    { method: 'GET', path: `/api/v1/tasks/${task}` },
    { method: 'PATCH', path: `/api/v1/tasks/${task}`, body: { priority: 3 } },
    { method: 'POST', path: `/api/v1/tasks/${task}/cancel` },
    { method: 'POST', path: `/api/v1/tasks/${task}/retry` },
    { method: 'GET', path: '/api/v1/dlq' },
    { method: 'POST', path: '/api/v1/dlq/requeue', body: { ids: [task] } },
    { method: 'POST', path: `/api/v1/dlq/${task}/requeue` },
    { method: 'DELETE', path: '/api/v1/dlq?queue=down' },
    { method: 'GET', path: '/api/v1/queues' },
    { method: 'GET', path: '/api/v1/queues/down' },
    { method: 'POST', path: '/api/v1/queues/down/pause' },
    { method: 'POST', path: '/api/v1/queues/down/resume' },
    { method: 'POST', path: '/api/v1/workers', body: { name: 'w', queues: ['down'] } },
    { method: 'GET', path: '/api/v1/workers' },
    { method: 'GET', path: `/api/v1/workers/${worker}` },
    { method: 'POST', path: `/api/v1/workers/${worker}/heartbeat`, body: { running: [] } },
    { method: 'POST', path: `/api/v1/workers/${worker}/claim`, body: { max: 1 } },
    { method: 'POST', path: `/api/v1/workers/${worker}/results`, body: { results: [{ id: task, attempt: 1, status: 'succeeded' }] } },
    { method: 'POST', path: `/api/v1/workers/${worker}/tasks/${task}/result`, body: { attempt: 1, status: 'succeeded' } },
    { method: 'DELETE', path: `/api/v1/workers/${worker}` },
    { method: 'POST', path: '/api/v1/schedules', body: { name: 'down', cron: '* * * * *', template: { type: 't', queue: 'down' } } },
    { method: 'GET', path: '/api/v1/schedules' },
    { method: 'GET', path: `/api/v1/schedules/${schedule}` },
    { method: 'PATCH', path: `/api/v1/schedules/${schedule}`, body: { misfirePolicy: 'skip' } },
    { method: 'POST', path: `/api/v1/schedules/${schedule}/pause` },
    { method: 'POST', path: `/api/v1/schedules/${schedule}/resume` },
    { method: 'GET', path: `/api/v1/schedules/${schedule}/preview` },
    { method: 'GET', path: `/api/v1/schedules/${schedule}/fires` },
    { method: 'DELETE', path: `/api/v1/schedules/${schedule}` },
    { method: 'POST', path: '/api/v1/api-keys', body: { name: 'down', scopes: ['producer'] } },
    { method: 'GET', path: '/api/v1/api-keys' },
    { method: 'DELETE', path: `/api/v1/api-keys/${key}` },
    { method: 'POST', path: '/api/v1/alerts/rules', body: { name: 'down', kind: 'queue_depth', threshold: 1 } },
    { method: 'GET', path: '/api/v1/alerts/rules' },
    { method: 'GET', path: `/api/v1/alerts/rules/${rule}` },
    { method: 'PATCH', path: `/api/v1/alerts/rules/${rule}`, body: { threshold: 2 } },
    { method: 'POST', path: `/api/v1/alerts/rules/${rule}/silence`, body: { until: '2999-01-01T00:00:00Z' } },
    { method: 'DELETE', path: `/api/v1/alerts/rules/${rule}/silence` },
    { method: 'DELETE', path: `/api/v1/alerts/rules/${rule}` },
    { method: 'GET', path: '/api/v1/alerts/history' },
    { method: 'GET', path: '/api/v1/alerts/firing' },
  ];
}

async function send(tf: TestService, call: Call) {
  const res = await fetch(tf.url + call.path, {
    method: call.method,
    headers: { authorization: `Bearer ${tf.adminKey}`, ...(call.body ? { 'content-type': 'application/json' } : {}) },
    body: call.body ? JSON.stringify(call.body) : undefined,
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { code?: string; status?: string } };
}

/** The ids the routes need, made while the database answers. */
async function fixtures(tf: TestService) {
  const task = (await tf.admin.enqueue({ type: 't', queue: 'down' })).id;
  const worker = (await tf.admin.registerWorker({ name: 'w', queues: ['down'] })).id;
  const schedule = (await tf.admin.createSchedule({ name: `up-${Math.random()}`, cron: '0 0 * * *', template: { type: 't', queue: 'down' } })).id;
  const key = (await tf.admin.createApiKey({ name: 'up', scopes: ['producer'] })).key.id;
  const rule = (await tf.admin.alerts.createRule({ name: `up-${Math.random()}`, kind: 'queue_depth', threshold: 1 })).id;
  // Claim once: the worker's queues are then cached by the node, so the claim reaches the database.
  await send(tf, { method: 'POST', path: `/api/v1/workers/${worker}/claim`, body: { max: 0 } });
  return { task, worker, schedule, key, rule };
}

/** Every answer of `calls` is a 503 database_unavailable with Retry-After (listed as `METHOD path status code retry-after`). */
async function expectAllUnavailable(tf: TestService, calls: Call[]) {
  const answers = [];
  for (const call of calls) {
    const a = await send(tf, call);
    answers.push(`${call.method} ${call.path} ${a.status} ${a.body.code} ${a.retryAfter !== null && /^[12]$/.test(a.retryAfter)}`);
  }
  expect(answers).toEqual(calls.map((c) => `${c.method} ${c.path} 503 database_unavailable true`));
  const ready = await send(tf, { method: 'GET', path: '/readyz' });
  expect(ready).toMatchObject({ status: 503, body: { status: 'fail' } });
  expect(ready.retryAfter).toMatch(/^[12]$/);
}

async function waitReady(tf: TestService) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await send(tf, { method: 'GET', path: '/readyz' });
    if (r.status === 200) return;
    if (Date.now() > deadline) throw new Error(`not ready again: ${JSON.stringify(r)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('PostgreSQL unreachable (behind a TCP proxy)', () => {
  let proxy: TcpProxy;
  let tf: TestService;
  beforeAll(async () => {
    proxy = await startTcpProxy(TEST_DATABASE_URL);
    tf = await startTestService('postgres', { databaseUrl: proxy.url, connectionTimeoutMs: 300 });
  });
  afterAll(async () => {
    await proxy?.restore();
    await tf?.stop();
    await proxy?.close();
  });

  it('answers 503 with Retry-After on every route while its connections are cut and refused, and serves again after', async () => {
    const calls = everyRoute(await fixtures(tf));
    await proxy.cut();
    await expectAllUnavailable(tf, calls);
    await proxy.restore();
    await waitReady(tf);
    expect((await send(tf, { method: 'GET', path: '/api/v1/queues' })).status).toBe(200);
  });

  it('answers 503 when no connection comes within the connection timeout (packets dropped)', async () => {
    const calls = everyRoute(await fixtures(tf)).slice(0, 4);
    proxy.blackHole();
    await expectAllUnavailable(tf, calls);
    await proxy.restore();
    await waitReady(tf);
  });
});

describe('PGlite closed under a running node', () => {
  let tf: TestService;
  beforeAll(async () => {
    tf = await startTestService('pglite');
  });
  afterAll(async () => {
    await tf?.stop();
  });

  it('answers 503 with Retry-After, not 500', async () => {
    const calls = everyRoute(await fixtures(tf));
    await tf.service.db.close();
    await expectAllUnavailable(tf, calls);
  });
});
