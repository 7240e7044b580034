/**
 * The reference worker: registers, heartbeats, claims in batches sized to its free slots
 * (long-poll), runs handlers concurrently, reports results in batches, and shuts down
 * gracefully. It speaks only the HTTP protocol of docs/protocol.md.
 *
 * Round trips: results ride along with the next claim when one is about to be sent (the
 * common case under load, when a finished task frees the slot that triggers the claim);
 * otherwise they are flushed on their own, coalesced while a flush is in flight.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { ClaimedTask, LogLine, ResultOutcome, ResultsInput, SucceededOutcomes, TaskResult } from '@taskflow/contracts';
import { TaskflowClient } from './client.ts';
import {
  LeaseLostError, RetryAfterError, TaskCancelledError, TaskflowApiError, UnrecoverableError, WorkerShutdownError,
} from './errors.ts';

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

/** The logging a worker does; pino and console-like loggers fit. */
export interface WorkerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface WorkerOptions {
  /** A client, or `url` and `apiKey` (a key with scope `worker`) to make one. */
  client?: TaskflowClient;
  url?: string;
  apiKey?: string;
  /** Queues served: names, or {name, weight} for a weighted share. */
  queues: (string | { name: string; weight?: number })[];
  /** Handlers by task type. */
  handlers: Record<string, TaskHandler>;
  /** Tasks run at once. @defaultValue 10 */
  concurrency?: number;
  /** @defaultValue `<hostname>:<pid>` */
  name?: string;
  metadata?: Record<string, unknown>;
  /** How long a claim waits for work on the server (long-poll), ms. @defaultValue 30000 */
  waitMs?: number;
  /**
   * Claim requests in flight at once. Two overlap one request's round trip (and the
   * database's commit) with the next, which matters when tasks are short. @defaultValue 2
   * (never more than concurrency + prefetch)
   */
  pipeline?: number;
  /**
   * Tasks claimed ahead of free slots and kept in a local buffer, started as slots free up.
   * Saves round trips when tasks are short (a claim then brings more than the free slots);
   * costs latency for other workers when tasks are long (buffered tasks wait here, their leases
   * renewed). @defaultValue 0
   */
  prefetch?: number;
  /** Most tasks per claim. @defaultValue (concurrency + prefetch) / pipeline (at most 1000) */
  maxBatch?: number;
  /** On stop, how long in-flight tasks may take to finish before they are aborted, ms. @defaultValue 30000 */
  shutdownGraceMs?: number;
  /** Stop gracefully on SIGTERM and SIGINT (a second signal exits at once). @defaultValue true */
  handleSignals?: boolean;
  /** @defaultValue warnings and errors to stderr */
  logger?: WorkerLogger;
}

export interface WorkerEvents {
  registered: [workerId: string];
  taskStart: [task: ClaimedTask];
  taskDone: [task: ClaimedTask, report: TaskResult];
  /** Results the service refused as stale (the task was taken over). */
  stale: [taskIds: string[]];
  error: [err: unknown];
  stopped: [];
}

interface InFlight {
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
function abortTask(e: InFlight, reason: Error): void {
  e.abortReason ??= reason;
  e.ctrl?.abort(reason);
}

/** The task's signal, made on first use (aborted at once if the task already was). */
function signalOf(e: InFlight): AbortSignal {
  if (!e.ctrl) {
    e.ctrl = new AbortController();
    if (e.abortReason) e.ctrl.abort(e.abortReason);
  }
  return e.ctrl.signal;
}

/**
 * A task's context as its handler sees it. One is made for every task, so it makes nothing
 * more until asked: the AbortController behind `signal` (with its EventTarget, half a dozen
 * objects: its constructor was 2% of a busy worker's samples, and the young-generation
 * allocation behind the rest), the `createdAt` Date and the log's array. `signal`, `createdAt`
 * and `log` are getters (on the prototype: a spread of the context leaves them out); `log` is a
 * function of its own, so `const { log } = ctx` works.
 */
class TaskRunContext implements TaskContext {
  readonly id: string;
  readonly type: string;
  readonly queue: string;
  readonly attempt: number;
  readonly attemptsLeft: number;
  readonly priority: number;
  readonly tags: readonly string[];
  readonly contentType: string | null;
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
 * A batch of results as a request body: successes with no result and no logs (the usual no-op
 * or fire-and-forget handler) go compact in `succeeded` ("41:1,42:1"), the rest in `results`.
 * `fullIndex[n]` is the batch position of `results[n]`, to map a refusal naming
 * `/body/results/n` back to its task.
 */
function reportBody(batch: readonly TaskResult[]): { body: Pick<ResultsInput, 'results' | 'succeeded'>; fullIndex: number[] } {
  const results: TaskResult[] = [];
  const fullIndex: number[] = [];
  let succeeded = '';
  batch.forEach((r, i) => {
    if (r.status === 'succeeded' && (r.result === null || r.result === undefined) && !r.logs) {
      succeeded += `${succeeded ? ',' : ''}${r.id}:${r.attempt}`;
    } else {
      results.push(r);
      fullIndex.push(i);
    }
  });
  return { body: { ...(results.length ? { results } : {}), ...(succeeded ? { succeeded } : {}) }, fullIndex };
}

/**
 * How long results wait for a claim to carry them while a claim loop waits for a good batch of
 * room. A busy worker claims again once half a batch of room is free (at 15,000 tasks/s and
 * batches of 250, about 8 ms): the linger must outlast that, or the results go alone.
 */
const RESULT_LINGER_MS = 25;

const stderrLogger: WorkerLogger = {
  info() {},
  warn: (obj, msg) => console.warn(`[taskflow worker] ${msg ?? ''}`, obj),
  error: (obj, msg) => console.error(`[taskflow worker] ${msg ?? ''}`, obj),
};

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

export class Worker extends EventEmitter<WorkerEvents> {
  readonly client: TaskflowClient;
  private readonly ownClient: boolean;
  private readonly opts: Required<Pick<WorkerOptions, 'concurrency' | 'waitMs' | 'pipeline' | 'prefetch' | 'maxBatch' | 'shutdownGraceMs' | 'handleSignals'>> & WorkerOptions;
  private readonly log: WorkerLogger;
  private id: string | undefined;
  private heartbeatMs = 5000;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  /** Every task this worker holds: running, or waiting in the prefetch buffer. */
  private readonly inFlight = new Map<string, InFlight>();
  /** Held tasks not started yet, in claim order. */
  private readonly buffer: InFlight[] = [];
  private runningCount = 0;
  private pending: TaskResult[] = [];
  /** The last `createdAt` text parsed, and its time (see createdAtMsOf). */
  private lastCreatedAt = { text: '', ms: 0 };
  /** Claim loops waiting for a free slot. */
  private readonly slotWaiters = new Set<() => void>();
  /** Slots promised to claims in flight. */
  private reserved = 0;
  private readonly claimCtrls = new Set<AbortController>();
  private recovery: Promise<boolean> | undefined;
  private readonly stopCtrl = new AbortController();
  private loop: Promise<void> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatDue = Number.POSITIVE_INFINITY;
  private flushing: Promise<void> | undefined;
  private flushQueued = false;
  private stopping: Promise<void> | undefined;
  private signalHandler: (() => void) | undefined;

  constructor(opts: WorkerOptions) {
    super();
    const concurrency = opts.concurrency ?? 10;
    const prefetch = Math.max(0, opts.prefetch ?? 0);
    const pipeline = Math.max(1, Math.min(opts.pipeline ?? 2, concurrency + prefetch));
    this.opts = {
      ...opts,
      concurrency,
      prefetch,
      pipeline,
      waitMs: opts.waitMs ?? 30_000,
      maxBatch: Math.min(opts.maxBatch ?? Math.ceil((concurrency + prefetch) / pipeline), 1000),
      shutdownGraceMs: opts.shutdownGraceMs ?? 30_000,
      handleSignals: opts.handleSignals ?? true,
    };
    if (!opts.client && !(opts.url && opts.apiKey)) throw new TypeError('Worker needs a client, or url and apiKey');
    this.ownClient = !opts.client;
    this.client = opts.client ?? new TaskflowClient({ url: opts.url!, apiKey: opts.apiKey! });
    this.log = opts.logger ?? stderrLogger;
    // An 'error' event without listeners would throw; errors are logged in any case.
    this.on('error', () => undefined);
  }

  /** The id the service gave this worker (after start). */
  get workerId(): string | undefined {
    return this.id;
  }

  /** Tasks running now (not counting the prefetch buffer). */
  get running(): number {
    return this.runningCount;
  }

  /** Registers and starts claiming. Resolves once registered. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('a worker starts once');
    await this.register();
    this.state = 'running';
    if (this.opts.handleSignals) this.installSignals();
    this.scheduleHeartbeat();
    this.loop = Promise.all(Array.from({ length: this.opts.pipeline }, () => this.claimLoop())).then(() => undefined);
  }

  /**
   * Stops gracefully: no new claims; in-flight tasks get `graceMs` to finish, then their
   * signals abort and they are handed back; results are reported; the worker deregisters.
   */
  stop(graceMs = this.opts.shutdownGraceMs): Promise<void> {
    this.stopping ??= this.shutdown(graceMs);
    return this.stopping;
  }

  private async register(): Promise<void> {
    const reg = await this.client.registerWorker({
      name: this.opts.name ?? `${hostname()}:${process.pid}`,
      queues: this.opts.queues,
      concurrency: this.opts.concurrency,
      metadata: this.opts.metadata,
    });
    this.id = reg.id;
    this.heartbeatMs = reg.heartbeatIntervalMs;
    this.emit('registered', reg.id);
  }

  // ------------------------------------------------------------------ claiming

  /** One of `pipeline` loops: claim for the free slots (with pending results), run, repeat. */
  private async claimLoop(): Promise<void> {
    let backoff = 0;
    while (this.state === 'running') {
      const free = this.opts.concurrency + this.opts.prefetch - this.inFlight.size - this.reserved;
      // With a slot idle, claim for whatever is free at once; while the buffer still feeds the
      // slots, wait until a good batch is free (fewer, larger claims, each carrying the results
      // gathered meanwhile).
      const idle = this.runningCount + this.buffer.length < this.opts.concurrency;
      if (free <= 0 || (!idle && free < Math.ceil(this.opts.maxBatch / 2))) {
        // No claim for now: results gathered so far may not wait for one indefinitely.
        if (this.pending.length > 0) this.queueFlush(true);
        await new Promise<void>((resolve) => this.slotWaiters.add(resolve));
        // Tasks finish in bursts: let the rest of this turn's finish too, so the claim carries them.
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      const want = Math.min(free, this.opts.maxBatch);
      this.reserved += want;
      const results = this.pending.splice(0, 1000);
      const report = reportBody(results);
      const ctrl = new AbortController();
      this.claimCtrls.add(ctrl);
      const usedId = this.id!;
      try {
        const out = await this.client.claim(
          usedId,
          { max: want, waitMs: this.opts.waitMs, ...report.body },
          { signal: ctrl.signal },
        );
        backoff = 0;
        this.reserved -= want;
        this.noteOutcomes(out);
        const now = Date.now();
        for (const task of out.tasks) this.run(task, now);
      } catch (err) {
        this.reserved -= want;
        this.restoreResults(err, results, report.fullIndex);
        if (this.state !== 'running') break;
        if (await this.recoverFrom(err, usedId)) continue;
        backoff = Math.min(Math.max(backoff * 2, 100), 5000);
        this.log.warn({ err: String(err), retryInMs: backoff }, 'claim failed; retrying');
        this.emit('error', err);
        await sleep(backoff, this.stopCtrl.signal);
      } finally {
        this.claimCtrls.delete(ctrl);
      }
    }
  }

  /**
   * After an error that says this worker is gone (deregistered, lost, unknown): come back.
   * `usedId` is the id the failed request was made with; one recovery at a time, shared by
   * the claim loops and the heartbeat, and none for a request made before the last one.
   */
  private recoverFrom(err: unknown, usedId = this.id): Promise<boolean> {
    if (!(err instanceof TaskflowApiError)) return Promise.resolve(false);
    const lost = err.code === 'worker_not_active' && /lost/.test(err.message);
    const gone = !lost && (err.code === 'worker_not_active' || (err.status === 404 && err.code === 'not_found') || (err.status === 409 && err.code === 'invalid_state'));
    if (!lost && !gone) return Promise.resolve(false);
    if (usedId !== this.id) return Promise.resolve(true); // already registered again meanwhile
    this.recovery ??= (lost ? this.heartbeat() : this.registerAgain()).then(() => true).finally(() => {
      this.recovery = undefined;
    });
    return this.recovery;
  }

  private async registerAgain(): Promise<void> {
    this.log.warn({ workerId: this.id }, 'the service no longer knows this worker; registering again');
    for (const e of this.inFlight.values()) this.abandon(e, new LeaseLostError(e.task.id));
    this.pending = [];
    try {
      await this.register();
    } catch (regErr) {
      this.log.error({ err: String(regErr) }, 'could not register again');
      await sleep(1000, this.stopCtrl.signal);
    }
  }

  /**
   * What becomes of results sent with a claim that failed. Refused items (400/413 naming
   * them: a result over the size limit, say) become failures and go again; after a 409 the
   * service had settled them; after a 404 the worker is unknown and they are stale anyway;
   * after anything else (network, 5xx) they go again: one already recorded comes back as a
   * harmless `duplicate`.
   */
  private restoreResults(err: unknown, results: TaskResult[], fullIndex: number[]): void {
    if (results.length === 0 || this.fixRefusedResults(err, results, fullIndex)) return;
    if (err instanceof TaskflowApiError && (err.status === 404 || err.status === 409)) return;
    this.pending.unshift(...results);
  }

  private wakeLoop(): void {
    if (this.slotWaiters.size === 0) return; // clear() allocates a new table even when empty
    for (const resolve of this.slotWaiters) resolve();
    this.slotWaiters.clear();
  }

  // ------------------------------------------------------------------ running tasks

  /** A claimed task: started now if a slot is free, else buffered (prefetch). */
  private run(task: ClaimedTask, receivedAt: number): void {
    const entry: InFlight = { task, ctrl: undefined, abortReason: undefined, logs: undefined, receivedAt, abandoned: false, started: false };
    this.inFlight.set(task.id, entry);
    // A lease shorter than the heartbeat cadence pulls the next heartbeat in.
    const due = receivedAt + Math.max(50, Math.floor(task.timeoutMs / 3));
    if (due < this.heartbeatDue && this.state === 'running') this.scheduleHeartbeat(due - Date.now());
    if (this.runningCount < this.opts.concurrency) this.startTask(entry);
    else this.buffer.push(entry);
  }

  private startTask(entry: InFlight): void {
    const { task } = entry;
    entry.started = true;
    this.runningCount++;
    const ctx = new TaskRunContext(entry, this.createdAtMsOf(task.createdAt));
    this.emit('taskStart', task);
    void this.runTask(entry, ctx);
  }

  /**
   * A task's creation time in ms. Parsing the text was 3% of a busy worker's CPU, and the tasks
   * of one batch share it: the last text parsed is kept (each context makes a Date of its own).
   */
  private createdAtMsOf(text: string): number {
    if (text !== this.lastCreatedAt.text) this.lastCreatedAt = { text, ms: Date.parse(text) };
    return this.lastCreatedAt.ms;
  }

  private startBuffered(): void {
    while (this.runningCount < this.opts.concurrency && this.buffer.length > 0 && this.state === 'running') {
      const next = this.buffer.shift()!;
      if (!next.abandoned) this.startTask(next);
    }
  }

  /**
   * Runs the handler, then frees the slot and queues the report: one async function per task,
   * with no closure or derived promise on top.
   */
  private async runTask(entry: InFlight, ctx: TaskContext): Promise<void> {
    const { task } = entry;
    let report: TaskResult;
    try {
      // Cancelled (or taken away) while it waited in the buffer: never start it.
      if (entry.abortReason) throw entry.abortReason;
      const handler = this.opts.handlers[task.type];
      if (!handler) throw new UnrecoverableError(`no handler for task type "${task.type}" in worker ${this.opts.name ?? hostname()}`);
      const payload = task.payloadBase64 !== null ? Buffer.from(task.payloadBase64, 'base64') : task.payload;
      const value = await handler(payload, ctx);
      const result = value === undefined ? null : value;
      if (typeof result === 'object' || typeof result === 'bigint') {
        try {
          JSON.stringify(result);
        } catch (err) {
          throw new UnrecoverableError(`the handler returned a result that is not JSON: ${(err as Error).message}`);
        }
      }
      const logs = entry.logs;
      report = logs
        ? { id: task.id, attempt: task.attempt, status: 'succeeded', result, logs }
        : { id: task.id, attempt: task.attempt, status: 'succeeded', result };
    } catch (err) {
      const logs = entry.logs;
      report = { id: task.id, attempt: task.attempt, ...failure(err), ...(logs ? { logs } : {}) };
    }
    this.runningCount--;
    this.inFlight.delete(task.id);
    if (!entry.abandoned) {
      this.pending.push(report);
      this.emit('taskDone', task, report);
    }
    this.startBuffered();
    // A claim loop waiting for room will claim now and carry this result; otherwise send it.
    const claimComing = this.slotWaiters.size > 0;
    this.wakeLoop();
    if (!claimComing) this.queueFlush();
  }

  private abandon(entry: InFlight, reason: Error): void {
    entry.abandoned = true;
    abortTask(entry, reason);
    if (!entry.started) this.inFlight.delete(entry.task.id); // a buffered task is simply let go
  }

  // ------------------------------------------------------------------ results

  /**
   * Sends pending results on their own, unless a claim takes them first: after this turn
   * (nothing else is coming to carry them), or after RESULT_LINGER_MS when `linger` is asked
   * for (a claim loop is waiting for a good batch of room and will carry them if it comes
   * soon enough).
   */
  private queueFlush(linger = false): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    const run = () => {
      this.flushQueued = false;
      void this.flush();
    };
    if (linger) setTimeout(run, RESULT_LINGER_MS).unref();
    else setImmediate(run);
  }

  /** Sends pending results; one request at a time, batches gathered meanwhile go next. */
  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending.length === 0 || !this.id) return Promise.resolve();
    this.flushing = (async () => {
      let backoff = 100;
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, 1000);
        const report = reportBody(batch);
        try {
          const out = await this.client.call('reportResults', { params: { id: this.id! }, body: report.body });
          this.noteOutcomes(out);
          backoff = 100;
          // While running, what finished meanwhile goes with a claim or the next queued flush.
          if (this.state === 'running') break;
        } catch (err) {
          if (this.fixRefusedResults(err, batch, report.fullIndex)) continue;
          if (err instanceof TaskflowApiError && err.status < 500) {
            this.log.error({ err: String(err), count: batch.length }, 'results refused; the service will re-run those tasks');
            continue;
          }
          this.pending.unshift(...batch);
          if (this.state === 'stopped') break;
          this.log.warn({ err: String(err), retryInMs: backoff }, 'reporting results failed; retrying');
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 5000);
        }
      }
    })().finally(() => {
      this.flushing = undefined;
      if (this.pending.length > 0 && this.state === 'running') this.queueFlush(true);
    });
    return this.flushing;
  }

  /**
   * A batch refused for some of its items (a result over the size limit, say): those items
   * become failures naming the reason, and the batch goes again.
   */
  private fixRefusedResults(err: unknown, batch: TaskResult[], fullIndex: number[]): boolean {
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
    this.pending.unshift(...batch);
    return true;
  }

  /** Stale results are worth a warning (the task was taken over); duplicates are retried reports. */
  private noteOutcomes(out: { results?: ResultOutcome[]; succeeded?: SucceededOutcomes }): void {
    const stale = [...(out.results ?? []).filter((o) => o.status === 'stale').map((o) => o.id), ...(out.succeeded?.stale ?? [])];
    if (stale.length > 0) {
      this.log.warn({ tasks: stale }, 'results refused as stale: those tasks were taken over (lease lost)');
      this.emit('stale', stale);
    }
  }

  // ------------------------------------------------------------------ heartbeats

  /**
   * Heartbeats every `heartbeatIntervalMs`, or more often while a task with a shorter lease
   * runs (a third of its timeout), so no lease runs out between two heartbeats.
   */
  private heartbeatDelay(): number {
    let delay = this.heartbeatMs;
    for (const e of this.inFlight.values()) delay = Math.min(delay, Math.max(50, Math.floor(e.task.timeoutMs / 3)));
    return delay;
  }

  private scheduleHeartbeat(delay = this.heartbeatDelay()): void {
    clearTimeout(this.heartbeatTimer);
    this.heartbeatDue = Date.now() + delay;
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatDue = Number.POSITIVE_INFINITY;
      void this.heartbeat().finally(() => {
        if (this.state === 'running' || this.state === 'stopping') this.scheduleHeartbeat();
      });
    }, delay);
    this.heartbeatTimer.unref();
  }

  /** Renews leases; aborts tasks that were cancelled or are no longer ours. */
  private async heartbeat(): Promise<void> {
    if (!this.id) return;
    const sentAt = Date.now();
    const running = [...this.inFlight.values()].filter((e) => !e.abandoned).map((e) => e.task.id);
    try {
      const hb = await this.client.heartbeat(this.id, { running });
      for (const id of hb.cancel) {
        const e = this.inFlight.get(id);
        if (e) abortTask(e, new TaskCancelledError(id));
      }
      const held = new Set(hb.held);
      for (const e of this.inFlight.values()) {
        if (!held.has(e.task.id) && e.receivedAt < sentAt && !e.abandoned) this.abandon(e, new LeaseLostError(e.task.id));
      }
    } catch (err) {
      if (this.state === 'running' && (await this.recoverFrom(err))) return;
      this.log.warn({ err: String(err) }, 'heartbeat failed');
      this.emit('error', err);
    }
  }

  // ------------------------------------------------------------------ shutdown

  private installSignals(): void {
    let count = 0;
    this.signalHandler = () => {
      count++;
      if (count > 1) {
        this.log.warn({}, 'second signal: exiting without waiting');
        process.exit(130);
      }
      this.log.info({}, 'signal received: finishing in-flight tasks, then stopping');
      void this.stop();
    };
    process.on('SIGTERM', this.signalHandler);
    process.on('SIGINT', this.signalHandler);
  }

  private async shutdown(graceMs: number): Promise<void> {
    if (this.state === 'new') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    this.stopCtrl.abort();
    for (const ctrl of this.claimCtrls) ctrl.abort(new WorkerShutdownError());
    this.wakeLoop();
    await this.loop;
    // Buffered tasks never started: give them back now, without using up their attempts.
    for (const e of this.buffer.splice(0)) {
      this.abandon(e, new WorkerShutdownError());
      this.pending.push({ id: e.task.id, attempt: e.task.attempt, status: 'released' });
    }
    if (this.runningCount > 0) {
      await Promise.race([
        new Promise<void>((resolve) => {
          const check = () => (this.runningCount === 0 ? resolve() : setTimeout(check, 10).unref());
          check();
        }),
        sleep(graceMs),
      ]);
      for (const e of this.inFlight.values()) this.abandon(e, new WorkerShutdownError());
    }
    await this.flush();
    clearTimeout(this.heartbeatTimer);
    this.state = 'stopped';
    if (this.id) {
      try {
        await this.client.deregisterWorker(this.id);
      } catch (err) {
        this.log.warn({ err: String(err) }, 'deregister failed; the service will notice the worker is gone within its TTL');
      }
    }
    if (this.signalHandler) {
      process.off('SIGTERM', this.signalHandler);
      process.off('SIGINT', this.signalHandler);
    }
    if (this.ownClient) await this.client.close();
    this.emit('stopped');
  }
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
