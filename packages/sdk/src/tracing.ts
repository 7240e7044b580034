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
  context, createTraceState, INVALID_SPAN_CONTEXT, INVALID_TRACEID, isSpanContextValid, ProxyTracerProvider, SpanKind,
  SpanStatusCode, trace, type Attributes, type Context, type Link, type Span, type SpanContext, type Tracer,
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

const TRACER_NAME = '@taskflow/sdk';
/** The provider the cached tracer came from (the global proxy's delegate), and that tracer. */
let tracerOf: { provider: unknown; tracer: Tracer; sdk: boolean } | undefined;

/**
 * The SDK's tracer, and whether an SDK stands behind it (`sdk` false: the API's no-op).
 * Looked up again whenever the global provider's delegate changes, so that an SDK registered,
 * replaced or removed (trace.disable()) after an earlier call is the one used; otherwise the
 * same tracer, without the provider's per-call lookup (a string key and a Map, per task).
 */
function sdkTracer(): { tracer: Tracer; sdk: boolean } {
  const global = trace.getTracerProvider();
  const provider = global instanceof ProxyTracerProvider ? global.getDelegate() : global;
  if (tracerOf?.provider !== provider) {
    const sdk = !(global instanceof ProxyTracerProvider) || global.getDelegateTracer(TRACER_NAME) !== undefined;
    tracerOf = { provider, tracer: global.getTracer(TRACER_NAME), sdk };
  }
  return tracerOf;
}

const tracer = (): Tracer => sdkTracer().tracer;

const SYSTEM = 'taskflow';

/** The W3C traceparent of a span context (version 00). */
export function traceparentOf(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** The last trace context parsed, and what it gave: the tasks of one batch share one. */
let lastParsed: { traceparent: string; tracestate: string | undefined; sc: SpanContext | undefined } | undefined;

/**
 * A task's trace context as a remote span context, or undefined when it has none (or a bad
 * one). The tasks of a claim usually carry the same context (one producer's batch): the last
 * one is kept, and the same SpanContext serves them all (nothing here or in the SDK changes it).
 */
export function spanContextOf(traceparent: string | undefined, tracestate: string | undefined): SpanContext | undefined {
  if (!traceparent) return undefined;
  const last = lastParsed;
  if (last !== undefined && last.traceparent === traceparent && last.tracestate === tracestate) return last.sc;
  const sc = parseSpanContext(traceparent, tracestate);
  lastParsed = { traceparent, tracestate, sc };
  return sc;
}

function parseSpanContext(traceparent: string, tracestate: string | undefined): SpanContext | undefined {
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
  const carried = carriedContext(span);
  if (carried === undefined) return tasks;
  return tasks.map((t) => (t.traceparent !== undefined ? t : { ...t, ...carried }));
}

/** withTraceContext of one task. */
export function withTraceContextOne<T extends TaskInput>(task: T, span: Span): T {
  if (task.traceparent !== undefined) return task;
  const carried = carriedContext(span);
  return carried === undefined ? task : { ...task, ...carried };
}

/** The fields that carry a span's context in a task; undefined for a span no SDK made. */
function carriedContext(span: Span): { traceparent: string; tracestate?: string } | undefined {
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return undefined;
  const tracestate = sc.traceState?.serialize() || undefined;
  return tracestate ? { traceparent: traceparentOf(sc), tracestate } : { traceparent: traceparentOf(sc) };
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

/** The span of a task when no SDK records spans: nothing to end, no trace id. */
const NOT_RECORDED: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** The one-link lists of the last context linked to (shared: the SDK copies a span's links). */
let lastLinks: { sc: SpanContext; links: Link[] } | undefined;

function linksTo(sc: SpanContext): Link[] {
  if (lastLinks?.sc !== sc) lastLinks = { sc, links: [{ context: sc }] };
  return lastLinks.links;
}

/**
 * The worker's span for one attempt of `task`, and the context its handler runs in (the
 * worker's own context, `active`, when there is nothing to add to it).
 */
export function startProcessSpan(task: ClaimedTask, workerId: string | undefined, parent: 'link' | 'producer'): { span: Span; ctx: Context } {
  const active = context.active();
  const { tracer, sdk } = sdkTracer();
  // No SDK and no producer's context to parent the handler's: the API's no-op, without making one.
  if (!sdk && (parent === 'link' || !task.traceparent)) return { span: NOT_RECORDED, ctx: active };
  const creation = spanContextOf(task.traceparent, task.tracestate);
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
  const span = tracer.startSpan(`process ${task.queue}`, { kind: SpanKind.CONSUMER, links: creation ? linksTo(creation) : undefined, attributes }, base);
  // Not recorded (no SDK) and not parented: the handler's context stays the worker's own.
  return { span, ctx: span.isRecording() || base !== active ? trace.setSpan(base, span) : active };
}

/** The trace id to report with the attempt's result: the span's, when an SDK records it. */
export function traceIdOf(span: Span): string | undefined {
  if (!span.isRecording()) return undefined;
  const traceId = span.spanContext().traceId;
  // The server takes 32 lowercase hex digits, not all zeros (docs/protocol.md).
  return traceId !== INVALID_TRACEID && /^[0-9a-f]{32}$/.test(traceId) ? traceId : undefined;
}
