import { Type, type Static } from 'typebox';
import { Cursor, Limit, Page, ProblemOf, QueueName, TaskId, Timestamp, WorkerId } from './common.ts';
import { LogLine, TraceId } from './tasks.ts';

export const QueueWeight = Type.Object(
  {
    name: QueueName,
    weight: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1000, description: 'Relative share of claims (default 1).' })),
  },
  { additionalProperties: false },
);

export const WorkerRegistration = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, description: 'Shown in the dashboard and logs (host, pid, ...).' }),
    queues: Type.Array(Type.Union([QueueName, QueueWeight]), {
      minItems: 1,
      maxItems: 100,
      description: 'Queues served: names, or {name, weight} for a weighted share.',
    }),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Tasks run at once (default 1).' })),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Free-form facts about the worker.' })),
  },
  { additionalProperties: false },
);
export type WorkerRegistration = Static<typeof WorkerRegistration>;

export const Worker = Type.Object(
  {
    id: WorkerId,
    name: Type.String(),
    queues: Type.Array(Type.Object({ name: Type.String(), weight: Type.Number() })),
    concurrency: Type.Integer(),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    state: Type.Enum(['active', 'stopped', 'lost']),
    registeredAt: Timestamp,
    lastSeenAt: Timestamp,
    expiresAt: Timestamp,
    stoppedAt: Type.Union([Timestamp, Type.Null()]),
    running: Type.Integer({ description: 'Tasks it holds now.' }),
  },
  {},
);
export type Worker = Static<typeof Worker>;

export const WorkerRegistered = Type.Object({
  ...Worker.properties,
  heartbeatIntervalMs: Type.Integer({ description: 'Heartbeat this often.' }),
  workerTtlMs: Type.Integer({ description: 'Without a heartbeat for this long the worker is lost and its tasks requeued.' }),
});
export type WorkerRegistered = Static<typeof WorkerRegistered>;

export const WorkerParams = Type.Object({ id: WorkerId });

export const HeartbeatInput = Type.Object(
  {
    running: Type.Optional(
      Type.Array(TaskId, {
        maxItems: 10_000,
        description: 'The tasks this worker is running: only their leases are renewed. Omitted: every task it holds.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type HeartbeatInput = Static<typeof HeartbeatInput>;

export const Heartbeat = Type.Object({
  held: Type.Array(TaskId, {
    description: 'Every task this worker holds. Those it listed in `running` (all of them, without `running`) had their leases renewed; a held task it does not know of is left to run out its lease.',
  }),
  cancel: Type.Array(TaskId, { description: 'Held tasks whose cancellation was requested: abort them.' }),
});
export type Heartbeat = Static<typeof Heartbeat>;

export const TaskResult = Type.Object(
  {
    id: TaskId,
    attempt: Type.Integer({ minimum: 1, maximum: 2147483647, description: 'The fencing token from the claim.' }),
    status: Type.Enum(['succeeded', 'failed', 'released'], {
      description: 'released: given back without running (e.g. from a prefetch buffer at shutdown): queued again at once, the attempt not counted.',
    }),
    result: Type.Optional(Type.Unknown({ description: 'With succeeded: any JSON value.' })),
    error: Type.Optional(
      Type.Object(
        {
          message: Type.String({ maxLength: 65_536 }),
          stack: Type.Optional(Type.Union([Type.String({ maxLength: 262_144 }), Type.Null()])),
        },
        { additionalProperties: false, description: 'Required with failed.' },
      ),
    ),
    retryable: Type.Optional(Type.Boolean({ description: 'With failed: false sends the task to the dead-letter queue now (default true).' })),
    retryAfterMs: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 315_360_000_000, description: 'With failed: retry after this long instead of the backoff.' }),
    ),
    logs: Type.Optional(Type.Array(LogLine, { maxItems: 1000 })),
    traceId: Type.Optional({
      ...TraceId,
      description: 'The trace id of the span in which the worker ran this attempt: recorded on the attempt, to find its trace. Not with released.',
    }),
  },
  { additionalProperties: false },
);
export type TaskResult = Static<typeof TaskResult>;

export const SingleResult = Type.Object(
  {
    attempt: TaskResult.properties.attempt,
    status: TaskResult.properties.status,
    result: TaskResult.properties.result,
    error: TaskResult.properties.error,
    retryable: TaskResult.properties.retryable,
    retryAfterMs: TaskResult.properties.retryAfterMs,
    logs: TaskResult.properties.logs,
    traceId: TaskResult.properties.traceId,
  },
  { additionalProperties: false },
);
export type SingleResult = Static<typeof SingleResult>;

export const ResultOutcome = Type.Object({
  id: Type.String(),
  status: Type.Enum(['accepted', 'duplicate', 'stale'], {
    description: 'accepted: recorded now. duplicate: this worker already settled this attempt (a retried report; the first report stands). stale: not the current attempt held by this worker (the task was taken over); nothing changed.',
  }),
});
export type ResultOutcome = Static<typeof ResultOutcome>;

/**
 * Successes with no result and no logs, in their compact form: `id:attempt` pairs joined by
 * commas. Parsing them as objects, each holding a short id that the JSON parser interns, was
 * about a tenth of the service's CPU during a drain (bench/README.md).
 */
export const SucceededList = Type.String({
  pattern: '^[1-9][0-9]{0,18}:[1-9][0-9]{0,9}(:[0-9a-f]{32})?(,[1-9][0-9]{0,18}:[1-9][0-9]{0,9}(:[0-9a-f]{32})?)*$',
  maxLength: 64_000,
  description:
    'Successes without a result or logs, as `id:attempt` pairs joined by commas (`"41:1,42:1"`, up to 1000), each optionally followed by `:traceId` (32 lowercase hex digits, see TaskResult.traceId: `"41:1:0af7651916cd43dd8448eb211c80319c"`): the same as `{"id":"41","attempt":1,"status":"succeeded"}` each in `results`, whose items are settled first.',
});

export const SucceededOutcomes = Type.Object({
  accepted: Type.Integer({ description: 'How many of `succeeded` were recorded now.' }),
  duplicate: Type.Array(TaskId, { description: 'Those this worker had already settled (a retried report; the first stands).' }),
  stale: Type.Array(TaskId, { description: 'Those not the current attempt held by this worker (the task was taken over); nothing changed.' }),
});
export type SucceededOutcomes = Static<typeof SucceededOutcomes>;

export const ResultsInput = Type.Object(
  {
    results: Type.Optional(Type.Array(TaskResult, { maxItems: 1000 })),
    succeeded: Type.Optional(SucceededList),
  },
  { additionalProperties: false, description: 'At least one result, in `results` or `succeeded`.' },
);
export type ResultsInput = Static<typeof ResultsInput>;

export const ResultsOutput = Type.Object({
  results: Type.Array(ResultOutcome, { description: 'One outcome per item of `results`, in order (empty without `results`).' }),
  succeeded: Type.Optional(SucceededOutcomes),
});
export type ResultsOutput = Static<typeof ResultsOutput>;

export const ClaimInput = Type.Object(
  {
    max: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Tasks wanted (default 1): the free slots.' })),
    waitMs: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 60_000, description: 'Long-poll: wait this long for work when none is ready (default 0).' }),
    ),
    queues: Type.Optional(Type.Array(QueueName, { minItems: 1, maxItems: 100, description: 'A subset of the registered queues.' })),
    results: Type.Optional(
      Type.Array(TaskResult, { maxItems: 1000, description: 'Results to settle before claiming: one round trip for both.' }),
    ),
    succeeded: Type.Optional(SucceededList),
  },
  { additionalProperties: false },
);
export type ClaimInput = Static<typeof ClaimInput>;

export const ClaimedTask = Type.Object(
  {
    id: TaskId,
    queue: Type.String(),
    type: Type.String(),
    attempt: Type.Integer({ description: 'The fencing token: report the result with it.' }),
    attemptsLeft: Type.Integer({ description: 'Attempts left after this one.' }),
    priority: Type.Integer(),
    payload: Type.Unknown(),
    payloadBase64: Type.Union([Type.String(), Type.Null()]),
    contentType: Type.Union([Type.String(), Type.Null()]),
    timeoutMs: Type.Integer(),
    leaseExpiresAt: Timestamp,
    tags: Type.Array(Type.String()),
    createdAt: Timestamp,
    traceparent: Type.Optional(Type.String({ description: 'The W3C trace context the task was submitted with; absent when it had none.' })),
    tracestate: Type.Optional(Type.String({ description: 'Its W3C `tracestate`; absent when it had none.' })),
    parents: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Only for a task with parents (a workflow\'s child, or a task submitted with dependsOn): each parent\'s result, keyed by the parent\'s workflow ref (by its task id when it has none). docs/protocol.md.',
      }),
    ),
  },
  {},
);
export type ClaimedTask = Static<typeof ClaimedTask>;

export const ClaimOutput = Type.Object({
  tasks: Type.Array(ClaimedTask),
  results: Type.Optional(Type.Array(ResultOutcome, { description: 'Outcomes of the results sent with the claim.' })),
  succeeded: Type.Optional(SucceededOutcomes),
});
export type ClaimOutput = Static<typeof ClaimOutput>;

export const WorkerListQuery = Type.Object(
  {
    state: Type.Optional(Type.Array(Type.Enum(['active', 'stopped', 'lost']))),
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(Limit),
  },
  { additionalProperties: false },
);
export type WorkerListQuery = Static<typeof WorkerListQuery>;

export const WorkerPage = Page(Worker);
export type WorkerPage = Static<typeof WorkerPage>;

/** A task and the attempt (fencing token) the worker held it at. */
export const TaskAttempt = Type.Object(
  { id: TaskId, attempt: TaskResult.properties.attempt },
  { additionalProperties: false },
);
export type TaskAttempt = Static<typeof TaskAttempt>;

/**
 * Deregister's body, optional. `started` tells the tasks that ran from those that never did:
 * a claim answer lost on its way (the worker stopped while it came) leaves tasks held by a
 * worker that never saw them, and only the worker knows which. Without it, every held task
 * counts as started (so a worker that does not track them loses nothing it ran).
 */
export const DeregisterInput = Type.Object(
  {
    started: Type.Optional(
      Type.Array(TaskAttempt, {
        maxItems: 10_000,
        description:
          'The tasks this worker started and did not report, each with its attempt: they end `abandoned`, the attempt used. Every other task it holds never started (a claim answer that never reached it) and is handed back with the attempt refunded, as if `released`. Omitted: every held task counts as started.',
      }),
    ),
  },
  { additionalProperties: false, description: 'Optional: no body, or `{}`, hands back every held task as started.' },
);
export type DeregisterInput = Static<typeof DeregisterInput>;

export const Deregistered = Type.Object({ released: Type.Integer({ description: 'Tasks handed back for another attempt.' }) });

/**
 * The codes that tell a worker the service no longer counts it active, and what to do:
 * `worker_lost` (it missed its heartbeat deadline and its tasks were taken back: heartbeat,
 * which makes it active again holding nothing, then claim again) and `worker_stopped` (it was
 * deregistered: register again, for a new id).
 */
export const WORKER_LOST = 'worker_lost';
export const WORKER_STOPPED = 'worker_stopped';

/** 409 to a claim: the worker is lost or stopped. */
export const ClaimConflict = ProblemOf([WORKER_LOST, WORKER_STOPPED], '`worker_lost`: heartbeat, then claim again. `worker_stopped`: register again.');

/** 409 to a heartbeat: the worker was deregistered (a lost worker's heartbeat brings it back instead). */
export const HeartbeatConflict = ProblemOf([WORKER_STOPPED], '`worker_stopped`: register again.');

/** 409 to a single result: not the current attempt held by this worker. */
export const ResultConflict = ProblemOf(['stale_attempt'], '`stale_attempt`: the task was taken over (or never was this worker\'s); drop the result.');

export const WorkerTaskParams = Type.Object({ id: WorkerId, taskId: TaskId });
