/**
 * Results on their way to the service. Results ride along with the next claim when one is
 * about to be sent (the common case under load, when a finished task frees the slot that
 * triggers the claim); otherwise they are flushed on their own, coalesced while a flush is in
 * flight.
 *
 * A result the service could not take (unreachable, 5xx, 429) is kept, with its fencing token,
 * and sent again until it is: in order, after the service's Retry-After or a backoff. They are
 * bounded by the worker's capacity (concurrency + prefetch): a claim that carries results
 * either settles them or brings no task, so no task comes while results wait. On stop, `drain`
 * keeps trying for a bounded time, then gives up on what is left (the service re-runs those
 * tasks once their leases run out or the worker is marked lost).
 */
import type { EventEmitter } from 'node:events';
import type { ResultOutcome, ResultsInput, SucceededOutcomes, TaskResult } from '@taskflow/contracts';
import type { TaskflowClient } from './client.ts';
import { RetryAfterError, TaskflowApiError, UnrecoverableError } from './errors.ts';
import { serviceWait, type WorkerSession } from './lifecycle.ts';
import type { WorkerLogger } from './options.ts';
import type { WorkerEvents } from './worker.ts';

/** Most results in one request (the service's limit). */
const MAX_BATCH = 1000;

/**
 * How long results wait for a claim to carry them while a claim loop waits for a good batch of
 * room. A busy worker claims again once half a batch of room is free (at 15,000 tasks/s and
 * batches of 250, about 8 ms): the linger must outlast that, or the results go alone.
 */
export const RESULT_LINGER_MS = 25;

/** A batch of results as a request body, and where each of its full results came from. */
export interface ReportBody {
  body: Pick<ResultsInput, 'results' | 'succeeded'>;
  /** `fullIndex[n]` is the batch position of `body.results[n]`. */
  fullIndex: number[];
}

/**
 * A batch of results as a request body: successes with no result and no logs (the usual no-op
 * or fire-and-forget handler) go compact in `succeeded` ("41:1,42:1", a trace id appended as
 * ":<traceId>"), the rest in `results`.
 * `fullIndex[n]` is the batch position of `results[n]`, to map a refusal naming
 * `/body/results/n` back to its task.
 */
export function reportBody(batch: readonly TaskResult[]): ReportBody {
  const results: TaskResult[] = [];
  const fullIndex: number[] = [];
  let succeeded = '';
  batch.forEach((r, i) => {
    if (r.status === 'succeeded' && (r.result === null || r.result === undefined) && !r.logs) {
      succeeded += `${succeeded ? ',' : ''}${r.id}:${r.attempt}${r.traceId ? `:${r.traceId}` : ''}`;
    } else {
      results.push(r);
      fullIndex.push(i);
    }
  });
  return { body: { ...(results.length ? { results } : {}), ...(succeeded ? { succeeded } : {}) }, fullIndex };
}

export interface ResultQueueDeps {
  client: TaskflowClient;
  session: WorkerSession;
  log: WorkerLogger;
  /** Where `stale` is emitted. */
  events: EventEmitter<WorkerEvents>;
}

/**
 * The results not yet accepted by the service, oldest first. A claim takes them (`take`) and
 * gives back what its failure left unsettled (`restore`); otherwise `queueFlush` sends them.
 */
export class ResultQueue {
  #pending: TaskResult[] = [];
  #flushing: Promise<void> | undefined;
  #flushQueued = false;
  /** Set by `drain` (the worker stops): when to give up on an unreachable service. */
  #until: number | undefined;
  /** Ends the wait before the next try at once (`drain` sets a deadline the wait may pass). */
  #wake: (() => void) | undefined;
  readonly #deps: ResultQueueDeps;

  constructor(deps: ResultQueueDeps) {
    this.#deps = deps;
  }

  get size(): number {
    return this.#pending.length;
  }

  add(report: TaskResult): void {
    this.#pending.push(report);
  }

  /** Takes the oldest results, as many as one request carries. */
  take(): TaskResult[] {
    return this.#pending.splice(0, MAX_BATCH);
  }

  /** The results waiting to be sent, oldest first (the heartbeat renews their tasks' leases). */
  get waiting(): readonly TaskResult[] {
    return this.#pending;
  }

  /** Drops every result (the worker registered again: they would be stale). */
  clear(): void {
    if (this.#pending.length > 0) this.#deps.log.warn({ count: this.#pending.length }, 'results of the old registration dropped: they would be stale');
    this.#pending = [];
  }

  /**
   * What becomes of results sent with a claim that failed. Refused items (400/413 naming
   * them: a result over the size limit, say) become failures and go again; after a 409 the
   * service had settled them; after a 404 the worker is unknown and they are stale anyway;
   * after anything else (network, 5xx) they go again: one already recorded comes back as a
   * harmless `duplicate`.
   */
  restore(err: unknown, results: TaskResult[], fullIndex: number[]): void {
    if (results.length === 0 || this.#fixRefused(err, results, fullIndex)) return;
    if (err instanceof TaskflowApiError && (err.status === 404 || err.status === 409)) return;
    this.#pending.unshift(...results);
  }

  /**
   * Sends pending results on their own, unless a claim takes them first: after this turn
   * (nothing else is coming to carry them), or after RESULT_LINGER_MS when `linger` is asked
   * for (a claim loop is waiting for a good batch of room and will carry them if it comes
   * soon enough).
   */
  queueFlush(linger = false): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    const run = () => {
      this.#flushQueued = false;
      void this.flush();
    };
    if (linger) setTimeout(run, RESULT_LINGER_MS).unref();
    else setImmediate(run);
  }

  /** Sends pending results; one request at a time, batches gathered meanwhile go next. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#pending.length === 0 || !this.#deps.session.id) return Promise.resolve();
    this.#flushing = this.#sendAll().finally(() => {
      this.#flushing = undefined;
      if (this.#pending.length > 0 && this.#deps.session.state === 'running') this.queueFlush(true);
    });
    return this.#flushing;
  }

  /**
   * The worker stops: sends every pending result, trying an unreachable service for up to
   * `withinMs`. Resolves with how many results it could not report.
   */
  async drain(withinMs: number): Promise<number> {
    this.#until = Date.now() + withinMs;
    this.#wake?.();
    // The flush in flight first (its batch is not in #pending); one begun while running stops
    // after a batch: go on until done or out of time.
    do await this.flush();
    while (this.#pending.length > 0 && this.#deps.session.id && Date.now() < this.#until);
    return this.#pending.length;
  }

  async #sendAll(): Promise<void> {
    const { client, session, log } = this.#deps;
    let backoff = 0;
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, MAX_BATCH);
      const report = reportBody(batch);
      try {
        const out = await client.call('reportResults', { params: { id: session.id! }, body: report.body });
        this.noteOutcomes(out);
        backoff = 0;
        // While running, what finished meanwhile goes with a claim or the next queued flush.
        if (session.state === 'running') break;
      } catch (err) {
        if (this.#fixRefused(err, batch, report.fullIndex)) continue;
        if (!worthKeeping(err)) {
          // 404: the service no longer knows this worker, so they are stale; 401/403: this key may not report.
          log.error({ err: String(err), count: batch.length }, 'results refused; the service will re-run those tasks');
          continue;
        }
        this.#pending.unshift(...batch);
        backoff = Math.min(Math.max(backoff * 2, 100), 5000);
        let wait = serviceWait(err, backoff);
        if (this.#until !== undefined) {
          if (Date.now() >= this.#until) break;
          wait = Math.min(wait, this.#until - Date.now());
        }
        log.warn({ err: String(err), count: this.#pending.length, retryInMs: wait }, 'reporting results failed; keeping them to retry');
        await this.#pause(wait);
      }
    }
  }

  /** Waits `ms` before the next try, or until `drain` cuts it short. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  /**
   * A batch refused for some of its items (a result over the size limit, say): those items
   * become failures naming the reason, and the batch goes again.
   */
  #fixRefused(err: unknown, batch: TaskResult[], fullIndex: number[]): boolean {
    if (!(err instanceof TaskflowApiError) || (err.status !== 400 && err.status !== 413)) return false;
    // The claim endpoint names them /body/results/N as the results endpoint does.
    const bad = new Set<number>();
    for (const e of err.problem?.errors ?? []) {
      const m = /^\/body\/results\/(\d+)/.exec(e.field);
      if (m) bad.add(Number(m[1]));
    }
    if (bad.size === 0) return false;
    for (const n of bad) {
      const i = fullIndex[n] ?? -1;
      const r = batch[i];
      if (!r) continue;
      batch[i] = { id: r.id, attempt: r.attempt, status: 'failed', retryable: false, error: { message: `the service refused this result: ${err.message}` } };
    }
    this.#pending.unshift(...batch);
    return true;
  }

  /** Stale results are worth a warning (the task was taken over); duplicates are retried reports. */
  noteOutcomes(out: { results?: ResultOutcome[]; succeeded?: SucceededOutcomes }): void {
    const stale = [...(out.results ?? []).filter((o) => o.status === 'stale').map((o) => o.id), ...(out.succeeded?.stale ?? [])];
    if (stale.length > 0) {
      this.#deps.log.warn({ tasks: stale }, 'results refused as stale: those tasks were taken over (lease lost)');
      this.#deps.events.emit('stale', stale);
    }
  }
}

/** Whether a result that failed to go is kept to go again: the service was away or busy, not refusing it. */
function worthKeeping(err: unknown): boolean {
  if (!(err instanceof TaskflowApiError)) return true; // the network: unreachable, reset, timed out
  return err.status >= 500 || err.status === 429 || err.status === 408;
}

/** The failure report for whatever a handler threw. */
export function failure(err: unknown): Pick<TaskResult, 'status' | 'error' | 'retryable' | 'retryAfterMs'> {
  const e = err instanceof Error ? err : new Error(typeof err === 'string' ? err : `non-error thrown: ${safeString(err)}`);
  const error = { message: e.message || e.name, stack: e.stack ?? null };
  if (err instanceof UnrecoverableError) return { status: 'failed', error, retryable: false };
  if (err instanceof RetryAfterError) return { status: 'failed', error, retryAfterMs: err.delayMs };
  return { status: 'failed', error };
}

function safeString(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
