/**
 * The server's spans, after the OpenTelemetry messaging conventions (`messaging.system` =
 * `taskflow`, the queue as `messaging.destination.name`, a task id only ever as
 * `messaging.message.id`): `send <queue>` for a submission, `receive <queue>` for a claim that
 * returned tasks (an empty poll makes none), `settle <queue>` for reported results. All of kind
 * SERVER. Each is recorded once its operation is over, from the times taken around it: the
 * routes call these only when tracing is configured (`ServerSpans` is undefined otherwise), so
 * a server without tracing does none of this work.
 */
import {
  context, isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace,
  type Attributes, type Context, type Link, type SpanContext, type Tracer,
} from '@opentelemetry/api';

/** At most this many links per span (one per task of a batch, each task's own context). */
const MAX_LINKS = 128;

/** The last trace context parsed and what it gave: a batch's tasks usually share one. */
let lastParsed: { traceparent: string; sc: SpanContext | undefined } | undefined;

/** A task's (or a request's) W3C trace context as a remote span context; undefined if absent or invalid. */
export function remoteContext(traceparent: string | undefined | null): SpanContext | undefined {
  if (!traceparent) return undefined;
  if (lastParsed?.traceparent === traceparent) return lastParsed.sc;
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent);
  const sc: SpanContext | undefined = m ? { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true } : undefined;
  // The same object serves every task that carries this context: nothing changes it.
  lastParsed = { traceparent, sc: sc && isSpanContextValid(sc) ? sc : undefined };
  return lastParsed.sc;
}

/** When the operation started, and where its span hangs. */
export interface Started {
  at: number;
  /** The request's `traceparent` header, if a valid one came (W3C propagation over HTTP). */
  header: SpanContext | undefined;
  /** The span recorded for the operation, once it is (for the request's log lines). */
  span?: SpanContext;
  /** The trace context of the one task the operation submitted or claimed, if it has one. */
  taskTraceparent?: string | null;
}

const STARTED: unique symbol = Symbol('taskflow.started');

/** What the spans read of a request: its headers; they leave the operation's `Started` on it. */
export interface TracedRequest {
  headers: Record<string, string | string[] | undefined>;
  [STARTED]?: Started;
}

/**
 * The trace fields of a request's log lines (docs/operations.md, "Logs"), read only when
 * tracing is on: `traceId` and `spanId` of the span the server recorded for the request's
 * operation, else of the caller's (its `traceparent` header); `taskTraceId`, the trace the
 * one task it submitted or claimed belongs to.
 */
export function traceFields(request: TracedRequest): { traceId?: string; spanId?: string; taskTraceId?: string } {
  const started = request[STARTED];
  const tp = request.headers.traceparent;
  const sc = started?.span ?? started?.header ?? remoteContext(typeof tp === 'string' ? tp : undefined);
  const task = remoteContext(started?.taskTraceparent);
  return { ...(sc ? { traceId: sc.traceId, spanId: sc.spanId } : {}), ...(task ? { taskTraceId: task.traceId } : {}) };
}

/** What a `send` span reads of a submitted task. */
export interface SubmittedTask {
  queue?: string;
  type: string;
  traceparent?: string;
}

/** What a span records about its operation. */
interface Recorded {
  name: string;
  queue: string | undefined;
  operation: 'send' | 'receive' | 'settle';
  /** The distinct trace contexts of the messages (at most MAX_LINKS), linked to. */
  links: readonly SpanContext[];
  /** The trace context every message carries, when they all carry the same one: the parent when the request gives none. */
  shared?: SpanContext;
  count: number;
  messageId?: string;
  workerId?: string;
  attributes?: Attributes;
  error?: unknown;
}

export class ServerSpans {
  readonly #tracer: Tracer;

  constructor(tracer: Tracer) {
    this.#tracer = tracer;
  }

  /**
   * Marks the start of an operation of `request`, its span parented by the request's
   * `traceparent` header unless `fromHeader` is false. The request keeps it (traceFields).
   */
  start(request: TracedRequest, fromHeader = true): Started {
    const tp = fromHeader ? request.headers.traceparent : undefined;
    const started: Started = { at: Date.now(), header: remoteContext(typeof tp === 'string' ? tp : undefined) };
    request[STARTED] = started;
    return started;
  }

  /** Runs a submission of `tasks` and records its `send` span; `ids` reads the task ids of its answer. */
  async traceSend<R>(request: TracedRequest, tasks: readonly SubmittedTask[], submit: () => Promise<R>, ids: (r: R) => string[]): Promise<R> {
    const started = this.start(request);
    let out: R;
    try {
      out = await submit();
    } catch (err) {
      this.send(started, tasks, undefined, err);
      throw err;
    }
    this.send(started, tasks, tasks.length === 1 ? ids(out) : undefined);
    return out;
  }

  /**
   * A submission: the parent is the request's traceparent header, else the trace context its
   * tasks share (the SDK's `send` span), else none. No links: each task's context reaches its
   * consumers through the task itself (the `receive` span and the worker's `process` span link
   * to it), and a link per task of every submitted batch was a measurable share of a traced
   * submission's cost (bench/README.md, "Tracing").
   */
  send(started: Started, tasks: readonly SubmittedTask[], ids: readonly string[] | undefined, error?: unknown): void {
    const queue = oneQueue(tasks, (t) => t.queue ?? 'default');
    if (tasks.length === 1) started.taskTraceparent = tasks[0]!.traceparent;
    this.#record(started, {
      name: queue === undefined ? 'send' : `send ${queue}`, queue, operation: 'send',
      links: [], shared: sharedContext(tasks), count: tasks.length,
      messageId: tasks.length === 1 ? ids?.[0] : undefined,
      attributes: tasks.length === 1 ? { 'taskflow.task.type': tasks[0]!.type } : undefined, error,
    });
  }

  /** A claim that returned tasks: linked to each task's trace context. */
  receive(started: Started, workerId: string, tasks: readonly { id: string; queue: string; traceparent: string | null }[]): void {
    if (tasks.length === 0) return;
    const queue = oneQueue(tasks, (t) => t.queue);
    if (tasks.length === 1) started.taskTraceparent = tasks[0]!.traceparent;
    this.#record(started, {
      name: queue === undefined ? 'receive' : `receive ${queue}`, queue, operation: 'receive',
      links: distinctContexts(tasks), count: tasks.length,
      messageId: tasks.length === 1 ? tasks[0]!.id : undefined, workerId,
    });
  }

  /** Results reported by a worker (`results`, their task ids), for tasks of `queue` when the worker serves one queue. */
  settle(started: Started, workerId: string, queue: string | undefined, results: readonly { id: string }[], accepted: number, error?: unknown): void {
    if (results.length === 0) return;
    this.#record(started, {
      name: queue === undefined ? 'settle' : `settle ${queue}`, queue, operation: 'settle', links: [], count: results.length,
      messageId: results.length === 1 ? results[0]!.id : undefined, workerId, attributes: { 'taskflow.results.accepted': accepted }, error,
    });
  }

  #record(started: Started, r: Recorded): void {
    const parent = started.header ?? r.shared;
    const links: Link[] = r.links.map((c) => ({ context: c }));
    const attributes: Attributes = {
      'messaging.system': 'taskflow',
      'messaging.operation.type': r.operation,
      'messaging.operation.name': r.operation,
      ...r.attributes,
    };
    if (r.queue !== undefined) attributes['messaging.destination.name'] = r.queue;
    if (r.count !== 1) attributes['messaging.batch.message_count'] = r.count;
    if (r.messageId !== undefined) attributes['messaging.message.id'] = r.messageId;
    if (r.workerId !== undefined) attributes['messaging.client.id'] = r.workerId;
    const ctx: Context = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : context.active();
    const span = this.#tracer.startSpan(r.name, { kind: SpanKind.SERVER, startTime: started.at, links, attributes }, ctx);
    if (r.error !== undefined) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: r.error instanceof Error ? r.error.message : String(r.error) });
      span.setAttribute('error.type', errorType(r.error));
    }
    span.end();
    // The request's lines name its send or receive span; a settle span only when it has none
    // (a claim settles its reported results before it receives).
    if (r.operation !== 'settle' || !started.span) started.span = span.spanContext();
  }
}

/**
 * The distinct trace contexts of claimed tasks, at most MAX_LINKS, told apart by their
 * traceparent: a claim of one producer's batch parses one and compares strings for the rest.
 */
function distinctContexts(tasks: readonly { traceparent: string | null }[]): SpanContext[] {
  const out: SpanContext[] = [];
  let seen: Set<string> | undefined;
  let last: string | null = null;
  for (const t of tasks) {
    const tp = t.traceparent;
    if (!tp || tp === last) continue;
    last = tp;
    if (seen?.has(tp)) continue;
    const sc = remoteContext(tp);
    if (!sc) continue;
    (seen ??= new Set()).add(tp);
    out.push(sc);
    if (out.length === MAX_LINKS) break;
  }
  return out;
}

/** The trace context every task of a submission carries, if they all carry the same one. */
function sharedContext(tasks: readonly SubmittedTask[]): SpanContext | undefined {
  const first = tasks[0]?.traceparent;
  if (first === undefined) return undefined;
  for (const t of tasks) if (t.traceparent !== first) return undefined;
  return remoteContext(first);
}

/** The queue every item names, if they all name the same one. */
function oneQueue<T>(items: readonly T[], queueOf: (item: T) => string): string | undefined {
  const first = items.length > 0 ? queueOf(items[0]!) : undefined;
  for (const item of items) if (queueOf(item) !== first) return undefined;
  return first;
}

/** A low-cardinality name of an error: its problem code or class, else `_OTHER`. */
function errorType(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && /^[a-z_]{1,40}$/.test(code)) return code;
  return err instanceof Error && err.constructor?.name ? err.constructor.name : '_OTHER';
}
