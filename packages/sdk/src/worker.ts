/**
 * The reference worker: registers, heartbeats, claims in batches sized to its free slots
 * (long-poll), runs handlers concurrently, reports results in batches, and shuts down
 * gracefully. It speaks only the HTTP protocol of docs/protocol.md.
 *
 * This module is the front: the claim loops, the slots and the prefetch buffer. Its parts:
 * context.ts (a held task and its handler's context), results.ts (results on their way to the
 * service), heartbeat.ts (lease renewal, cancellations), recovery.ts (coming back when the
 * service says the worker is lost or stopped), lifecycle.ts (state, signals, stop).
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { ClaimedTask, TaskAttempt, TaskResult } from '@taskflow/contracts';
import { TaskflowClient } from './client.ts';
import { LeaseLostError, UnrecoverableError, WorkerShutdownError } from './errors.ts';
import { abandonTask, CreatedAtCache, TaskRunContext, type InFlight, type TaskContext } from './context.ts';
import { failure, reportBody, ResultQueue } from './results.ts';
import { Heartbeat } from './heartbeat.ts';
import { Recovery } from './recovery.ts';
import { deregister, idleWithin, serviceWait, sleep, trapSignals, WorkerSession } from './lifecycle.ts';
import { AdaptivePrefetch } from './prefetch.ts';
import { resolveOptions, stderrLogger, type ResolvedOptions, type WorkerLogger, type WorkerOptions } from './options.ts';
import { context as otelContext } from '@opentelemetry/api';
import { endSpan, startProcessSpan, traceIdOf } from './tracing.ts';

export type { TaskContext, TaskHandler } from './context.ts';
export type { WorkerLogger, WorkerOptions } from './options.ts';
export type { WorkerTracingOptions } from './tracing.ts';
export { failure } from './results.ts';

export interface WorkerEvents {
  registered: [workerId: string];
  taskStart: [task: ClaimedTask];
  taskDone: [task: ClaimedTask, report: TaskResult];
  /** Results the service refused as stale (the task was taken over). */
  stale: [taskIds: string[]];
  error: [err: unknown];
  stopped: [];
}

/**
 * The worker's room for tasks: `concurrency` slots that run them, a prefetch buffer that holds
 * claimed tasks until a slot frees up, and the room promised to claims in flight.
 */
class Slots {
  /** Every task this worker holds: running, or waiting in the prefetch buffer. */
  readonly held = new Map<string, InFlight>();
  /** Held tasks not started yet, in claim order. */
  readonly buffer: InFlight[] = [];
  running = 0;
  /** Slots promised to claims in flight. */
  reserved = 0;
  /** Claim loops waiting for a free slot. */
  readonly #waiters = new Set<() => void>();
  readonly #concurrency: number;
  /** Tasks claimed ahead of the free slots: fixed, or adapted (prefetch.ts). */
  readonly #prefetch: number | AdaptivePrefetch;

  constructor(concurrency: number, prefetch: number | AdaptivePrefetch) {
    this.#concurrency = concurrency;
    this.#prefetch = prefetch;
  }

  /** Slots and buffer together, now. */
  capacity(): number {
    return this.#concurrency + (typeof this.#prefetch === 'number' ? this.#prefetch : this.#prefetch.value);
  }

  /** Room a claim may take now. */
  free(): number {
    return this.capacity() - this.held.size - this.reserved;
  }

  /** A slot has nothing to run, neither a running task nor a buffered one. */
  idle(): boolean {
    return this.running + this.buffer.length < this.#concurrency;
  }

  /** A task can start now. */
  canStart(): boolean {
    return this.running < this.#concurrency;
  }

  /** A claim loop waits for room: it claims once woken. */
  get waited(): boolean {
    return this.#waiters.size > 0;
  }

  /** Resolves at the next `wake`. */
  waitForRoom(): Promise<void> {
    return new Promise<void>((resolve) => this.#waiters.add(resolve));
  }

  wake(): void {
    if (this.#waiters.size === 0) return; // clear() allocates a new table even when empty
    for (const resolve of this.#waiters) resolve();
    this.#waiters.clear();
  }
}

export class Worker extends EventEmitter<WorkerEvents> {
  readonly client: TaskflowClient;
  private readonly ownClient: boolean;
  private readonly opts: ResolvedOptions;
  private readonly log: WorkerLogger;
  private readonly session = new WorkerSession();
  private readonly slots: Slots;
  /** The adaptive prefetch (`prefetch: 'auto'`, the default); undefined when fixed. */
  private readonly adaptive: AdaptivePrefetch | undefined;
  private readonly results: ResultQueue;
  private readonly heartbeat: Heartbeat;
  private readonly createdAt = new CreatedAtCache();
  private readonly recovery: Recovery;
  private readonly claimCtrls = new Set<AbortController>();
  /**
   * The last claim answered brought all it asked for: tasks are waiting, so a claim in flight
   * will be answered at once rather than wait for work (long-poll), and another will follow it.
   */
  private backlog = false;
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private removeSignalHandlers: (() => void) | undefined;

  constructor(opts: WorkerOptions) {
    super();
    this.opts = resolveOptions(opts);
    if (!opts.client && !(opts.url && opts.apiKey)) throw new TypeError('Worker needs a client, or url and apiKey');
    this.ownClient = !opts.client;
    this.client = opts.client ?? new TaskflowClient({ url: opts.url!, apiKey: opts.apiKey! });
    this.log = opts.logger ?? stderrLogger;
    this.adaptive = this.opts.prefetch === 'auto' ? new AdaptivePrefetch(this.opts.concurrency) : undefined;
    this.slots = new Slots(this.opts.concurrency, this.adaptive ?? (this.opts.prefetch as number));
    const { client, session, log } = this;
    this.results = new ResultQueue({ client, session, log, events: this });
    this.recovery = new Recovery({ session, log, heartbeat: () => this.heartbeat.send(), register: () => this.registerAgain() });
    this.heartbeat = new Heartbeat({
      client, session, log, events: this, held: this.slots.held, unreported: () => this.results.waiting,
      recover: (err, usedId) => this.recovery.recover(err, usedId),
    });
    // An 'error' event without listeners would throw; errors are logged in any case.
    this.on('error', () => undefined);
  }

  /** The id the service gave this worker (after start). */
  get workerId(): string | undefined {
    return this.session.id;
  }

  /** Tasks running now (not counting the prefetch buffer). */
  get running(): number {
    return this.slots.running;
  }

  /** Tasks claimed and waiting in the prefetch buffer for a slot. */
  get prefetched(): number {
    return this.slots.buffer.length;
  }

  /** The prefetch now: tasks the worker may claim ahead of its free slots (adapted, with `prefetch: 'auto'`). */
  get prefetch(): number {
    return this.slots.capacity() - this.opts.concurrency;
  }

  /** Most tasks one claim asks for now. */
  private maxBatch(): number {
    return this.opts.maxBatch ?? Math.min(1000, Math.ceil(this.slots.capacity() / this.opts.pipeline));
  }

  /** Registers and starts claiming. Resolves once registered. */
  async start(): Promise<void> {
    if (this.session.state !== 'new') throw new Error('a worker starts once');
    await this.register();
    this.session.state = 'running';
    if (this.opts.handleSignals) this.removeSignalHandlers = trapSignals(this.log, () => void this.stop());
    this.heartbeat.schedule();
    this.loop = Promise.all(Array.from({ length: this.opts.pipeline }, () => this.claimLoop())).then(() => undefined);
  }

  /**
   * Stops gracefully: no new claims (claims in flight are aborted); buffered tasks are handed
   * back unstarted; in-flight tasks get `graceMs` to finish, then their signals abort and they
   * are handed back; results are reported; the worker deregisters, listing the tasks it started
   * and did not report, so the service refunds the attempt of any other task it still holds.
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
    this.session.id = reg.id;
    this.heartbeat.intervalMs = reg.heartbeatIntervalMs;
    this.emit('registered', reg.id);
  }

  // ------------------------------------------------------------------ claiming

  /** One of `pipeline` loops: claim for the free slots (with pending results), run, repeat. */
  private async claimLoop(): Promise<void> {
    const { slots, results, session } = this;
    let backoff = 0;
    while (session.state === 'running') {
      const free = slots.free();
      // With a slot idle, claim for whatever is free at once; while the buffer still feeds the
      // slots, wait until a good batch is free (fewer, larger claims, each carrying the results
      // gathered meanwhile).
      const maxBatch = this.maxBatch();
      if (free <= 0 || (!slots.idle() && free < Math.ceil(maxBatch / 2))) {
        // No claim for now: results gathered so far may not wait for one indefinitely.
        if (results.size > 0) results.queueFlush(true);
        await slots.waitForRoom();
        // Tasks finish in bursts: let the rest of this turn's finish too, so the claim carries them.
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      const want = Math.min(free, maxBatch);
      slots.reserved += want;
      const batch = results.take();
      const report = reportBody(batch);
      const ctrl = new AbortController();
      this.claimCtrls.add(ctrl);
      const usedId = session.id!;
      try {
        const sentAt = performance.now();
        const out = await this.client.claim(usedId, { max: want, waitMs: this.opts.waitMs, ...report.body }, { signal: ctrl.signal });
        const roundTripMs = performance.now() - sentAt;
        backoff = 0;
        slots.reserved -= want;
        results.noteOutcomes(out);
        this.backlog = out.tasks.length >= want;
        const now = Date.now();
        let leaseMs: number | undefined;
        for (const task of out.tasks) {
          if (leaseMs === undefined || task.timeoutMs < leaseMs) leaseMs = task.timeoutMs;
          this.run(task, now);
        }
        this.adaptive?.claimed(want, out.tasks.length, roundTripMs, leaseMs);
      } catch (err) {
        slots.reserved -= want;
        this.backlog = false;
        results.restore(err, batch, report.fullIndex);
        if (session.state !== 'running') break;
        if (await this.recovery.recover(err, usedId)) continue;
        backoff = Math.min(Math.max(backoff * 2, 100), 5000);
        const wait = serviceWait(err, backoff);
        this.log.warn({ err: String(err), retryInMs: wait }, 'claim failed; retrying');
        this.emit('error', err);
        await sleep(wait, session.stopSignal);
      } finally {
        this.claimCtrls.delete(ctrl);
      }
    }
  }

  /** The recovery's last step (recovery.ts): give up what the old id held, and register under a new one. */
  private async registerAgain(): Promise<void> {
    for (const e of this.slots.held.values()) abandonTask(this.slots.held, e, new LeaseLostError(e.task.id));
    this.results.clear();
    await this.register();
  }

  // ------------------------------------------------------------------ running tasks
  // The per-task path (run, startTask, runTask) is the worker's hot path: whatever is added
  // here is paid once per task (`cd bench && npm run perf` shows the worker's CPU).

  /** A claimed task: started now if a slot is free, else buffered (prefetch). */
  private run(task: ClaimedTask, receivedAt: number): void {
    const entry: InFlight = { task, ctrl: undefined, abortReason: undefined, logs: undefined, receivedAt, abandoned: false, started: false };
    this.slots.held.set(task.id, entry);
    this.heartbeat.leaseReceived(receivedAt, task.timeoutMs);
    if (this.slots.canStart()) this.startTask(entry);
    else this.slots.buffer.push(entry);
  }

  private startTask(entry: InFlight): void {
    const { task } = entry;
    entry.started = true;
    this.slots.running++;
    const ctx = new TaskRunContext(entry, this.createdAt.msOf(task.createdAt));
    this.emit('taskStart', task);
    void this.runTask(entry, ctx);
  }

  private startBuffered(): void {
    const { slots } = this;
    while (slots.canStart() && slots.buffer.length > 0 && this.session.state === 'running') {
      const next = slots.buffer.shift()!;
      if (!next.abandoned) this.startTask(next);
    }
  }

  /**
   * Runs the handler, then frees the slot and queues the report: one async function per task,
   * with no closure or derived promise on top.
   */
  private async runTask(entry: InFlight, ctx: TaskContext): Promise<void> {
    const { task } = entry;
    const startedAt = this.adaptive ? performance.now() : 0;
    let report: TaskResult;
    // The attempt's `process` span (a no-op without an OpenTelemetry SDK): see tracing.ts.
    const trace = startProcessSpan(task, this.session.id, this.opts.tracing?.processParent ?? 'link');
    let failed: unknown;
    try {
      // Cancelled (or taken away) while it waited in the buffer: never start it.
      if (entry.abortReason) throw entry.abortReason;
      const handler = this.opts.handlers[task.type];
      if (!handler) throw new UnrecoverableError(`no handler for task type "${task.type}" in worker ${this.opts.name ?? hostname()}`);
      const payload = task.payloadBase64 !== null ? Buffer.from(task.payloadBase64, 'base64') : task.payload;
      // In the span's context; in the worker's own (no context switch) when it adds nothing.
      const value = await (trace.ctx === otelContext.active() ? handler(payload, ctx) : otelContext.with(trace.ctx, handler, undefined, payload, ctx));
      const result = value === undefined ? null : value;
      if ((typeof result === 'object' && result !== null) || typeof result === 'bigint') {
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
      failed = err;
      const logs = entry.logs;
      report = { id: task.id, attempt: task.attempt, ...failure(err), ...(logs ? { logs } : {}) };
    }
    const traceId = traceIdOf(trace.span);
    if (traceId !== undefined) report.traceId = traceId;
    endSpan(trace.span, failed);
    const { slots } = this;
    this.adaptive?.taskDone(performance.now() - startedAt);
    slots.running--;
    slots.held.delete(task.id);
    if (!entry.abandoned) {
      this.results.add(report);
      this.emit('taskDone', task, report);
    }
    this.startBuffered();
    // A claim loop waiting for room will claim now and carry this result. While a claim is in
    // flight on a backlog, it is answered soon and the next claim carries the result: it lingers
    // for that claim (RESULT_LINGER_MS at most) rather than go in a request of its own. Otherwise
    // (no claim coming, or one waiting for work) it goes at once.
    const claimComing = slots.waited;
    slots.wake();
    if (!claimComing) this.results.queueFlush(this.backlog && this.claimCtrls.size > 0);
  }

  // ------------------------------------------------------------------ shutdown

  private async shutdown(graceMs: number): Promise<void> {
    const { session, slots } = this;
    if (session.state === 'new') {
      session.state = 'stopped';
      return;
    }
    session.beginStop();
    for (const ctrl of this.claimCtrls) ctrl.abort(new WorkerShutdownError());
    slots.wake();
    await this.loop;
    // Buffered tasks never started: give them back now, without using up their attempts.
    for (const e of slots.buffer.splice(0)) {
      abandonTask(slots.held, e, new WorkerShutdownError());
      this.results.add({ id: e.task.id, attempt: e.task.attempt, status: 'released' });
    }
    // The tasks that ran and are not reported, for the deregistration: the service uses up their
    // attempts, and refunds those of every other task this worker still holds (the answer of a
    // claim aborted above may have leased tasks this worker never saw).
    const started: TaskAttempt[] = [];
    if (slots.running > 0) {
      await idleWithin(graceMs, () => slots.running === 0);
      for (const e of slots.held.values()) {
        if (e.started) started.push({ id: e.task.id, attempt: e.task.attempt });
        abandonTask(slots.held, e, new WorkerShutdownError());
      }
    }
    // Heartbeats go on meanwhile: they keep the leases of the tasks whose results wait.
    const unreported = await this.results.drain(this.opts.shutdownReportMs);
    if (unreported > 0) {
      this.log.error({ count: unreported, waitedMs: this.opts.shutdownReportMs }, `${unreported} results not reported: the service did not take them in time and will run those tasks again`);
    }
    for (const r of this.results.waiting) if (r.status !== 'released') started.push({ id: r.id, attempt: r.attempt });
    this.heartbeat.stop();
    session.state = 'stopped';
    if (session.id) await deregister(this.client, this.log, session.id, started);
    this.removeSignalHandlers?.();
    if (this.ownClient) await this.client.close();
    this.emit('stopped');
  }
}
