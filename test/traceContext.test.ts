/**
 * The W3C trace context over the protocol as a worker in another language speaks it (plain
 * fetch, no SDK, as examples/python/worker.py does): submitted with a task, handed back in
 * the claim answer, and the worker's trace id reported with the result and recorded on the
 * attempt (docs/protocol.md, "Trace context"). Bad trace input is a 400 naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '@taskflow/server/test-support';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const TS = 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE';
const WORKER_TRACE = '0af7651916cd43dd8448eb211c80319c';

describe('trace context over raw HTTP', () => {
  let tf: TestService;
  let call: (method: string, path: string, body?: unknown) => Promise<{ status: number; json: any }>;

  beforeAll(async () => {
    tf = await startTestService('postgres');
    call = async (method, path, body) => {
      const res = await fetch(`${tf.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${tf.adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, json: await res.json() };
    };
  });
  afterAll(() => tf.stop());

  it('goes from the submission to the claim answer, and the worker\'s trace id onto the attempt', async () => {
    const traced = await call('POST', '/api/v1/tasks', { type: 't', queue: 'raw', traceparent: TP, tracestate: TS });
    expect(traced.status).toBe(201);
    expect(traced.json).toMatchObject({ traceparent: TP, tracestate: TS });
    const batch = await call('POST', '/api/v1/tasks/batch', { tasks: [{ type: 't', queue: 'raw' }, { type: 't', queue: 'raw', traceparent: TP }] });
    expect(batch.status).toBe(201);

    const reg = await call('POST', '/api/v1/workers', { name: 'raw', queues: ['raw'], concurrency: 3 });
    const claim = await call('POST', `/api/v1/workers/${reg.json.id}/claim`, { max: 3 });
    expect(claim.status).toBe(200);
    const tasks: any[] = claim.json.tasks;
    expect(tasks.map((t) => [t.traceparent, t.tracestate])).toEqual([[TP, TS], [undefined, undefined], [TP, undefined]]);
    // A task without a trace context has no such fields at all.
    expect(Object.keys(tasks[1])).not.toContain('traceparent');

    const [first, second, third] = tasks;
    const settled = await call('POST', `/api/v1/workers/${reg.json.id}/results`, {
      results: [
        { id: first.id, attempt: 1, status: 'succeeded', traceId: WORKER_TRACE },
        { id: third.id, attempt: 1, status: 'failed', error: { message: 'boom' }, traceId: WORKER_TRACE },
      ],
      succeeded: `${second.id}:1`,
    });
    expect(settled.json.results.map((r: any) => r.status)).toEqual(['accepted', 'accepted']);
    const one = await call('GET', `/api/v1/tasks/${first.id}`);
    expect(one.json.attempts.map((a: any) => [a.outcome, a.traceId])).toEqual([['succeeded', WORKER_TRACE]]);
    const failed = await call('GET', `/api/v1/tasks/${third.id}`);
    expect(failed.json.attempts[0]).toMatchObject({ outcome: 'failed', traceId: WORKER_TRACE });
    const plain = await call('GET', `/api/v1/tasks/${second.id}`);
    expect(plain.json.attempts[0]).toMatchObject({ outcome: 'succeeded', traceId: null });
    expect(plain.json).toMatchObject({ traceparent: null, tracestate: null });
  });

  it('records a trace id sent with a compact success', async () => {
    const { json: task } = await call('POST', '/api/v1/tasks', { type: 't', queue: 'compact' });
    const reg = await call('POST', '/api/v1/workers', { name: 'raw', queues: ['compact'] });
    await call('POST', `/api/v1/workers/${reg.json.id}/claim`, {});
    const out = await call('POST', `/api/v1/workers/${reg.json.id}/results`, { succeeded: `${task.id}:1:${WORKER_TRACE}` });
    expect(out.json.succeeded).toEqual({ accepted: 1, duplicate: [], stale: [] });
    expect((await call('GET', `/api/v1/tasks/${task.id}`)).json.attempts[0]).toMatchObject({ outcome: 'succeeded', traceId: WORKER_TRACE });
    const bad = await call('POST', `/api/v1/workers/${reg.json.id}/results`, { succeeded: `${task.id}:1:${WORKER_TRACE.toUpperCase()}` });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('/body/succeeded');
  });

  it('refuses a trace context that is not W3C\'s, naming the field, and writes nothing', async () => {
    const before = (await call('GET', '/api/v1/tasks?queue=badtrace')).json.items.length;
    const cases: [unknown, string][] = [
      [{ type: 't', queue: 'badtrace', traceparent: 'nope' }, '/body/traceparent'],
      [{ type: 't', queue: 'badtrace', traceparent: TP.toUpperCase() }, '/body/traceparent'],
      [{ type: 't', queue: 'badtrace', traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` }, '/body/traceparent'],
      [{ type: 't', queue: 'badtrace', traceparent: `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01` }, '/body/traceparent'],
      [{ type: 't', queue: 'badtrace', traceparent: `ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01` }, '/body/traceparent'],
      [{ type: 't', queue: 'badtrace', tracestate: TS }, '/body/tracestate'],
      [{ type: 't', queue: 'badtrace', traceparent: TP, tracestate: 'x'.repeat(513) }, '/body/tracestate'],
    ];
    for (const [body, field] of cases) {
      const res = await call('POST', '/api/v1/tasks', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(res.json), JSON.stringify(body)).toContain(field);
    }
    const inBatch = await call('POST', '/api/v1/tasks/batch', { tasks: [{ type: 't', queue: 'badtrace' }, { type: 't', queue: 'badtrace', tracestate: TS }] });
    expect(inBatch.status).toBe(400);
    expect(JSON.stringify(inBatch.json)).toContain('/body/tasks/1/tracestate');
    expect((await call('GET', '/api/v1/tasks?queue=badtrace')).json.items.length).toBe(before);
  });

  it('refuses a trace id that is not 32 lowercase hex digits, or one sent with a release', async () => {
    await call('POST', '/api/v1/tasks', { type: 't', queue: 'badid' });
    const reg = await call('POST', '/api/v1/workers', { name: 'raw', queues: ['badid'] });
    const [task] = (await call('POST', `/api/v1/workers/${reg.json.id}/claim`, {})).json.tasks;
    const bad = await call('POST', `/api/v1/workers/${reg.json.id}/results`, { results: [{ id: task.id, attempt: 1, status: 'succeeded', traceId: 'XYZ' }] });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('/body/results/0/traceId');
    const released = await call('POST', `/api/v1/workers/${reg.json.id}/results`, { results: [{ id: task.id, attempt: 1, status: 'released', traceId: WORKER_TRACE }] });
    expect(released.status).toBe(400);
    expect(JSON.stringify(released.json)).toContain('/body/results/0/traceId');
    // Nothing was settled: the task is still running.
    expect((await call('GET', `/api/v1/tasks/${task.id}`)).json.state).toBe('running');
  });
});
