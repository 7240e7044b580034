/**
 * OpenTelemetry for the SDK, through `@opentelemetry/api` only: without an SDK registered by
 * the application every call here is the API's no-op (no span is recorded, no context is
 * injected, the worker reports no trace id). Names and attributes follow the OpenTelemetry
 * messaging conventions (docs/operations.md, "Tracing"):
 * - the producer's `send <queue>` span (PRODUCER) around a submission, whose context goes into
 *   each task that has none (`traceparent`, `tracestate`: W3C Trace Context);
 * - the worker's `process <queue>` span (CONSUMER) around each handler, linked to the task's
 *   context, or also parented by it (WorkerTracingOptions.processParent).
 */
import {
  context, createTraceState, isSpanContextValid, SpanKind, SpanStatusCode, trace,
  type Attributes, type Context, type Link, type Span, type SpanContext,
} from '@opentelemetry/api';
import type { ClaimedTask, TaskInput } from '@taskflow/contracts';

/** How the worker traces its tasks. */
export interface WorkerTracingOptions {
  /**
   * What the `process` span of a task with a trace context hangs from:
   * - `link` (the messaging conventions' default): the span starts in the worker's own context
   *   (a trace of its own, usually) and links to the producer's span;
   * - `producer`: the producer's span is its parent (one trace from producer to worker), and
   *   the link is kept.
   * @defaultValue `link`
   */
  processParent?: 'link' | 'producer';
}

/**
 * The SDK's tracer, asked for at each use: a tracer kept from an earlier call would keep the
 * SDK registered then, after the application has replaced or removed it (trace.disable()).
 */
const tracer = () => trace.getTracer('@taskflow/sdk');

const SYSTEM = 'taskflow';

/** The W3C traceparent of a span context (version 00). */
export function traceparentOf(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** A task's trace context as a remote span context, or undefined when it has none (or a bad one). */
export function spanContextOf(traceparent: string | undefined, tracestate: string | undefined): SpanContext | undefined {
  if (!traceparent) return undefined;
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent);
  if (!m) return undefined;
  const sc: SpanContext = {
    traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true,
    ...(tracestate ? { traceState: createTraceState(tracestate) } : {}),
  };
  return isSpanContextValid(sc) ? sc : undefined;
}

/** The service's default queue, which a task without `queue` goes to. */
const DEFAULT_QUEUE = 'default';

/** A producer's span around the submission of one task. */
export function startSendOneSpan(task: TaskInput): Span {
  return sendSpan(task.queue ?? DEFAULT_QUEUE, 1, task.type);
}

/** A producer's span around the submission of a batch (its queue named when it has only one). */
export function startSendSpan(tasks: readonly TaskInput[]): Span {
  const queue = tasks[0]?.queue ?? DEFAULT_QUEUE;
  const one = tasks.every((t) => (t.queue ?? DEFAULT_QUEUE) === queue);
  return sendSpan(one ? queue : undefined, tasks.length, tasks.length === 1 ? tasks[0]!.type : undefined);
}

function sendSpan(queue: string | undefined, count: number, type: string | undefined): Span {
  const attributes: Attributes = {
    'messaging.system': SYSTEM,
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'send',
  };
  if (queue !== undefined) attributes['messaging.destination.name'] = queue;
  if (count !== 1) attributes['messaging.batch.message_count'] = count;
  if (type !== undefined) attributes['taskflow.task.type'] = type;
  return tracer().startSpan(queue === undefined ? 'send' : `send ${queue}`, { kind: SpanKind.PRODUCER, attributes });
}

/**
 * The tasks with the span's context in each that carries none (a context given by the caller
 * is never changed); the same array when the span is not recorded by an SDK.
 */
export function withTraceContext<T extends TaskInput>(tasks: T[], span: Span): T[] {
  if (!isSpanContextValid(span.spanContext())) return tasks;
  return tasks.map((t) => withTraceContextOne(t, span));
}

/** withTraceContext of one task. */
export function withTraceContextOne<T extends TaskInput>(task: T, span: Span): T {
  if (task.traceparent !== undefined) return task;
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return task;
  const tracestate = sc.traceState?.serialize() || undefined;
  return { ...task, traceparent: traceparentOf(sc), ...(tracestate ? { tracestate } : {}) };
}

/** Runs `fn` with `span` the active span (so that the HTTP call's own spans nest under it). */
export function inSpan<R>(span: Span, fn: () => Promise<R>): Promise<R> {
  return span.isRecording() ? context.with(trace.setSpan(context.active(), span), fn) : fn();
}

/** Ends a span with the outcome of its operation (`err` undefined: success). */
export function endSpan(span: Span, err?: unknown, messageId?: string): void {
  if (!span.isRecording()) return span.end();
  if (messageId !== undefined) span.setAttribute('messaging.message.id', messageId);
  if (err !== undefined) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    span.setAttribute('error.type', errorType(err));
  }
  span.end();
}

/** A low-cardinality name of an error: its class (`UnrecoverableError`, `TaskflowApiError`), else `_OTHER`. */
function errorType(err: unknown): string {
  return err instanceof Error && err.constructor?.name ? err.constructor.name : '_OTHER';
}

/** The worker's span for one attempt of `task`, and the context its handler runs in. */
export function startProcessSpan(task: ClaimedTask, workerId: string | undefined, parent: 'link' | 'producer'): { span: Span; ctx: Context } {
  const creation = spanContextOf(task.traceparent, task.tracestate);
  const links: Link[] | undefined = creation ? [{ context: creation }] : undefined;
  const active = context.active();
  const base = parent === 'producer' && creation ? trace.setSpanContext(active, creation) : active;
  const attributes: Attributes = {
    'messaging.system': SYSTEM,
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
    'messaging.destination.name': task.queue,
    'messaging.message.id': task.id,
    'taskflow.task.type': task.type,
    'taskflow.task.attempt': task.attempt,
  };
  if (workerId) attributes['messaging.client.id'] = workerId;
  const span = tracer().startSpan(`process ${task.queue}`, { kind: SpanKind.CONSUMER, links, attributes }, base);
  // Not recorded (no SDK) and not parented: the handler's context stays the worker's own.
  return { span, ctx: span.isRecording() || base !== active ? trace.setSpan(base, span) : active };
}

/** The trace id to report with the attempt's result: the span's, when an SDK records it. */
export function traceIdOf(span: Span): string | undefined {
  if (!span.isRecording()) return undefined;
  const sc = span.spanContext();
  return isSpanContextValid(sc) ? sc.traceId : undefined;
}
