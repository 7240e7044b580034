/**
 * What tracing costs a worker per task in CPU, apart from the service: the SDK worker's per-task
 * tracing path (packages/sdk/src/tracing.ts: the `process` span, the handler run in its context,
 * the trace id for the report) against the OpenTelemetry SDK's own floor (`startSpan(...).end()`
 * with nothing of Taskflow's), in this one process, with the bench's SDK setup
 * (lib/tracing-sdk.ts: an SDK registered, no exporter, every span sampled). No network, no
 * database: CPU µs per task (garbage collection included) over a loop that awaits a no-op async
 * handler per task, medians of the rounds, the rows alternating within each round.
 *
 *   npm run span-cost -- [--n 200000] [--rounds 5]
 *
 * The rows (their extra over `no SDK` is what tracing adds to a task):
 * - `no SDK, Taskflow per task`: the worker's path with the API's no-ops (the default);
 * - `bare SDK span`: `startSpan(name).end()` around the handler, no options;
 * - `SDK span, same options`: with the `process` span's kind, eight attributes and link;
 * - `context.with`: the handler run in a context holding a span, nothing else;
 * - `Taskflow per task`: what the worker does per task (startProcessSpan, context.with,
 *   traceIdOf, endSpan), on tasks that carry their producer's traceparent;
 * - `Taskflow per task, 1% sampled`: the same with the SDK's `parentbased_traceidratio` sampler
 *   at 0.01 (OTEL_TRACES_SAMPLER_ARG=0.01); the tasks' contexts unsampled (flags 00).
 */
import { parseArgs } from 'node:util';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import type { ClaimedTask } from '@taskflow/contracts';
import { endSpan, startProcessSpan, traceIdOf } from '../packages/sdk/src/tracing.ts';
import { registerTracing, unregisterTracing } from './lib/tracing-sdk.ts';
import { median } from './lib/rounds.ts';
import { table } from './lib/stats.ts';

const { values: args } = parseArgs({ options: { n: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '5' } } });
const N = Number(args.n);
const ROUNDS = Number(args.rounds);
if (!Number.isInteger(N) || N <= 0 || !Number.isInteger(ROUNDS) || ROUNDS <= 0) throw new Error('--n and --rounds: whole numbers above 0');

const handler = async (payload: unknown): Promise<unknown> => payload;
/** Claimed tasks as the worker gets them: one producer's batch, one traceparent. */
const claimed = (flags: string): ClaimedTask[] => Array.from({ length: 1000 }, (_, i) => ({
  id: String(1_000_000 + i), type: 'noop', queue: 'bench', payload: { i }, payloadBase64: null, contentType: null,
  attempt: 1, maxAttempts: 3, timeoutMs: 30_000, createdAt: '2026-01-01T00:00:00.000Z',
  traceparent: `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-${flags}`,
} as unknown as ClaimedTask));
const sampled = claimed('01');
const unsampled = claimed('00');

/** The worker's per-task tracing path (worker.ts, runTask), around the handler. */
async function taskflowLoop(n: number, tasks: ClaimedTask[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const task = tasks[i % 1000]!;
    const t = startProcessSpan(task, 'w1', 'link');
    await (t.ctx === context.active() ? handler(task.payload) : context.with(t.ctx, handler, undefined, task.payload));
    traceIdOf(t.span);
    endSpan(t.span);
  }
}

type Setup = 'none' | 'sdk' | 'sdk 1%';
function enter(setup: Setup): void {
  unregisterTracing(); // a global is registered once: remove the last row's first
  if (setup === 'none') return;
  if (setup === 'sdk') return registerTracing();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.01) }) }));
}

const loops: [string, Setup, (n: number) => Promise<void>][] = [
  ['no SDK, the loop alone', 'none', async (n) => {
    for (let i = 0; i < n; i++) await handler(sampled[i % 1000]!.payload);
  }],
  ['no SDK, Taskflow per task', 'none', (n) => taskflowLoop(n, sampled)],
  ['bare SDK span', 'sdk', async (n) => {
    const tracer = trace.getTracer('span-cost');
    for (let i = 0; i < n; i++) {
      const span = tracer.startSpan('process bench');
      await handler(sampled[i % 1000]!.payload);
      span.end();
    }
  }],
  ['SDK span, same options', 'sdk', async (n) => {
    const tracer = trace.getTracer('span-cost');
    const link = { context: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true } };
    for (let i = 0; i < n; i++) {
      const task = sampled[i % 1000]!;
      const span = tracer.startSpan('process bench', {
        kind: SpanKind.CONSUMER, links: [link], attributes: {
          'messaging.system': 'taskflow', 'messaging.operation.type': 'process', 'messaging.operation.name': 'process',
          'messaging.destination.name': task.queue, 'messaging.message.id': task.id, 'taskflow.task.type': task.type,
          'taskflow.task.attempt': task.attempt, 'messaging.client.id': 'w1',
        },
      });
      await handler(task.payload);
      span.end();
    }
  }],
  ['context.with', 'sdk', async (n) => {
    const ctx = trace.setSpan(context.active(), trace.getTracer('span-cost').startSpan('held'));
    for (let i = 0; i < n; i++) await context.with(ctx, handler, undefined, sampled[i % 1000]!.payload);
  }],
  ['Taskflow per task', 'sdk', (n) => taskflowLoop(n, sampled)],
  ['Taskflow per task, 1% sampled', 'sdk 1%', (n) => taskflowLoop(n, unsampled)],
];

const results = new Map<string, number[]>();
for (const [, setup, loop] of loops) {
  enter(setup);
  await loop(Math.min(N, 20_000)); // the JIT
}
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, setup, loop] of loops) {
    enter(setup);
    const c0 = process.cpuUsage();
    await loop(N);
    const c = process.cpuUsage(c0);
    results.set(name, [...(results.get(name) ?? []), (c.user + c.system) / N]);
  }
}
unregisterTracing();
const base = median(results.get(loops[0]![0])!)!;
console.log(`\nCPU µs per task, medians of ${ROUNDS} rounds of ${N}; "more": over the loop alone\n`);
console.log(table(['', 'µs per task', 'more'], [...results].map(([name, v]) => {
  const m = median(v)!;
  return [name, m.toFixed(2), name === loops[0]![0] ? '' : (m - base).toFixed(2)];
})));
