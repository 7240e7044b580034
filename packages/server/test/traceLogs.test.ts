/**
 * Trace ids in the logs, with tracing on (a real service on PostgreSQL, its spans to an
 * in-memory exporter, its JSON lines captured): a request's `request completed` line names the
 * span the server recorded for it (`traceId`, `spanId`), else the caller's `traceparent`
 * header, and the trace of the one task it submitted or claimed (`taskTraceId`). With tracing
 * off no line has them (requestLogs.test.ts).
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { TaskflowClient } from '@taskflow/sdk';
import { createLogger } from '../src/logging.ts';
import { startTestService, type TestService } from './support/service.ts';

const TASK_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const TASK_SPAN = '00f067aa0ba902b7';
const CALLER_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = 'b7ad6b7169203331';

type Line = Record<string, unknown>;

describe('trace ids in the logs (tracing on)', () => {
  let svc: TestService;
  const lines: Line[] = [];
  const spans = new InMemorySpanExporter();
  let client: TaskflowClient;
  const completed = (reqId: string) => lines.find((l) => l.reqId === reqId && l.msg === 'request completed');

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Line);
        done();
      },
    });
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    svc = await startTestService('postgres', {}, { logger: createLogger('debug', sink), tracer: provider.getTracer('test') });
    const { secret } = await svc.admin.createApiKey({ name: 'trace logs', scopes: ['producer', 'worker'] });
    client = new TaskflowClient({ url: svc.url, apiKey: secret });
  });
  afterAll(() => svc?.stop());

  const call = (path: string, reqId: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
    fetch(`${svc.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${svc.adminKey}`, 'content-type': 'application/json', 'x-request-id': reqId, ...init.headers },
    });

  it("names the send span and the task's trace on a submission, and the receive span on its claim", async () => {
    const res = await call('/api/v1/tasks', 'tl-send', {
      method: 'POST', body: JSON.stringify({ queue: 'tl', type: 'job', traceparent: `00-${TASK_TRACE}-${TASK_SPAN}-01` }),
    });
    expect(res.status).toBe(201);
    const send = spans.getFinishedSpans().find((s) => s.name === 'send tl')!;
    expect(send.spanContext().traceId).toBe(TASK_TRACE); // parented by the task's context
    expect(completed('tl-send')).toMatchObject({
      route: '/api/v1/tasks', statusCode: 201, traceId: TASK_TRACE, spanId: send.spanContext().spanId, taskTraceId: TASK_TRACE,
    });

    const worker = await client.registerWorker({ name: 'tl worker', queues: ['tl'] });
    const claimed = await call(`/api/v1/workers/${worker.id}/claim`, 'tl-claim', { method: 'POST', body: JSON.stringify({ max: 1 }) });
    expect(((await claimed.json()) as { tasks: unknown[] }).tasks).toHaveLength(1);
    const receive = spans.getFinishedSpans().find((s) => s.name === 'receive tl')!;
    expect(completed('tl-claim')).toMatchObject({
      worker_id: worker.id, traceId: receive.spanContext().traceId, spanId: receive.spanContext().spanId, taskTraceId: TASK_TRACE,
    });
  });

  it("names the caller's span from its traceparent header where the server records none", async () => {
    const res = await call('/api/v1/queues', 'tl-get', { headers: { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` } });
    expect(res.status).toBe(200);
    const line = completed('tl-get')!;
    expect(line).toMatchObject({ traceId: CALLER_TRACE, spanId: CALLER_SPAN });
    expect(line).not.toHaveProperty('taskTraceId');
  });

  it('names no trace for a request that has none', async () => {
    await call('/api/v1/queues', 'tl-none', { headers: { traceparent: 'not-a-traceparent' } });
    const line = completed('tl-none')!;
    expect(line).toMatchObject({ route: '/api/v1/queues', statusCode: 200 });
    expect(line).not.toHaveProperty('traceId');
    expect(line).not.toHaveProperty('spanId');
  });
});
