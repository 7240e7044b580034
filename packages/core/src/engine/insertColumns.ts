/**
 * A batch of tasks as the insert statements take it (sql/tasks/insert.ts): one PostgreSQL
 * array literal per column, unpacked side by side in one `ROWS FROM`. A column no task of the
 * batch sets is sent as NULL, which the statement pads with NULLs at no cost, so a batch of
 * plain tasks sends three parameters (queue, type, payloads) and the statement fills in the
 * rest. The payloads travel as one JSON array rather than as an array literal of JSON texts.
 *
 * Why arrays and not one JSON array read by `json_to_recordset`: that builds a hash table of
 * each row's fields, and its JSON parse is a large part of PostgreSQL's work for an inserted
 * task; arrays unpacked side by side skip both. The payloads, JSON already, go as one JSON
 * array, spliced in without escaping. There is no join on the input, so the planner's guess
 * of 10 rows for `unnest` of a parameter (which rules arrays out for the settle statement)
 * changes nothing here.
 */
import type { EngineOptions } from './options.ts';
import type { TaskInput } from './types.ts';

/** A task input with the engine's defaults applied (withDefaults in enqueue.ts). */
export interface ResolvedInput extends Omit<TaskInput, 'contentType'> {
  queue: string;
  priority: number;
  maxAttempts: number;
  backoff: NonNullable<TaskInput['backoff']>;
  timeoutMs: number;
  tags: string[];
  contentType: string | null;
}

/**
 * One element of an array literal: always quoted, so that no text reads as NULL or splits,
 * with `"` and `\` escaped (by a scan, faster than a RegExp replace).
 */
function element(s: string): string {
  let out = '"';
  let from = 0;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c === 34 || c === 92) {
      out += `${s.slice(from, k)}\\`;
      from = k;
    }
  }
  return `${out}${s.slice(from)}"`;
}

/**
 * The payloads of a batch as one JSON array (`null` for a task whose payload is bytes), or null
 * when every payload is bytes. Each JSON payload is spliced in as it is, without the escaping
 * that array-literal elements would need over every payload.
 */
function payloads(items: readonly ResolvedInput[]): string | null {
  let out = '';
  let json = false;
  for (let k = 0; k < items.length; k++) {
    const i = items[k]!;
    let p = 'null';
    if (i.payloadBase64 === undefined) {
      p = i.payloadJson ?? JSON.stringify(i.payload ?? null);
      json = true;
    }
    out += k === 0 ? p : `,${p}`;
  }
  return json ? `[${out}]` : null;
}

/** An array literal of one column, or null when no item has a value there. */
function column(items: readonly ResolvedInput[], value: (i: ResolvedInput) => string | null): string | null {
  let k = 0;
  while (k < items.length && value(items[k]!) === null) k++;
  if (k === items.length) return null;
  const parts = new Array<string>(items.length).fill('NULL', 0, k);
  for (; k < items.length; k++) parts[k] = value(items[k]!) ?? 'NULL';
  return `{${parts.join(',')}}`;
}

/**
 * The insert statements' last three parameters ($15..$17, after the clock): the defaults a
 * lean row leaves out (see insertColumns).
 */
export function insertDefaults(o: EngineOptions): unknown[] {
  return [o.defaultMaxAttempts, JSON.stringify(o.defaultBackoff), o.defaultTimeoutMs];
}

/**
 * The trace context parameters of taskInsertMany ($18 traceparent, $19 tracestate): null as a
 * whole when no task of the batch carries one, which is the usual batch.
 */
export function traceColumns(items: readonly ResolvedInput[]): (string | null)[] {
  if (!items.some((i) => i.traceparent !== undefined)) return [null, null];
  return [
    column(items, (i) => (i.traceparent !== undefined ? element(i.traceparent) : null)),
    column(items, (i) => (i.tracestate !== undefined ? element(i.tracestate) : null)),
  ];
}

/**
 * The first thirteen parameters of taskInsertMany, in its order: queue, type, payloads (one
 * JSON array), payload_b64, content_type, priority, run_at, delay_ms, max_attempts, backoff (JSON
 * text), timeout_ms, tags (each an array literal), idempotency_key. A value the statement would
 * take anyway (priority 0, no tags, the engine's defaults) is left out as NULL.
 */
export function insertColumns(items: readonly ResolvedInput[], o: EngineOptions): (string | null)[] {
  // The queues and types of a batch are mostly one or two: quote each distinct one once.
  const quoted = new Map<string, string>();
  const name = (s: string) => {
    let q = quoted.get(s);
    if (q === undefined) quoted.set(s, (q = element(s)));
    return q;
  };
  return [
    column(items, (i) => name(i.queue)),
    column(items, (i) => name(i.type)),
    payloads(items),
    column(items, (i) => (i.payloadBase64 !== undefined ? element(i.payloadBase64) : null)),
    column(items, (i) => (i.payloadBase64 !== undefined && i.contentType !== null ? element(i.contentType) : null)),
    column(items, (i) => (i.priority !== 0 ? String(i.priority) : null)),
    column(items, (i) => (i.runAt ? `"${i.runAt.toISOString()}"` : null)),
    column(items, (i) => (i.delayMs != null ? String(i.delayMs) : null)),
    column(items, (i) => (i.maxAttempts !== o.defaultMaxAttempts ? String(i.maxAttempts) : null)),
    column(items, (i) => (i.backoff !== o.defaultBackoff ? element(JSON.stringify(i.backoff)) : null)),
    column(items, (i) => (i.timeoutMs !== o.defaultTimeoutMs ? String(i.timeoutMs) : null)),
    column(items, (i) => (i.tags.length > 0 ? element(`{${i.tags.map(element).join(',')}}`) : null)),
    column(items, (i) => (i.idempotencyKey !== undefined ? element(i.idempotencyKey) : null)),
  ];
}

/**
 * The insert statements' lifetime parameters ($20..$23, after the trace columns): expires_at, ttl_ms,
 * unique_key, unique_for_ms, each NULL as a whole when no task of the batch sets it (the
 * usual case, which costs the statement nothing).
 */
export function lifetimeColumns(items: readonly ResolvedInput[]): (string | null)[] {
  return [
    column(items, (i) => (i.expiresAt ? `"${i.expiresAt.toISOString()}"` : null)),
    column(items, (i) => (i.ttlMs != null ? String(i.ttlMs) : null)),
    column(items, (i) => (i.uniqueKey !== undefined ? element(i.uniqueKey) : null)),
    column(items, (i) => (i.uniqueForMs != null ? String(i.uniqueForMs) : null)),
  ];
}

/**
 * The insert statements' flow-control parameters ($24, $25, after the lifetime columns): the
 * concurrency and rate keys, each NULL when no task of the batch has one.
 */
export function flowColumns(items: readonly ResolvedInput[]): (string | null)[] {
  return [
    column(items, (i) => (i.concurrencyKey !== undefined ? element(i.concurrencyKey) : null)),
    column(items, (i) => (i.rateKey !== undefined ? element(i.rateKey) : null)),
  ];
}

/** A workflow's or a batch's tasks as taskInsertGraph takes them, beside their inputs. */
export interface GraphColumns {
  workflowId: string;
  /** Per task, in input order: its reference in the workflow. */
  refs: readonly string[];
  /** Per task: how many parents it waits for (`blocked` when more than 0). */
  pending: readonly number[];
  /** Per task: whether some task waits for it. */
  hasChildren: readonly boolean[];
  /** Whether children receive their parents' results (a workflow; not a batch's completion task). */
  handsResults: boolean;
  /** The edges, pairwise, as 0-based positions in the input. */
  edgeParents: readonly number[];
  edgeChildren: readonly number[];
  /** Whether the children wait for their parents to finish (a batch) rather than to succeed. */
  onFinish: boolean;
}

/** taskInsertGraph's parameters after the flow columns ($26..$33). */
export function graphColumns(g: GraphColumns): unknown[] {
  const ints = (xs: readonly number[]) => `{${xs.join(',')}}`;
  return [
    g.workflowId, `{${g.refs.map(element).join(',')}}`, ints(g.pending),
    `{${g.hasChildren.map((b) => (b ? 't' : 'f')).join(',')}}`, g.handsResults,
    ints(g.edgeParents.map((p) => p + 1)), ints(g.edgeChildren.map((c) => c + 1)), g.onFinish,
  ];
}
