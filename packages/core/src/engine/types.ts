/**
 * The engine's public types. The HTTP contract mirrors them; see docs/state-machine.md for the
 * states and every transition between them.
 */

import type { QueueSettings } from './flowSettings.ts';

/** Where a task is in its life. */
export type TaskState =
  | 'blocked' // waiting on dependencies (workflows)
  | 'scheduled' // run time in the future
  | 'queued' // ready to be claimed
  | 'running' // claimed, under a lease
  | 'retrying' // failed, waiting for its backoff
  | 'succeeded'
  | 'dead' // retries exhausted, unrecoverable, or quarantined: the dead-letter queue
  | 'cancelled';

/** How long to wait before the next attempt after a failure. */
export interface BackoffPolicy {
  /** `fixed`: delayMs; `linear`: delayMs × n; `exponential`: delayMs × factor^(n−1). */
  type: 'fixed' | 'linear' | 'exponential';
  /** Base delay in milliseconds. */
  delayMs: number;
  /** Growth factor for `exponential`. @defaultValue 2 */
  factor?: number;
  /** Upper bound of any delay. @defaultValue none */
  maxDelayMs?: number;
  /** Fraction (0..1) by which each delay is randomly shortened. @defaultValue 0 */
  jitter?: number;
}

/** What a producer submits. Only `type` is required. */
export interface TaskInput {
  /** Names the handler that runs the task (e.g. `email.send`). */
  type: string;
  /** @defaultValue the engine's `defaultQueue` (EngineOptions) */
  queue?: string;
  /** Any JSON value. Mutually exclusive with `payloadBase64`. */
  payload?: unknown;
  /**
   * `payload` already serialised (by the HTTP edge, which measured it): stored as given, so
   * the value is not serialised twice. Must be `JSON.stringify(payload)`.
   */
  payloadJson?: string;
  /** Opaque bytes, base64-encoded, for workers that bring their own encoding. */
  payloadBase64?: string;
  /** Declared content type of `payloadBase64`. @defaultValue `application/octet-stream` */
  contentType?: string;
  /** Higher runs first. @defaultValue 0 */
  priority?: number;
  /** Absolute run time. Mutually exclusive with `delayMs`. */
  runAt?: Date;
  /** Run this many milliseconds from now (database time). */
  delayMs?: number;
  /** Attempts before the task goes to the dead-letter queue. @defaultValue the engine's `defaultMaxAttempts` */
  maxAttempts?: number;
  /** @defaultValue the engine's `defaultBackoff` */
  backoff?: BackoffPolicy;
  /** Lease per attempt in ms; heartbeats renew it. @defaultValue the engine's `defaultTimeoutMs` */
  timeoutMs?: number;
  tags?: string[];
  /**
   * Ids of existing tasks this one waits for: it is `blocked` until every one has succeeded,
   * and cancelled when one ends dead or cancelled (docs/workflows.md). @defaultValue none
   */
  dependsOn?: string[];
  /** A repeat within the same queue returns the first task instead of creating another. */
  idempotencyKey?: string;
  /** W3C `traceparent` of the producer's span, stored as given and handed to workers with each claim. */
  traceparent?: string;
  /** W3C `tracestate` that goes with `traceparent`. */
  tracestate?: string;
  /**
   * At most one task per key in the queue at a time (docs/tasks.md): a submission whose key is
   * held returns the holder instead of creating a task. Held for `uniqueForMs` from the
   * holder's creation when given, else while the holder is unfinished.
   */
  uniqueKey?: string;
  /** How long a `uniqueKey` is held, ms. @defaultValue while the task is unfinished */
  uniqueForMs?: number;
  /** No attempt starts at or after this time: the task is cancelled (`expired`) instead. Exclusive with `ttlMs`. */
  expiresAt?: Date;
  /** `expiresAt` as milliseconds from now (database time). */
  ttlMs?: number;
  /** Counts against the queue's per-key concurrency limit; the key claims are fair across (docs/flow-control.md). */
  concurrencyKey?: string;
  /** Counts against the queue's per-key rate limit (docs/flow-control.md). */
  rateKey?: string;
}

export interface TaskError {
  message: string;
  stack?: string | null;
  attempt?: number;
}

export interface Task {
  id: string;
  queue: string;
  type: string;
  state: TaskState;
  priority: number;
  runAt: Date;
  /** The JSON payload (null when the payload is bytes). */
  payload: unknown;
  payloadBase64: string | null;
  contentType: string | null;
  result: unknown;
  /** Claims so far; the fencing token of the current or last attempt. */
  attempt: number;
  /** Attempts counted against `maxAttempts` are `attempt - attemptBase` (moves on manual requeue). */
  attemptBase: number;
  maxAttempts: number;
  backoff: BackoffPolicy;
  timeoutMs: number;
  tags: string[];
  idempotencyKey: string | null;
  workerId: string | null;
  leaseExpiresAt: Date | null;
  cancelRequested: boolean;
  leaseLosses: number;
  lastError: TaskError | null;
  deadReason: 'exhausted' | 'unrecoverable' | 'poison' | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** The schedule whose fire created the task (docs/schedules.md), else null. */
  scheduleId: string | null;
  /** The fire time of that schedule the task was created for, else null. */
  fireTime: Date | null;
  /** The W3C trace context it was submitted with, else null. */
  traceparent: string | null;
  tracestate: string | null;
  /** The unique key it was submitted with, else null. */
  uniqueKey: string | null;
  /** No attempt starts at or after this time, else null. */
  expiresAt: Date | null;
  /** Why a cancelled task was cancelled: `expired`, or null when cancelled on request. */
  cancelReason: 'expired' | null;
  /** Its concurrency key (docs/flow-control.md), else null. */
  concurrencyKey: string | null;
  /** Its rate key (docs/flow-control.md), else null. */
  rateKey: string | null;
  /** The workflow (or batch) the task belongs to, else null. */
  workflowId: string | null;
  /** The task's reference within its workflow, else null. */
  workflowRef: string | null;
}

export type AttemptOutcome =
  | 'running' | 'succeeded' | 'failed' | 'lease_expired' | 'worker_lost' | 'abandoned' | 'cancelled';

export interface LogLine {
  at: string;
  level: string;
  message: string;
}

export interface Attempt {
  attempt: number;
  workerId: string | null;
  startedAt: Date;
  finishedAt: Date | null;
  outcome: AttemptOutcome;
  error: { message: string; stack?: string | null; retryable?: boolean } | null;
  logs: LogLine[] | null;
  /** The trace id the worker reported for this attempt, else null. */
  traceId: string | null;
}

/** A task as handed to a worker by a claim. */
export interface ClaimedTask {
  id: string;
  queue: string;
  type: string;
  /** The fencing token: report the result with it. */
  attempt: number;
  /** Attempts left after this one before the task would be dead. */
  attemptsLeft: number;
  priority: number;
  /** The payload as JSON text (null when the payload is bytes). */
  payloadJson: string | null;
  payloadBase64: string | null;
  contentType: string | null;
  timeoutMs: number;
  /** RFC 3339 (claims are serialised straight to JSON). */
  leaseExpiresAt: string;
  tags: string[];
  /** RFC 3339. */
  createdAt: string;
  /** The W3C trace context the task was submitted with, else null. */
  traceparent: string | null;
  tracestate: string | null;
  /**
   * The results of the task's parents (workflows, dependsOn), as one JSON object text keyed by
   * each parent's workflow reference (its task id when it has none); absent for a task without
   * parents.
   */
  parentsJson?: string;
}

export type TaskResultReport =
  | {
      id: string;
      attempt: number;
      status: 'succeeded';
      result?: unknown;
      /** `result` already serialised (stored as given; takes the place of `result`). */
      resultJson?: string;
      logs?: LogLine[];
      /** The trace id of the worker's span for this attempt, recorded with it. */
      traceId?: string;
    }
  | {
      id: string;
      attempt: number;
      status: 'failed';
      error: { message: string; stack?: string | null };
      /** false: no retry, straight to the dead-letter queue. @defaultValue true */
      retryable?: boolean;
      /** Retry after this many ms instead of the backoff (still counts as an attempt). */
      retryAfterMs?: number;
      logs?: LogLine[];
      /** The trace id of the worker's span for this attempt, recorded with it. */
      traceId?: string;
    }
  | {
      id: string;
      attempt: number;
      /** Given back without running (e.g. from a prefetch buffer): queued again at once, the attempt not counted. */
      status: 'released';
    };

/**
 * accepted: recorded now. duplicate: this very result was recorded before (a retried report).
 * stale: not the current attempt held by this worker (taken over, or unknown); nothing changed.
 */
export type SettleOutcome = 'accepted' | 'duplicate' | 'stale';

export interface QueueWeight {
  name: string;
  /** Relative share of claims when several queues have work. @defaultValue 1 */
  weight: number;
}

export interface WorkerInput {
  name: string;
  queues: QueueWeight[];
  concurrency: number;
  metadata?: Record<string, unknown>;
}

export type WorkerState = 'active' | 'stopped' | 'lost';

export interface WorkerInfo {
  id: string;
  name: string;
  queues: QueueWeight[];
  concurrency: number;
  metadata: Record<string, unknown>;
  state: WorkerState;
  registeredAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  stoppedAt: Date | null;
  /** Tasks it holds right now. */
  running: number;
}

export interface HeartbeatResult {
  /** Tasks the worker holds; their leases were renewed. */
  held: string[];
  /** Held tasks whose cancellation was requested: abort them. */
  cancel: string[];
}

export interface QueueInfo {
  name: string;
  paused: boolean;
  pausedAt: Date | null;
  createdAt: Date;
  counts: Partial<Record<TaskState, number>>;
  oldestReadyAt: Date | null;
  /** Milliseconds since the oldest ready task became due (0 when none). */
  oldestReadyAgeMs: number;
  /** Limits, admission and default retry policy (docs/flow-control.md). */
  settings: QueueSettings;
}

export interface TaskFilter {
  states?: TaskState[];
  queue?: string;
  type?: string;
  tag?: string;
  createdFrom?: Date;
  createdBefore?: Date;
  /** Exclusive: tasks with a smaller id (the next page). */
  beforeId?: string;
  limit: number;
}
