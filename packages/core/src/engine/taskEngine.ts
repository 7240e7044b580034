/**
 * The engine's core front: submitting, claiming and settling tasks, workers, the maintenance
 * duties and the task and dead-letter reads and changes. `Engine` (engine.ts) adds the
 * capabilities built on them (workflows, queue settings, schedules). Each method hands over to
 * the module of its concern with the state they share in one EngineContext.
 */
import type { Database, Executor } from '../db/types.ts';
import { databaseClock, type Clock } from '../clock.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from './options.ts';
import { EngineContext, type EngineEvents } from './context.ts';
import type { EngineTelemetry } from './telemetry.ts';
import { enqueue, type EnqueueResult } from './enqueue.ts';
import { claim } from './claim.ts';
import { releaseClaimed, settle, settleAndClaim } from './settle.ts';
import * as workers from './workers.ts';
import * as duties from './duties.ts';
import * as admin from './admin.ts';
import { readStats, refreshStats, type StatsSnapshot } from './stats.ts';
import { checkDatabase, type DatabaseHealth } from './health.ts';
import { enqueueWithParents, recountBlocked } from './dependencies.ts';
import type {
  Attempt, ClaimedTask, HeartbeatResult, QueueWeight, SettleOutcome, Task, TaskFilter, TaskInput, TaskResultReport, WorkerInfo,
  WorkerInput, WorkerState,
} from './types.ts';

export interface EngineConfig {
  db: Database;
  options?: Partial<EngineOptions>;
  /** @defaultValue database time */
  clock?: Clock;
  logger?: Logger;
  /** Told what the engine did, from rows its statements return anyway (metrics). */
  telemetry?: EngineTelemetry;
}

/*
 * The methods return their module's promise without `async`/`await` of their own: a call costs
 * no extra turn of the microtask queue for being made through the front.
 */
export class TaskEngine {
  readonly db: Database;
  readonly options: EngineOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  protected readonly ctx: EngineContext;

  constructor(config: EngineConfig) {
    this.db = config.db;
    this.options = { ...DEFAULT_ENGINE_OPTIONS, ...config.options };
    this.clock = config.clock ?? databaseClock;
    this.logger = config.logger ?? silentLogger;
    this.ctx = new EngineContext(this.db, this.options, this.clock, this.logger, config.telemetry);
  }

  /** Subscribes to engine events; returns the unsubscribe function. */
  on(events: EngineEvents): () => void {
    return this.ctx.on(events);
  }

  // ---------------------------------------------------------------- enqueue

  /**
   * Inserts tasks in one statement. A task whose idempotency key already exists in its queue
   * is not inserted; the original is returned with `created: false`. Pass `executor` to
   * enqueue inside your own transaction (listeners are told at once, so a waiting worker may
   * look before your commit and fall back to its poll interval).
   */
  enqueue(inputs: readonly TaskInput[], executor: Executor = this.db): Promise<EnqueueResult[]> {
    if (inputs.some((i) => i.dependsOn !== undefined && i.dependsOn.length > 0)) {
      if (executor !== this.db) throw new Error('a task with dependsOn is enqueued in a transaction of its own, not in the caller\'s');
      return enqueueWithParents(this.ctx, inputs);
    }
    return enqueue(this.ctx, inputs, executor);
  }

  // ---------------------------------------------------------------- claim and settle

  /**
   * Leases up to `max` ready tasks to a worker, from its queues in weighted random order, one
   * atomic claim statement per queue until the batch is full, each taking at most 1,000 (the
   * HTTP API's largest `max`: CLAIM_MAX in sql/tasks/claim.ts). Returns [] when the worker is
   * not active or serves none of the queues (see `workerState` to tell why). Claims commit
   * without waiting for the WAL flush (`db.relaxed`): should PostgreSQL crash right after, the
   * claim is undone and the task is queued again and runs again (at least once, never lost).
   */
  claim(workerId: string, queues: readonly QueueWeight[], max: number): Promise<ClaimedTask[]> {
    return claim(this.ctx, workerId, queues, max);
  }

  /**
   * Settles a batch of results from one worker: one statement for the successes, one for the
   * failures, one for the releases. Each report is `accepted`, `duplicate` (this worker had already settled that
   * attempt: a retried report) or `stale` (the attempt is not the current one held by this
   * worker, or it repeats an earlier report of the batch); only accepted ones change anything.
   */
  settle(workerId: string, reports: readonly TaskResultReport[]): Promise<SettleOutcome[]> {
    return settle(this.ctx, workerId, reports);
  }

  /**
   * Settles a worker's results, then claims its next tasks (up to `max`), as `settle` and
   * `claim` do, in as few round trips as possible: the successes and the claim of the first
   * queue share one statement (one commit); failures, rare, go first on their own; only a batch
   * not yet full moves on to the worker's other queues.
   */
  settleAndClaim(
    workerId: string, reports: readonly TaskResultReport[], queues: readonly QueueWeight[], max: number,
  ): Promise<{ outcomes: SettleOutcome[]; tasks: ClaimedTask[] }> {
    return settleAndClaim(this.ctx, workerId, reports, queues, max);
  }

  /**
   * Hands back claimed tasks that never reached their worker (its connection closed before
   * the answer went out): each attempt ends `abandoned`, the task is queued again at once and
   * the attempt does not count against its budget.
   */
  releaseClaimed(workerId: string, tasks: readonly { id: string; attempt: number }[]): Promise<number> {
    return releaseClaimed(this.ctx, workerId, tasks);
  }

  // ---------------------------------------------------------------- workers

  /** Registers a worker; it is alive for `workerTtlMs` unless it heartbeats. */
  registerWorker(input: WorkerInput): Promise<WorkerInfo> {
    return workers.registerWorker(this.ctx, input);
  }

  /**
   * Keeps a worker alive and renews the leases of the tasks it is running (`running`, or all
   * it holds when omitted). A worker marked lost comes back to active (its old tasks were
   * requeued; their results will be refused). Throws NotFoundError for an unknown worker and
   * InvalidStateError for a deregistered one.
   */
  heartbeat(workerId: string, running?: readonly string[]): Promise<HeartbeatResult> {
    return workers.heartbeat(this.ctx, workerId, running);
  }

  /**
   * Deregisters a worker: it is stopped, and what it still holds is handed back at once, each
   * attempt ending `abandoned` and the task queued again at once. `started` lists the tasks the
   * worker started and did not report (with their attempts): those use up their attempt (dead
   * if it was the last). Every other task it holds never ran (a claim answer it never saw) and
   * keeps its attempt, as a release does. Without `started`, every held task counts as started.
   * Idempotent.
   */
  deregisterWorker(workerId: string, started?: readonly { id: string; attempt: number }[]): Promise<{ released: number }> {
    return workers.deregisterWorker(this.ctx, workerId, started);
  }

  /** The worker's state; NotFoundError if unknown. */
  workerState(workerId: string, executor: Executor = this.db): Promise<WorkerState> {
    return workers.workerState(workerId, executor);
  }

  getWorker(workerId: string): Promise<WorkerInfo> {
    return workers.getWorker(this.ctx, workerId);
  }

  /** Workers, newest first; `after` is the last worker of the previous page. */
  listWorkers(filter: { states?: WorkerState[]; after?: { registeredAt: Date; id: string }; limit: number }): Promise<WorkerInfo[]> {
    return workers.listWorkers(this.ctx, filter);
  }

  // ---------------------------------------------------------------- maintenance duties

  /**
   * How many task row versions this engine's claims and settlements replaced since the last
   * call (each leaves one behind, with its entry in the ready index, until a vacuum).
   */
  takeChurn(): number {
    return this.ctx.takeChurn();
  }

  /** VACUUMs the tasks table (see Maintenance: PGlite has no autovacuum). */
  vacuumTasks(): Promise<void> {
    return duties.vacuumTasks(this.ctx);
  }

  /** Turns expired leases into failed attempts (outcome `lease_expired`). Returns how many. */
  rescueExpired(limit = 1000): Promise<number> {
    return duties.rescueExpired(this.ctx, limit);
  }

  /** Marks workers past their heartbeat deadline lost and requeues their tasks at once. */
  reapLostWorkers(limit = 100): Promise<{ workers: number; tasks: number }> {
    return duties.reapLostWorkers(this.ctx, limit);
  }

  /** Moves due scheduled and retrying tasks to `queued`. Returns how many. */
  promoteDue(limit = 1000): Promise<number> {
    return duties.promoteDue(this.ctx, limit);
  }

  /**
   * Cancels waiting tasks whose deadline (`expiresAt`) has come, with reason `expired`, oldest
   * deadline first. Returns how many.
   */
  expireDue(limit = 1000): Promise<number> {
    return duties.expireDue(this.ctx, limit);
  }

  /**
   * Re-counts the parents of blocked tasks that depend on tasks by id (outside workflows):
   * releases those a node that died mid-submit left blocked. Returns how many it released.
   */
  recountBlocked(batch = 1000): Promise<number> {
    return recountBlocked(this.ctx, batch);
  }

  /** Milliseconds until the next scheduled or retrying task is due, or null if none. */
  nextDueInMs(): Promise<number | null> {
    return duties.nextDueInMs(this.ctx);
  }

  /**
   * Refreshes the queue gauges' snapshot if no node did within `periodMs` and no other node is
   * at it; returns whether this call did. Safe on every node at once (one counts per period).
   */
  refreshStats(periodMs: number): Promise<boolean> {
    return refreshStats(this.ctx, periodMs);
  }

  /** Reaches the database: how long one statement took, and the schema's version against this build's. */
  checkDatabase(): Promise<DatabaseHealth> {
    return checkDatabase(this.ctx);
  }

  /** The queue gauges' snapshot, or null before its first refresh. */
  readStats(): Promise<StatsSnapshot | null> {
    return readStats(this.ctx);
  }

  // ---------------------------------------------------------------- tasks

  getTask(id: string): Promise<Task> {
    return admin.getTask(this.ctx, id);
  }

  /** Every attempt of a task, oldest first, including the running one. */
  getAttempts(id: string): Promise<Attempt[]> {
    return admin.getAttempts(this.ctx, id);
  }

  /** A page of tasks, newest first. */
  listTasks(filter: TaskFilter): Promise<Task[]> {
    return admin.listTasks(this.ctx, filter);
  }

  /** Changes priority and/or run time of a task that is not running or finished. */
  updateTask(id: string, change: { priority?: number; runAt?: Date }): Promise<Task> {
    return admin.updateTask(this.ctx, id, change);
  }

  /**
   * Cancels a task: at once if it is not running; a running one is flagged and its worker is
   * told at its next heartbeat (the handler sees an aborted signal). Terminal tasks refuse.
   */
  cancelTask(id: string): Promise<Task> {
    return admin.cancelTask(this.ctx, id);
  }

  /** Runs a dead or cancelled task again, with a fresh retry budget. */
  retryTask(id: string): Promise<Task> {
    return admin.retryTask(this.ctx, id);
  }

  // ---------------------------------------------------------------- dead-letter queue

  /** Requeues dead tasks by id; reports each. */
  requeueDead(ids: readonly string[]): Promise<admin.RequeueOutcome[]> {
    return admin.requeueDead(this.ctx, ids);
  }

  /** Requeues every dead task of a queue (and type). Returns how many. */
  requeueDeadWhere(filter: { queue?: string; type?: string }): Promise<number> {
    return admin.requeueDeadWhere(this.ctx, filter);
  }

  /** Deletes dead tasks (and their attempts), optionally of one queue. Returns how many. */
  purgeDead(filter: { queue?: string }): Promise<number> {
    return admin.purgeDead(this.ctx, filter);
  }

}
