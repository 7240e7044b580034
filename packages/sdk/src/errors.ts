/** Errors of the SDK: HTTP problems from the service, and the errors handlers throw to steer retries. */
import type { Problem } from '@taskflow/contracts';

/** The service answered with an RFC 9457 problem (or a non-JSON error). */
export class TaskflowApiError extends Error {
  readonly status: number;
  /** The stable problem code (`validation_failed`, `stale_attempt`, ...). */
  readonly code: string;
  readonly problem: Problem | undefined;
  /** The answer's `Retry-After` (seconds or an HTTP date), in ms from when it arrived; undefined without one. */
  readonly retryAfterMs: number | undefined;
  /** Requests the call made, retries included. @defaultValue 1 */
  attempts = 1;
  constructor(status: number, problem: Problem | undefined, fallback: string, options?: ErrorOptions & { retryAfterMs?: number }) {
    super(problem ? `${problem.title}: ${problem.detail}` : fallback, options);
    this.name = 'TaskflowApiError';
    this.status = status;
    this.code = problem?.code ?? `http_${status}`;
    this.problem = problem;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * The service could not be reached, or the connection failed before its answer came
 * (refused, reset, timed out). `requestSent` says whether the request may have reached the
 * service: false only when it certainly did not (the connection was refused or the name did not
 * resolve), so that nothing can have happened.
 */
export class TaskflowNetworkError extends Error {
  readonly requestSent: boolean;
  /** Requests the call made, retries included. @defaultValue 1 */
  attempts = 1;
  constructor(message: string, options?: ErrorOptions & { requestSent?: boolean }) {
    super(message, options);
    this.name = 'TaskflowNetworkError';
    this.requestSent = options?.requestSent ?? true;
  }
}

/*
 * The errors a handler throws are recognised by a brand in the global symbol registry, not by
 * their class alone: a handlers file run by `taskflow worker` imports its own copy of the SDK,
 * whose classes are not the CLI's, and `instanceof` must still hold across the two copies.
 */
const UNRECOVERABLE = Symbol.for('@taskflow/sdk:UnrecoverableError');
const RETRY_AFTER = Symbol.for('@taskflow/sdk:RetryAfterError');

/** `value instanceof cls`: by the brand for the base class itself, by the prototype chain for subclasses. */
function branded(cls: Function, base: Function, brand: symbol, value: unknown): boolean {
  if (cls !== base) return Function.prototype[Symbol.hasInstance].call(cls, value);
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}

/** Thrown by a handler: the task must not be retried; it goes to the dead-letter queue now. */
export class UnrecoverableError extends Error {
  /** @internal The brand `instanceof` checks (see `branded`). */
  readonly [UNRECOVERABLE] = true;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UnrecoverableError';
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(this, UnrecoverableError, UNRECOVERABLE, value);
  }
}

/** Thrown by a handler: retry after `delayMs` instead of the backoff (counts as an attempt). */
export class RetryAfterError extends Error {
  /** @internal The brand `instanceof` checks (see `branded`). */
  readonly [RETRY_AFTER] = true;
  readonly delayMs: number;
  constructor(delayMs: number, message = `retry after ${delayMs} ms`, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RetryAfterError';
    this.delayMs = Math.max(0, Math.round(delayMs));
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return branded(this, RetryAfterError, RETRY_AFTER, value);
  }
}

/** The reason a handler's signal aborts when its task is cancelled. */
export class TaskCancelledError extends Error {
  constructor(taskId: string) {
    super(`task ${taskId} was cancelled`);
    this.name = 'TaskCancelledError';
  }
}

/** The reason a handler's signal aborts when the worker shuts down before it finished. */
export class WorkerShutdownError extends Error {
  constructor() {
    super('the worker is shutting down');
    this.name = 'WorkerShutdownError';
  }
}

/** The reason a handler's signal aborts when the task is no longer this worker's (lease lost). */
export class LeaseLostError extends Error {
  constructor(taskId: string) {
    super(`task ${taskId} is no longer held by this worker (its lease was lost)`);
    this.name = 'LeaseLostError';
  }
}
