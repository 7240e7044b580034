/**
 * Logs: JSON lines with the request id (an inbound well-formed X-Request-Id kept and echoed,
 * any other replaced), the task, worker and queue a request is about; an API key and a task's
 * payload never appear, whatever the requests do; probes and scrapes are not logged.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskflowClient } from '@taskflow/sdk';
import { createLogger } from '../src/logging.ts';
import { startTestService, type TestService } from './support/service.ts';

const SECRET_PAYLOAD = 'hunter2-payload-7f3a9c';

describe('logs', () => {
  let svc: TestService;
  const lines: string[] = [];
  let apiKey: string;

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    svc = await startTestService('postgres', {}, { logger: createLogger('trace', sink) });
    ({ secret: apiKey } = await svc.admin.createApiKey({ name: 'logging test', scopes: ['producer', 'worker'] }));
    const client = new TaskflowClient({ url: svc.url, apiKey });
    const task = await client.enqueue({ queue: 'log-q', type: 'secret.job', payload: { password: SECRET_PAYLOAD, note: SECRET_PAYLOAD } });
    const worker = await client.registerWorker({ name: 'log worker', queues: ['log-q'] });
    const claimed = await client.claim(worker.id, { max: 1 });
    expect(JSON.stringify(claimed.tasks[0]?.payload)).toContain(SECRET_PAYLOAD);
    await client.reportResult(worker.id, task.id, { attempt: 1, status: 'failed', error: { message: 'failed' }, retryable: false });
    // Bad input carrying the secret, a wrong key, probes and a scrape.
    await fetch(`${svc.url}/api/v1/tasks`, {
      method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'x-request-id': 'req-bad-1' },
      body: JSON.stringify({ queue: 'log-q', type: 7, payload: { password: SECRET_PAYLOAD } }),
    });
    await fetch(`${svc.url}/api/v1/tasks/${task.id}`, { headers: { authorization: `Bearer ${apiKey}x`, 'x-request-id': 'req-401' } });
    // A caller's trace context, which a service without tracing does not read.
    await fetch(`${svc.url}/api/v1/tasks/${task.id}`, {
      headers: { authorization: `Bearer ${apiKey}`, 'x-request-id': 'req-traced', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
    for (const path of ['/healthz', '/readyz', '/metrics']) await fetch(`${svc.url}${path}`, { headers: { 'x-request-id': `probe-${path.slice(1)}` } });
  });
  afterAll(() => svc?.stop());

  it('leaves neither the API key nor the payload in any line', () => {
    expect(lines.length).toBeGreaterThan(5);
    const all = lines.join('\n');
    expect(all).not.toContain(apiKey);
    expect(all).not.toContain(apiKey.slice(3, 20));
    expect(all).not.toContain(svc.adminKey);
    expect(all).not.toContain(SECRET_PAYLOAD);
  });

  it('logs each request as JSON with its id, route, status and the ids it is about', () => {
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const bad = records.find((r) => r.reqId === 'req-bad-1' && r.msg === 'request completed');
    expect(bad).toMatchObject({ route: '/api/v1/tasks', statusCode: 400, service: 'taskflow-server' });
    expect(records.find((r) => r.reqId === 'req-401')).toMatchObject({ statusCode: 401, task_id: expect.any(String) });
    expect(records.some((r) => r.route === '/api/v1/workers/:id/claim' && typeof r.worker_id === 'string')).toBe(true);
  });

  it('censors secrets a caller puts in a line by mistake', () => {
    const before = lines.length;
    svc.service.logger.warn({ req: { headers: { authorization: `Bearer ${apiKey}` } }, apiKey, payload: SECRET_PAYLOAD }, 'careless');
    const line = lines.slice(before).join('\n');
    expect(line).toContain('[Redacted]');
    expect(line).not.toContain(apiKey);
    expect(line).not.toContain(SECRET_PAYLOAD);
  });

  it('names no trace with tracing off (traceLogs.test.ts has it on)', () => {
    expect(lines.find((l) => l.includes('"reqId":"req-traced"') && l.includes('request completed'))).toBeDefined();
    expect(lines.filter((l) => /"(traceId|spanId|taskTraceId)"/.test(l))).toEqual([]);
  });

  it('does not log probes and scrapes', () => {
    expect(lines.filter((l) => l.includes('probe-'))).toEqual([]);
  });

  it('keeps a well-formed inbound X-Request-Id and replaces another', async () => {
    const kept = await fetch(`${svc.url}/healthz`, { headers: { 'x-request-id': 'abc.DEF_123-x' } });
    expect(kept.headers.get('x-request-id')).toBe('abc.DEF_123-x');
    const replaced = await fetch(`${svc.url}/healthz`, { headers: { 'x-request-id': 'no spaces <allowed>' } });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const generated = await fetch(`${svc.url}/healthz`);
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
