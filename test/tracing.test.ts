/**
 * OpenTelemetry end to end, with the real parts: an SDK producer and an SDK worker in this
 * process (their spans through @opentelemetry/api, recorded by an SDK this test registers with
 * an in-memory exporter), and a service on PostgreSQL whose spans go to an exporter of its own.
 * A task carries its producer's context to the worker, whose `process` span links to the
 * producer's `send` span (or is its child, with `processParent: 'producer'`); the attempt
 * records the worker's trace id; the server records `send`, `receive` and `settle` spans; a
 * raw-HTTP worker finds the producer's context in the claim answer. Before an SDK is
 * registered, the SDK injects nothing and reports no trace id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { context, SpanKind, SpanStatusCode, trace, type SpanContext } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { TaskflowClient, UnrecoverableError, Worker, type TaskHandler, type TaskWithAttempts, type WorkerOptions } from '@taskflow/sdk';
import { startTestService, type TestService } from '@taskflow/server/test-support';

const quiet = { info() {}, warn() {}, error() {} };
const serverSpans = new InMemorySpanExporter();
const clientSpans = new InMemorySpanExporter();

/** Waits until `find` resolves to something, polling, with a deadline. */
async function eventually<T>(what: string, find: () => Promise<T | undefined> | T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const spansNamed = (exporter: InMemorySpanExporter, name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);
const spanNamed = (exporter: InMemorySpanExporter, name: string) => eventually(`span "${name}"`, () => spansNamed(exporter, name)[0]);
const linksTo = (s: ReadableSpan, sc: SpanContext) => s.links.some((l) => l.context.traceId === sc.traceId && l.context.spanId === sc.spanId);
const traceparentOf = (sc: SpanContext) => `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags}`;

describe('tracing from an SDK producer to an SDK worker', () => {
  let tf: TestService;
  let producer: TaskflowClient;
  const workers: Worker[] = [];
  let seq = 0;

  async function startWorker(queue: string, handler: TaskHandler, opts: Partial<WorkerOptions> = {}): Promise<Worker> {
    const w = new Worker({
      url: tf.url, apiKey: tf.adminKey, queues: [queue], handlers: { t: handler }, waitMs: 500, handleSignals: false, logger: quiet, ...opts,
    });
    workers.push(w);
    await w.start();
    return w;
  }
  /** The task once it is finished (succeeded or dead), with its attempts. */
  const finished = (id: string) =>
    eventually(`task ${id} finished`, async () => {
      const t = await producer.getTask(id);
      return t.state === 'succeeded' || t.state === 'dead' ? (t as TaskWithAttempts) : undefined;
    });

  beforeAll(async () => {
    const serverProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(serverSpans)] });
    tf = await startTestService('postgres', {}, { tracer: serverProvider.getTracer('test-server') });
    producer = await tf.clientWith(['producer', 'admin']);
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop(0)));
    await tf.stop();
    trace.disable();
    context.disable();
  });

  it('without an OpenTelemetry SDK, the SDK injects no context and reports no trace id', async () => {
    const queue = `plain${++seq}`;
    const task = await producer.enqueue({ type: 't', queue });
    expect(task.traceparent).toBeNull();
    await startWorker(queue, async () => 'ok');
    const done = await finished(task.id);
    expect(done.attempts.map((a) => [a.outcome, a.traceId])).toEqual([['succeeded', null]]);
    // The server traces on its own: its `send` span has no parent.
    const send = await spanNamed(serverSpans, `send ${queue}`);
    expect(send.parentSpanContext).toBeUndefined();
  });

  describe('with an SDK registered', () => {
    const app = () => trace.getTracer('the-app');
    beforeAll(() => {
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(clientSpans)] }));
    });

    it('carries the send span\'s context to the worker, whose process span links to it; the attempt records its trace id', async () => {
      const queue = `linked${++seq}`;
      let root: SpanContext | undefined;
      const task = await app().startActiveSpan('checkout', async (span) => {
        root = span.spanContext();
        try {
          return await producer.enqueue({ type: 't', queue });
        } finally {
          span.end();
        }
      });
      const send = await spanNamed(clientSpans, `send ${queue}`);
      expect(send.kind).toBe(SpanKind.PRODUCER);
      expect(send.parentSpanContext?.spanId).toBe(root!.spanId);
      expect(send.attributes).toMatchObject({
        'messaging.system': 'taskflow', 'messaging.operation.type': 'send', 'messaging.operation.name': 'send',
        'messaging.destination.name': queue, 'messaging.message.id': task.id, 'taskflow.task.type': 't',
      });
      expect(task.traceparent).toBe(traceparentOf(send.spanContext()));

      let active: SpanContext | undefined;
      const w = await startWorker(queue, async () => {
        active = trace.getActiveSpan()?.spanContext();
        return 'ok';
      });
      const done = await finished(task.id);
      const process = await spanNamed(clientSpans, `process ${queue}`);
      expect(process.kind).toBe(SpanKind.CONSUMER);
      expect(linksTo(process, send.spanContext())).toBe(true);
      // A link, not a parent: the worker's span starts a trace of its own.
      expect(process.parentSpanContext).toBeUndefined();
      expect(process.spanContext().traceId).not.toBe(send.spanContext().traceId);
      expect(active?.spanId).toBe(process.spanContext().spanId); // the handler runs inside it
      expect(process.attributes).toMatchObject({
        'messaging.system': 'taskflow', 'messaging.operation.type': 'process', 'messaging.operation.name': 'process',
        'messaging.destination.name': queue, 'messaging.message.id': task.id, 'messaging.client.id': w.workerId,
        'taskflow.task.type': 't', 'taskflow.task.attempt': 1,
      });
      expect(done.attempts.map((a) => [a.outcome, a.traceId])).toEqual([['succeeded', process.spanContext().traceId]]);

      // The server's spans: the submission a child of the producer's, the claim linked to it.
      const serverSend = await spanNamed(serverSpans, `send ${queue}`);
      expect(serverSend.kind).toBe(SpanKind.SERVER);
      expect(serverSend.spanContext().traceId).toBe(send.spanContext().traceId);
      expect(serverSend.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
      expect(serverSend.attributes).toMatchObject({ 'messaging.system': 'taskflow', 'messaging.destination.name': queue, 'messaging.message.id': task.id });
      const receive = await spanNamed(serverSpans, `receive ${queue}`);
      expect(linksTo(receive, send.spanContext())).toBe(true);
      expect(receive.attributes).toMatchObject({
        'messaging.operation.type': 'receive', 'messaging.message.id': task.id, 'messaging.client.id': w.workerId,
      });
      const settle = await spanNamed(serverSpans, `settle ${queue}`);
      expect(settle.attributes).toMatchObject({ 'messaging.operation.type': 'settle', 'messaging.message.id': task.id, 'taskflow.results.accepted': 1 });
      // Claims that returned nothing (the worker polls on, and its stop ends a poll) make no span.
      await w.stop(0);
      expect(spansNamed(serverSpans, `receive ${queue}`)).toHaveLength(1);
      // Span names are the operation and the queue: a task id only ever in messaging.message.id.
      for (const s of [...serverSpans.getFinishedSpans(), ...clientSpans.getFinishedSpans()]) {
        expect(s.name).toMatch(/^(checkout|(send|receive|settle|process)( [a-z]+[0-9]+)?)$/);
      }
    });

    it('makes the producer\'s span the parent of the process span with processParent: producer, keeping the link', async () => {
      const queue = `parented${++seq}`;
      const task = await producer.enqueue({ type: 't', queue });
      const send = await spanNamed(clientSpans, `send ${queue}`);
      await startWorker(queue, async () => 'ok', { tracing: { processParent: 'producer' } });
      const done = await finished(task.id);
      const process = await spanNamed(clientSpans, `process ${queue}`);
      expect(process.spanContext().traceId).toBe(send.spanContext().traceId);
      expect(process.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
      expect(linksTo(process, send.spanContext())).toBe(true);
      expect(done.attempts[0]!.traceId).toBe(send.spanContext().traceId);
    });

    it('gives each task of a batch the batch\'s send span, and each coalesced submit its own', async () => {
      const queue = `batch${++seq}`;
      const { ids } = await producer.enqueueManyIds([{ type: 't', queue }, { type: 't', queue }, { type: 't', queue }]);
      const send = await spanNamed(clientSpans, `send ${queue}`);
      expect(send.attributes['messaging.batch.message_count']).toBe(3);
      for (const id of ids) expect((await producer.getTask(id)).traceparent).toBe(traceparentOf(send.spanContext()));
      const serverSend = await spanNamed(serverSpans, `send ${queue}`);
      expect(serverSend.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
      expect(serverSend.attributes['messaging.batch.message_count']).toBe(3);
      expect(serverSend.attributes['messaging.message.id']).toBeUndefined();

      const single = `submit${++seq}`;
      const [a, b] = await Promise.all([producer.submit({ type: 't', queue: single }), producer.submit({ type: 't', queue: single })]);
      const sends = spansNamed(clientSpans, `send ${single}`);
      expect(sends).toHaveLength(2);
      const byTask = new Map(sends.map((s) => [s.attributes['messaging.message.id'], traceparentOf(s.spanContext())]));
      expect((await producer.getTask(a.task.id)).traceparent).toBe(byTask.get(a.task.id));
      expect((await producer.getTask(b.task.id)).traceparent).toBe(byTask.get(b.task.id));
      // A context the caller gives is kept as it is.
      const given = '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01';
      expect((await producer.enqueue({ type: 't', queue: single, traceparent: given })).traceparent).toBe(given);
    });

    it('links each task of a claim to its own context, however the contexts of its tasks repeat or differ', async () => {
      const queue = `mixed${++seq}`;
      const one = '00-11111111111111111111111111111111-1111111111111111-01';
      const two = '00-22222222222222222222222222222222-2222222222222222-01';
      const given = [
        { traceparent: one }, { traceparent: one }, { traceparent: two }, { traceparent: one, tracestate: 'k=v' },
        { traceparent: one }, { traceparent: two, tracestate: 'k=w' }, {},
      ];
      const { ids } = await producer.enqueueManyIds(given.map((g) => ({ type: 't', queue, ...g })));
      const send = await spanNamed(clientSpans, `send ${queue}`);
      await startWorker(queue, async () => 'ok', { maxBatch: 10 });
      for (const id of ids) await finished(id);
      const processes = await eventually('a process span per task', () => {
        const found = spansNamed(clientSpans, `process ${queue}`);
        return found.length === ids.length ? found : undefined;
      });
      const linkOf = (id: string) => {
        const links = processes.find((s) => s.attributes['messaging.message.id'] === id)!.links;
        expect(links).toHaveLength(1);
        const c = links[0]!.context;
        return [traceparentOf(c), c.traceState?.serialize() ?? null];
      };
      // The last task took the context of the producer's send span, like any task without one.
      expect(ids.map(linkOf)).toEqual([
        [one, null], [one, null], [two, null], [one, 'k=v'], [one, null], [two, 'k=w'], [traceparentOf(send.spanContext()), null],
      ]);
      const received = spansNamed(serverSpans, `receive ${queue}`).flatMap((s) => s.links.map((l) => traceparentOf(l.context)));
      expect(new Set(received)).toEqual(new Set([one, two, traceparentOf(send.spanContext())]));
    });

    it('marks the process span of a failed attempt as an error, and records its trace id on the attempt', async () => {
      const queue = `failing${++seq}`;
      const task = await producer.enqueue({ type: 't', queue });
      await startWorker(queue, async () => {
        throw new UnrecoverableError('nope');
      });
      const done = await finished(task.id);
      const process = await spanNamed(clientSpans, `process ${queue}`);
      expect(process.status.code).toBe(SpanStatusCode.ERROR);
      expect(process.attributes['error.type']).toBe('UnrecoverableError');
      expect(done.state).toBe('dead');
      expect(done.attempts.map((a) => [a.outcome, a.traceId])).toEqual([['failed', process.spanContext().traceId]]);
    });

    it('hands the producer\'s context to a worker that speaks raw HTTP', async () => {
      const queue = `raw${++seq}`;
      const task = await producer.enqueue({ type: 't', queue });
      const send = await spanNamed(clientSpans, `send ${queue}`);
      const post = async (path: string, body: unknown) => {
        const res = await fetch(`${tf.url}${path}`, {
          method: 'POST', headers: { authorization: `Bearer ${tf.adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
        });
        return res.json() as Promise<any>;
      };
      const reg = await post('/api/v1/workers', { name: 'raw', queues: [queue] });
      const claim = await post(`/api/v1/workers/${reg.id}/claim`, {});
      expect(claim.tasks).toHaveLength(1);
      expect(claim.tasks[0]).toMatchObject({ id: task.id, traceparent: traceparentOf(send.spanContext()) });
    });
  });
});
