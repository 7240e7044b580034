import { Type, type Static } from 'typebox';
import { Cursor, Limit, Page, QueueName, TaskId, Timestamp, TypeName, WorkerId } from './common.ts';

export const TaskState = Type.Enum(['blocked', 'scheduled', 'queued', 'running', 'retrying', 'succeeded', 'dead', 'cancelled'], {
  description: 'See docs/state-machine.md.',
});
export type TaskState = Static<typeof TaskState>;

const MAX_DELAY_MS = 10 * 365 * 24 * 3600 * 1000;

export const Backoff = Type.Object(
  {
    type: Type.Enum(['fixed', 'linear', 'exponential']),
    delayMs: Type.Integer({ minimum: 0, maximum: MAX_DELAY_MS, description: 'Base delay, ms.' }),
    factor: Type.Optional(Type.Number({ minimum: 1, maximum: 100, description: 'Growth factor of `exponential` (default 2).' })),
    maxDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_DELAY_MS, description: 'Cap on any delay, ms.' })),
    jitter: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Fraction by which each delay is randomly shortened (default 0).' })),
  },
  { additionalProperties: false, description: 'Retry delay policy: fixed = delayMs; linear = delayMs × n; exponential = delayMs × factor^(n−1).' },
);
export type Backoff = Static<typeof Backoff>;

function FlowKey(description: string) {
  return Type.String({ minLength: 1, maxLength: 255, pattern: '^[^\\u0000]+$', description });
}

const Tag = Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f]+$' });

/** W3C Trace Context (docs/protocol.md, "Trace context"). */
export const Traceparent = Type.String({
  pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$',
  description: 'W3C `traceparent` of the span that produced the task (version-traceid-parentid-flags, lowercase hex); trace and parent ids not all zeros, version not ff.',
  examples: ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
});
export const Tracestate = Type.String({
  maxLength: 512,
  pattern: '^[\\x20-\\x7e]*$',
  description: 'W3C `tracestate` that goes with `traceparent` (vendor entries, printable ASCII).',
});
/** The trace id of a worker's span (32 lowercase hex digits, not all zeros). */
export const TraceId = Type.String({ pattern: '^[0-9a-f]{32}$', description: 'Trace id, 32 lowercase hex digits.' });

export const TaskInput = Type.Object(
  {
    type: TypeName,
    queue: Type.Optional(QueueName),
    payload: Type.Optional(Type.Unknown({ description: 'Any JSON value. Exclusive with payloadBase64.' })),
    payloadBase64: Type.Optional(
      Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$', description: 'Opaque bytes, base64. Exclusive with payload.' }),
    ),
    contentType: Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: 'Content type of payloadBase64 (default application/octet-stream).' }),
    ),
    priority: Type.Optional(Type.Integer({ minimum: -2147483648, maximum: 2147483647, description: 'Higher runs first (default 0).' })),
    runAt: Type.Optional(Timestamp),
    delayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_DELAY_MS, description: 'Run this long from now. Exclusive with runAt.' })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Default 5.' })),
    backoff: Type.Optional(Backoff),
    timeoutMs: Type.Optional(
      Type.Integer({ minimum: 100, maximum: 604_800_000, description: 'Lease per attempt, ms (default 30000); heartbeats renew it.' }),
    ),
    tags: Type.Optional(Type.Array(Tag, { maxItems: 50 })),
    idempotencyKey: Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: 'A repeat within the same queue returns the first task.' }),
    ),
    traceparent: Type.Optional(Traceparent),
    tracestate: Type.Optional({ ...Tracestate, description: 'W3C `tracestate` that goes with `traceparent` (only with it).' }),
    uniqueKey: Type.Optional(
      Type.String({
        minLength: 1, maxLength: 255,
        description: 'At most one task per key in the queue: while the key is held, a submission with it returns the task holding it (`deduplicated: unique`) instead of creating one. Held for uniqueForMs from the holder\'s creation, or, without uniqueForMs, while the holder is unfinished (docs/tasks.md).',
      }),
    ),
    uniqueForMs: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_DELAY_MS, description: 'How long a uniqueKey is held from its task\'s creation, ms, whatever the task\'s state. Default: while the task is unfinished. Only with uniqueKey.' }),
    ),
    expiresAt: Type.Optional(
      Type.String({
        format: 'date-time',
        description: 'No attempt starts at or after this time: a task still waiting then is cancelled with cancelReason `expired`. Must be in the future and after runAt. Exclusive with ttlMs.',
      }),
    ),
    ttlMs: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_DELAY_MS, description: 'expiresAt as milliseconds from now (database time); more than delayMs. Exclusive with expiresAt.' }),
    ),
    concurrencyKey: Type.Optional(FlowKey('Counts against the queue\'s `maxRunningPerKey`; claims are fair across keys (docs/flow-control.md).')),
    rateKey: Type.Optional(FlowKey('Counts against the queue\'s `rateLimitPerKey` (docs/flow-control.md).')),
    dependsOn: Type.Optional(
      Type.Array(TaskId, {
        maxItems: 1000,
        description: 'Ids of existing tasks this one waits for: it is `blocked` until every one has succeeded (and sees their results in its claim), and cancelled when one ends dead or cancelled. 400 naming the ids that do not exist. See docs/workflows.md.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type TaskInput = Static<typeof TaskInput>;

export const TaskError = Type.Object({
  message: Type.String(),
  stack: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  attempt: Type.Optional(Type.Integer()),
});

export const Task = Type.Object(
  {
    id: TaskId,
    queue: Type.String(),
    type: Type.String(),
    state: TaskState,
    priority: Type.Integer(),
    runAt: Timestamp,
    payload: Type.Unknown(),
    payloadBase64: Type.Union([Type.String(), Type.Null()]),
    contentType: Type.Union([Type.String(), Type.Null()]),
    result: Type.Unknown(),
    attempt: Type.Integer({ description: 'Claims so far: the fencing token of the current or last attempt.' }),
    attemptBase: Type.Integer({ description: 'Attempts counted against maxAttempts are attempt − attemptBase (moves on a manual retry).' }),
    maxAttempts: Type.Integer(),
    backoff: Backoff,
    timeoutMs: Type.Integer(),
    tags: Type.Array(Type.String()),
    idempotencyKey: Type.Union([Type.String(), Type.Null()]),
    workerId: Type.Union([Type.String(), Type.Null()]),
    leaseExpiresAt: Type.Union([Timestamp, Type.Null()]),
    cancelRequested: Type.Boolean(),
    leaseLosses: Type.Integer({ description: 'Attempts that ended with the worker gone (towards quarantine).' }),
    lastError: Type.Union([TaskError, Type.Null()]),
    deadReason: Type.Union([Type.Enum(['exhausted', 'unrecoverable', 'poison']), Type.Null()]),
    createdAt: Timestamp,
    startedAt: Type.Union([Timestamp, Type.Null()]),
    finishedAt: Type.Union([Timestamp, Type.Null()]),
    scheduleId: Type.Union([TaskId, Type.Null()], { description: 'The schedule whose fire created the task, else null.' }),
    fireTime: Type.Union([Timestamp, Type.Null()], { description: 'The fire time of that schedule the task was created for, else null.' }),
    traceparent: Type.Union([Type.String(), Type.Null()], { description: 'The W3C trace context it was submitted with, else null.' }),
    tracestate: Type.Union([Type.String(), Type.Null()], { description: 'The W3C `tracestate` it was submitted with, else null.' }),
    uniqueKey: Type.Union([Type.String(), Type.Null()], { description: 'The unique key it was submitted with, else null.' }),
    expiresAt: Type.Union([Timestamp, Type.Null()], { description: 'No attempt starts at or after this time, else null.' }),
    cancelReason: Type.Union([Type.Enum(['expired']), Type.Null()], {
      description: 'Why a cancelled task was cancelled: `expired` (its expiresAt came before it started), or null (cancelled on request).',
    }),
    concurrencyKey: Type.Union([Type.String(), Type.Null()], { description: 'Its concurrency key (docs/flow-control.md), else null.' }),
    rateKey: Type.Union([Type.String(), Type.Null()], { description: 'Its rate key (docs/flow-control.md), else null.' }),
    workflowId: Type.Union([TaskId, Type.Null()], { description: 'The workflow or batch the task belongs to, else null (docs/workflows.md).' }),
    workflowRef: Type.Union([Type.String(), Type.Null()], { description: 'The task\'s reference within its workflow, else null.' }),
  },
  {},
);
export type Task = Static<typeof Task>;

export const LogLine = Type.Object(
  {
    at: Timestamp,
    level: Type.String({ maxLength: 20 }),
    message: Type.String({ maxLength: 10_000 }),
  },
  { additionalProperties: false },
);
export type LogLine = Static<typeof LogLine>;

export const Attempt = Type.Object({
  attempt: Type.Integer(),
  workerId: Type.Union([Type.String(), Type.Null()]),
  startedAt: Timestamp,
  finishedAt: Type.Union([Timestamp, Type.Null()]),
  durationMs: Type.Union([Type.Integer(), Type.Null()]),
  outcome: Type.Enum(['running', 'succeeded', 'failed', 'lease_expired', 'worker_lost', 'abandoned', 'cancelled']),
  error: Type.Union([
    Type.Object({ message: Type.String(), stack: Type.Optional(Type.Union([Type.String(), Type.Null()])), retryable: Type.Optional(Type.Boolean()) }),
    Type.Null(),
  ]),
  logs: Type.Union([Type.Array(LogLine), Type.Null()]),
  traceId: Type.Union([Type.String(), Type.Null()], { description: 'The trace id the worker reported for this attempt (its span), else null.' }),
});
export type Attempt = Static<typeof Attempt>;

export const TaskWithAttempts = Type.Object({ ...Task.properties, attempts: Type.Array(Attempt) }, {});
export type TaskWithAttempts = Static<typeof TaskWithAttempts>;

export const TaskBatchInput = Type.Object(
  { tasks: Type.Array(TaskInput, { minItems: 1, maxItems: 1000 }) },
  { additionalProperties: false },
);
export type TaskBatchInput = Static<typeof TaskBatchInput>;

/** What a batch submission answers per task: enough to find it again, not its payload echoed. */
export const TaskRef = Type.Pick(Task, ['id', 'queue', 'type', 'state', 'priority', 'runAt', 'idempotencyKey', 'createdAt']);
export type TaskRef = Static<typeof TaskRef>;

export const TaskBatchResult = Type.Object({
  items: Type.Array(
    Type.Object({
      created: Type.Boolean({ description: 'false: the idempotency key or the unique key matched an existing task, which is the one referred to.' }),
      deduplicated: Type.Optional(Type.Enum(['idempotency', 'unique'], {
        description: 'When created is false: which key matched, the idempotency key or the unique key.',
      })),
      task: TaskRef,
    }),
    { description: 'One per submitted task, in order.' },
  ),
});
export type TaskBatchResult = Static<typeof TaskBatchResult>;

/**
 * The minimal answer to a batch submission, sent when the request says `Prefer:
 * return=minimal` (RFC 7240): the ids only. The ids travel as one comma-separated string:
 * parsing a JSON array of 1,000 short strings costs the client far more than one string it
 * splits (V8 interns every string value under ten characters it parses: bench/README.md).
 */
export const TaskBatchIds = Type.Object({
  ids: Type.String({
    pattern: '^[1-9][0-9]{0,18}(,[1-9][0-9]{0,18})*$',
    description: 'The task ids, one per submitted task, in input order, comma-separated.',
    examples: ['41,42,43'],
  }),
  existing: Type.Array(Type.Integer({ minimum: 0 }), {
    description: 'Positions (0-based) of the items whose idempotency key or unique key matched an existing task; the id at that position is the original\'s. Empty when every task was created.',
  }),
});
export type TaskBatchIds = Static<typeof TaskBatchIds>;

/** The request headers of a batch submission. */
export const TaskBatchHeaders = Type.Object({
  prefer: Type.Optional(
    Type.String({
      description: '`return=minimal` (RFC 7240): answer the ids only (TaskBatchIds), with `Preference-Applied: return=minimal`. Other preferences are ignored.',
      examples: ['return=minimal'],
    }),
  ),
});

export const TaskListQuery = Type.Object(
  {
    state: Type.Optional(Type.Array(TaskState, { description: 'Repeat for several: state=queued&state=running.' })),
    queue: Type.Optional(QueueName),
    type: Type.Optional(TypeName),
    tag: Type.Optional(Tag),
    createdFrom: Type.Optional(Timestamp),
    createdBefore: Type.Optional(Timestamp),
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(Limit),
  },
  { additionalProperties: false },
);
export type TaskListQuery = Static<typeof TaskListQuery>;

export const TaskPage = Page(Task);
export type TaskPage = Static<typeof TaskPage>;

export const TaskPatch = Type.Object(
  {
    priority: Type.Optional(Type.Integer({ minimum: -2147483648, maximum: 2147483647 })),
    runAt: Type.Optional(Timestamp),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type TaskPatch = Static<typeof TaskPatch>;

export const TaskParams = Type.Object({ id: TaskId });

export const DlqListQuery = Type.Object(
  {
    queue: Type.Optional(QueueName),
    type: Type.Optional(TypeName),
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(Limit),
  },
  { additionalProperties: false },
);
export type DlqListQuery = Static<typeof DlqListQuery>;

export const DlqRequeueInput = Type.Object(
  {
    ids: Type.Optional(Type.Array(TaskId, { minItems: 1, maxItems: 1000, description: 'Requeue these dead tasks.' })),
    queue: Type.Optional(QueueName),
    type: Type.Optional(TypeName),
    all: Type.Optional(Type.Boolean({ description: 'Required to requeue every dead task when neither ids nor queue is given.' })),
  },
  { additionalProperties: false },
);
export type DlqRequeueInput = Static<typeof DlqRequeueInput>;

export const DlqRequeueResult = Type.Object({
  requeued: Type.Integer(),
  items: Type.Optional(
    Type.Array(Type.Object({ id: Type.String(), status: Type.Enum(['requeued', 'not_found', 'invalid_state']) })),
  ),
});
export type DlqRequeueResult = Static<typeof DlqRequeueResult>;

export const DlqPurgeQuery = Type.Object({ queue: Type.Optional(QueueName) }, { additionalProperties: false });
export const DlqPurgeResult = Type.Object({ purged: Type.Integer() });

export { WorkerId };

export const TaskBlocker = Type.Object({
  kind: Type.Enum(['run_at', 'parents', 'queue_paused', 'concurrency_key', 'queue_concurrency', 'rate_limit', 'key_rate_limit'], {
    description: 'run_at: its run time or retry backoff is ahead; parents: it waits on the tasks it depends on; queue_paused; concurrency_key / queue_concurrency: the key\'s / queue\'s slots are all held; rate_limit / key_rate_limit: the queue\'s / its rate key\'s bucket is empty.',
  }),
  message: Type.String(),
  until: Type.Union([Timestamp, Type.Null()], { description: 'When it lets go at the latest (run time, refill, soonest lease to expire); null if unknown.' }),
  limit: Type.Optional(Type.Integer()),
  running: Type.Optional(Type.Integer({ description: 'Running attempts holding the slots.' })),
  key: Type.Optional(Type.String({ description: 'The concurrency or rate key concerned.' })),
});

export const TaskExplanation = Type.Object({
  taskId: TaskId,
  queue: Type.String(),
  state: TaskState,
  blockers: Type.Array(TaskBlocker, { description: 'What holds the task back, in the order a claim meets it; empty when nothing does.' }),
  ahead: Type.Union([Type.Integer(), Type.Null()], { description: 'Queued: ready tasks of its queue ahead of it in claim order (before fairness across keys); else null.' }),
  summary: Type.String(),
});
export type TaskExplanation = Static<typeof TaskExplanation>;
