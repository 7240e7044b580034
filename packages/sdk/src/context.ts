/**
 * A task as the worker holds it (the in-flight entry) and as its handler sees it (the
 * context), with the helpers that abort or give up a held task.
 */
import type { ClaimedTask, LogLine } from '@taskflow/contracts';

/**
 * What a handler gets besides its payload. `signal`, `createdAt` and `log` are made when first read
 * (getters: a spread `{ ...ctx }` leaves them out; destructuring works).
 */
export interface TaskContext {
  readonly id: string;
  readonly type: string;
  readonly queue: string;
  /** This attempt's number (the fencing token). */
  readonly attempt: number;
  /** Attempts left after this one; 0 means a failure now sends the task to the dead-letter queue. */
  readonly attemptsLeft: number;
  readonly priority: number;
  readonly tags: readonly string[];
  readonly createdAt: Date;
  /** For byte payloads: the declared content type (the payload argument is a Buffer). */
  readonly contentType: string | null;
  /**
   * The results of the task's parents, keyed by each parent's workflow ref (by its task id
   * for a dependency given by id in a plain submit); empty for a task without parents.
   */
  readonly parents: Readonly<Record<string, unknown>>;
  /**
   * Aborts when the task is cancelled (reason TaskCancelledError), its lease is lost
   * (LeaseLostError) or the worker shuts down past its grace period (WorkerShutdownError).
   */
  readonly signal: AbortSignal;
  /** Adds a line to this attempt's log, stored with its result. */
  log(message: string, level?: 'debug' | 'info' | 'warn' | 'error'): void;
}

/**
 * Runs one task. Its return value (JSON) is the result. Throw UnrecoverableError to skip
 * the retries, RetryAfterError to choose the delay; anything else retries with backoff.
 */
export type TaskHandler = (payload: any, ctx: TaskContext) => unknown;

/** A task the worker holds, running or in the prefetch buffer. */
export interface InFlight {
  task: ClaimedTask;
  /** Made when the handler first reads `ctx.signal` (see TaskRunContext). */
  ctrl: AbortController | undefined;
  /** Why the task was aborted (cancelled, lease lost, shutdown), if it was: see abortTask. */
  abortReason: Error | undefined;
  /** The attempt's log lines, made at the first one. */
  logs: LogLine[] | undefined;
  /** Local time the claim response arrived (a heartbeat sent later must list the task). */
  receivedAt: number;
  /** No result will be reported (lease lost, shutdown): the service re-runs the task. */
  abandoned: boolean;
  /** Its handler was called (else it waits in the prefetch buffer). */
  started: boolean;
}

/** Aborts the task: its signal if made, else a signal made later starts aborted. The first reason stays. */
export function abortTask(e: InFlight, reason: Error): void {
  e.abortReason ??= reason;
  e.ctrl?.abort(reason);
}

/**
 * Gives the task up: no result will be reported for it, and its handler's signal aborts. A
 * task still in the prefetch buffer is simply let go (`held` is every task the worker holds).
 */
export function abandonTask(held: Map<string, InFlight>, e: InFlight, reason: Error): void {
  e.abandoned = true;
  abortTask(e, reason);
  if (!e.started) held.delete(e.task.id);
}

/** The task's signal, made on first use (aborted at once if the task already was). */
function signalOf(e: InFlight): AbortSignal {
  if (!e.ctrl) {
    e.ctrl = new AbortController();
    if (e.abortReason) e.ctrl.abort(e.abortReason);
  }
  return e.ctrl.signal;
}

const NO_PARENTS: Readonly<Record<string, unknown>> = Object.freeze({});

/**
 * A task's context as its handler sees it. One is made for every task, so it makes nothing
 * more until asked: the AbortController behind `signal` (with its EventTarget, half a dozen
 * objects), the `createdAt` Date and the log's array. Most handlers read none of them; not
 * making the AbortController saves about 2% of a busy worker's CPU (`cd bench && npm run perf`).
 * `signal`, `createdAt` and `log` are getters (on the prototype: a spread of the context leaves
 * them out); `log` is a function of its own, so `const { log } = ctx` works.
 */
export class TaskRunContext implements TaskContext {
  readonly id: string;
  readonly type: string;
  readonly queue: string;
  readonly attempt: number;
  readonly attemptsLeft: number;
  readonly priority: number;
  readonly tags: readonly string[];
  readonly contentType: string | null;
  readonly parents: Readonly<Record<string, unknown>>;
  readonly #entry: InFlight;
  readonly #createdAtMs: number;
  #createdAt: Date | undefined;
  #log: TaskContext['log'] | undefined;

  constructor(entry: InFlight, createdAtMs: number) {
    const t = entry.task;
    this.id = t.id;
    this.type = t.type;
    this.queue = t.queue;
    this.attempt = t.attempt;
    this.attemptsLeft = t.attemptsLeft;
    this.priority = t.priority;
    this.tags = t.tags;
    this.contentType = t.contentType;
    this.parents = t.parents ?? NO_PARENTS;
    this.#entry = entry;
    this.#createdAtMs = createdAtMs;
  }

  get signal(): AbortSignal {
    return signalOf(this.#entry);
  }

  get createdAt(): Date {
    return (this.#createdAt ??= new Date(this.#createdAtMs));
  }

  get log(): TaskContext['log'] {
    const entry = this.#entry;
    return (this.#log ??= (message, level = 'info') => {
      const logs = (entry.logs ??= []);
      if (logs.length < 1000) logs.push({ at: new Date().toISOString(), level, message: String(message).slice(0, 10_000) });
    });
  }
}

/**
 * Tasks' creation times in ms. The tasks of one batch share the text, so the last one parsed
 * is kept (each context still makes a Date of its own): parsing once per batch rather than per
 * task saves about 3% of a busy worker's CPU (`cd bench && npm run perf`).
 */
export class CreatedAtCache {
  #text = '';
  #ms = 0;

  msOf(text: string): number {
    if (text !== this.#text) {
      this.#text = text;
      this.#ms = Date.parse(text);
    }
    return this.#ms;
  }
}
