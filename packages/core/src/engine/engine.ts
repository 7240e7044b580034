/**
 * The engine: the one module that moves tasks between states. Every transition is one
 * statement (or one transaction) from `sql/`; nothing else in Taskflow writes task state.
 * See docs/state-machine.md.
 */
import type { Database, Executor } from '../db/types.ts';
import { databaseClock, type Clock } from '../clock.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { InvalidStateError, NotFoundError, mapStorageError, TaskflowError } from '../errors.ts';
import * as T from '../sql/tasks/index.ts';
import * as W from '../sql/workers.ts';
import * as Q from '../sql/queues.ts';
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from './options.ts';
import { toAttempt, toClaimedTask, toQueue, toTask, toWorker } from './rows.ts';
import { isTaskId, isUuid } from './ids.ts';
import { weightedOrder } from './weights.ts';
import { insertColumns, type ResolvedInput } from './insertColumns.ts';
import type {
  Attempt, ClaimedTask, HeartbeatResult, QueueInfo, QueueWeight, SettleOutcome, Task, TaskFilter,
  TaskInput, TaskResultReport, TaskState, WorkerInfo, WorkerInput, WorkerState,
} from './types.ts';

/** Signals the engine raises after a change is committed. */
export interface EngineEvents {
  /** Tasks became claimable in these queues. */
  ready?(queues: string[]): void;
  /** A task becomes due in `inMs` milliseconds (scheduled or retrying). */
  scheduled?(inMs: number): void;
}

export interface EngineConfig {
  db: Database;
  options?: Partial<EngineOptions>;
  /** @defaultValue database time */
  clock?: Clock;
  logger?: Logger;
}

export interface EnqueueResult {
  /** The task (built on first read: a batch answer needs only `ref`). */
  readonly task: Task;
  /** What a batch answer tells a producer about its task. */
  readonly ref: TaskRef;
  /** false when an idempotency key matched an existing task, which is returned instead. */
  readonly created: boolean;
}

/** A task as a submission's answer refers to it: enough to find it again. Times in RFC 3339. */
export interface TaskRef {
  id: string;
  queue: string;
  type: string;
  state: TaskState;
  priority: number;
  runAt: string;
  idempotencyKey: string | null;
  createdAt: string;
}

/** An inserted task: its reference from the row as returned, the full task only when read. */
class Inserted implements EnqueueResult {
  readonly created = true;
  readonly ref: TaskRef;
  private readonly input: ResolvedInput;
  private readonly row: Row;
  private built: Task | undefined;
  constructor(input: ResolvedInput, row: Row) {
    this.input = input;
    this.row = row;
    this.ref = {
      id: String(row.id), queue: input.queue, type: input.type, state: row.state, priority: input.priority,
      runAt: row.run_at, idempotencyKey: input.idempotencyKey ?? null, createdAt: row.created_at,
    };
  }
  get task(): Task {
    this.built ??= insertedTask(this.input, this.row);
    return this.built;
  }
}

/** An existing task an idempotency key led to. */
function existing(task: Task): EnqueueResult {
  return {
    created: false,
    task,
    ref: {
      id: task.id, queue: task.queue, type: task.type, state: task.state, priority: task.priority,
      runAt: task.runAt.toISOString(), idempotencyKey: task.idempotencyKey, createdAt: task.createdAt.toISOString(),
    },
  };
}

export type RequeueOutcome = 'requeued' | 'not_found' | 'invalid_state';

type Row = Record<string, any>;

export class Engine {
  readonly db: Database;
  readonly options: EngineOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  private readonly listeners = new Set<EngineEvents>();
  /**
   * Queues this engine has seen committed (queues are never deleted), so that inserts into them
   * skip the queue upsert. Bounded: past KNOWN_QUEUES_MAX names it starts again.
   */
  private readonly knownQueues = new Set<string>();
  /** The insert statements' parameters after the rows and the clock: the defaults a lean row leaves out. */
  private readonly insertDefaults: readonly unknown[];
  /** Task row versions replaced by claims and settlements since `takeChurn` (see Maintenance's vacuum). */
  private churn = 0;

  constructor(config: EngineConfig) {
    this.db = config.db;
    this.options = { ...DEFAULT_ENGINE_OPTIONS, ...config.options };
    const o = this.options;
    this.insertDefaults = [o.defaultMaxAttempts, JSON.stringify(o.defaultBackoff), o.defaultTimeoutMs];
    this.clock = config.clock ?? databaseClock;
    this.logger = config.logger ?? silentLogger;
  }

  /** Subscribes to engine events; returns the unsubscribe function. */
  on(events: EngineEvents): () => void {
    this.listeners.add(events);
    return () => this.listeners.delete(events);
  }

  private now(): Date | null {
    return this.clock.now();
  }

  private rememberQueue(queue: string): void {
    if (this.knownQueues.has(queue)) return;
    if (this.knownQueues.size >= KNOWN_QUEUES_MAX) this.knownQueues.clear();
    this.knownQueues.add(queue);
  }

  /** Tells listeners which queues gained ready tasks and when scheduled ones fall due. */
  private announce(rows: Row[]): void {
    const ready = new Set<string>();
    let soonest: number | undefined;
    const now = (this.now() ?? new Date()).getTime();
    for (const r of rows) {
      if (r.state === 'queued') ready.add(r.queue);
      else if ((r.state === 'scheduled' || r.state === 'retrying') && r.run_at) {
        const inMs = new Date(r.run_at).getTime() - now;
        soonest = soonest === undefined ? inMs : Math.min(soonest, inMs);
      }
    }
    for (const l of this.listeners) {
      try {
        if (ready.size > 0) l.ready?.([...ready]);
        if (soonest !== undefined) l.scheduled?.(Math.max(0, soonest));
      } catch (err) {
        this.logger.error({ err }, 'engine event listener threw');
      }
    }
  }

  // ---------------------------------------------------------------- enqueue

  /**
   * Inserts tasks in one statement. A task whose idempotency key already exists in its queue
   * is not inserted; the original is returned with `created: false`. Pass `executor` to
   * enqueue inside your own transaction (listeners are told at once, so a waiting worker may
   * look before your commit and fall back to its poll interval).
   */
  async enqueue(inputs: readonly TaskInput[], executor: Executor = this.db): Promise<EnqueueResult[]> {
    if (inputs.length === 0) return [];
    const items = inputs.map((i) => this.withDefaults(i));
    let inserted: Row[];
    try {
      const keyed = items.some((i) => i.idempotencyKey !== undefined);
      const known = items.every((i) => this.knownQueues.has(i.queue));
      const statement = known
        ? (keyed ? T.taskInsertManyKnownQueues : T.taskInsertManyWithoutKeysKnownQueues)
        : (keyed ? T.taskInsertMany : T.taskInsertManyWithoutKeys);
      const answer = await executor.query(statement, [...insertColumns(items, this.options), this.now(), ...this.insertDefaults]);
      inserted = keyed ? answer.rows : rowsOfOneRowAnswer(items, answer.rows[0]!);
      // Known only once committed: inside a caller's transaction the row may still roll back.
      if (executor === this.db) for (const i of items) this.rememberQueue(i.queue);
    } catch (err) {
      throw mapStorageError(err, 'tasks');
    }
    const results = await this.matchInserted(items, inserted, executor);
    this.announce(inserted);
    return results;
  }

  private withDefaults(i: TaskInput): ResolvedInput {
    const o = this.options;
    return {
      ...i,
      queue: i.queue ?? o.defaultQueue,
      priority: i.priority ?? 0,
      maxAttempts: i.maxAttempts ?? o.defaultMaxAttempts,
      backoff: i.backoff ?? o.defaultBackoff,
      timeoutMs: i.timeoutMs ?? o.defaultTimeoutMs,
      tags: i.tags ?? [],
      contentType: i.payloadBase64 !== undefined ? (i.contentType ?? 'application/octet-stream') : null,
    };
  }

  /**
   * Pairs inserted rows with inputs. Rows come back in input order; keyed inputs are matched
   * by key (a key repeated within the batch maps to the one row), the rest in order. Inputs
   * whose key hit an existing task are read back.
   */
  private async matchInserted(items: ResolvedInput[], inserted: Row[], executor: Executor): Promise<EnqueueResult[]> {
    const byKey = new Map<string, Row>();
    const unkeyed: Row[] = [];
    for (const r of inserted) {
      if (r.idempotency_key === null) unkeyed.push(r);
      else byKey.set(keyOf(r.queue, r.idempotency_key), r);
    }
    const out: EnqueueResult[] = new Array(items.length);
    const replayed: number[] = [];
    const taken = new Set<string>();
    items.forEach((item, idx) => {
      if (item.idempotencyKey === undefined) {
        out[idx] = new Inserted(item, unkeyed.shift()!);
        return;
      }
      const key = keyOf(item.queue, item.idempotencyKey);
      const row = byKey.get(key);
      if (row && !taken.has(key)) {
        taken.add(key);
        out[idx] = new Inserted(item, row);
      } else {
        replayed.push(idx);
      }
    });
    if (replayed.length === 0) return out;
    const originals = await this.tasksByKeys(replayed.map((idx) => items[idx]!), executor);
    for (const idx of replayed) {
      const item = items[idx]!;
      const task = originals.get(keyOf(item.queue, item.idempotencyKey!));
      // Only if retention deleted the original between our insert and this read.
      if (!task) throw new TaskflowError('idempotency_race', `the task holding idempotency key ${item.idempotencyKey} vanished during the enqueue; submit again`);
      out[idx] = existing(task);
    }
    return out;
  }

  private async tasksByKeys(items: ResolvedInput[], executor: Executor): Promise<Map<string, Task>> {
    const { rows } = await executor.query(T.taskGetByIdempotencyKeys, [items.map((i) => i.queue), items.map((i) => i.idempotencyKey)]);
    return new Map(rows.map((r) => [keyOf(r.queue, r.idempotency_key), toTask(r)]));
  }

  // ---------------------------------------------------------------- claim and settle

  /**
   * Leases up to `max` ready tasks to a worker, from its queues in weighted random order, one
   * atomic claim statement per queue until the batch is full. Returns [] when the worker is
   * not active or serves none of the queues (see `workerState` to tell why). Claims commit
   * without waiting for the WAL flush (`db.relaxed`): should PostgreSQL crash right after, the
   * claim is undone and the task is queued again and runs again (at least once, never lost).
   */
  async claim(workerId: string, queues: readonly QueueWeight[], max: number): Promise<ClaimedTask[]> {
    return this.claimFrom(workerId, weightedOrder(queues), max);
  }

  private async claimFrom(workerId: string, ordered: readonly QueueWeight[], max: number): Promise<ClaimedTask[]> {
    const out: ClaimedTask[] = [];
    for (const q of ordered) {
      if (out.length >= max) break;
      const { rows } = await this.db.relaxed.query(T.taskClaim, [q.name, max - out.length, workerId, this.now()]);
      for (const r of rows) out.push(toClaimedTask(r));
    }
    this.churn += out.length;
    return out;
  }

  /**
   * Settles a batch of results from one worker: one statement for the successes, one for the
   * failures, one for the releases. Each report is `accepted`, `duplicate` (this worker had already settled that
   * attempt: a retried report) or `stale` (the attempt is not the current one held by this
   * worker, or it repeats an earlier report of the batch); only accepted ones change anything.
   */
  async settle(workerId: string, reports: readonly TaskResultReport[]): Promise<SettleOutcome[]> {
    return (await this.settleAndClaim(workerId, reports, [], 0)).outcomes;
  }

  /**
   * Settles a worker's results, then claims its next tasks (up to `max`), as `settle` and
   * `claim` do, in as few round trips as possible: the successes and the claim of the first
   * queue share one statement (one commit); failures, rare, go first on their own; only a batch
   * not yet full moves on to the worker's other queues.
   */
  async settleAndClaim(
    workerId: string, reports: readonly TaskResultReport[], queues: readonly QueueWeight[], max: number,
  ): Promise<{ outcomes: SettleOutcome[]; tasks: ClaimedTask[] }> {
    if (!isUuid(workerId)) return { outcomes: reports.map(() => 'stale'), tasks: [] };
    const firstIndex = new Map<string, number>();
    reports.forEach((r, i) => {
      if (!firstIndex.has(r.id) && isTaskId(r.id)) firstIndex.set(r.id, i);
    });
    const unique = reports.filter((r, i) => firstIndex.get(r.id) === i);
    const ok = unique.filter((r) => r.status === 'succeeded');
    const failed = unique.filter((r) => r.status === 'failed');
    const released = unique.filter((r) => r.status === 'released');
    const order = max > 0 ? weightedOrder(queues) : [];
    const carrier = ok.length > 0 ? order[0] : undefined;
    const now = this.now();
    // Failures and releases first (rare, and a task queued again at once may then be claimed
    // in this very call).
    const failedRows = [
      ...(failed.length === 0 ? [] : await this.runSettle(T.taskFailMany, failed.map(toFailRow), workerId, now)),
      ...(released.length === 0 ? [] : await this.releaseRows(workerId, released)),
    ];
    const okRows = ok.length === 0
      ? []
      : carrier
        ? await this.runSettle(T.taskSucceedAndClaim, ok.map(toSucceedRow), workerId, now, [carrier.name, max])
        : await this.runSettle(T.taskSucceedMany, ok.map(toSucceedRow), workerId, now);
    const tasks = carrier ? okRows.filter((r) => r.kind === 'claimed').map(toClaimedTask) : [];
    this.churn += tasks.length;
    // taskSucceedAndClaim lists the settled ids in one row; taskSucceedMany returns a row each.
    const settledList: string | null | undefined = carrier ? okRows.find((r) => r.kind === 'settled')?.id : undefined;
    const settledOk = carrier ? (settledList ? settledList.split(',') : []) : okRows.map((r) => String(r.id));
    if (tasks.length < max) tasks.push(...(await this.claimFrom(workerId, carrier ? order.slice(1) : order, max - tasks.length)));
    const accepted = new Set<string>([...settledOk, ...failedRows.map((r) => String(r.id))]);
    this.churn += accepted.size;
    this.announce(failedRows);
    const refused = unique.filter((r) => !accepted.has(r.id));
    const duplicates = refused.length === 0 ? new Set<string>() : await this.settledBy(workerId, refused);
    const outcomes = reports.map((r, i): SettleOutcome => {
      if (firstIndex.get(r.id) !== i) return 'stale';
      return accepted.has(r.id) ? 'accepted' : duplicates.has(r.id) ? 'duplicate' : 'stale';
    });
    return { outcomes, tasks };
  }

  /**
   * Hands back claimed tasks that never reached their worker (its connection closed before
   * the answer went out): each attempt ends `abandoned`, the task is queued again at once and
   * the attempt does not count against its budget.
   */
  async releaseClaimed(workerId: string, tasks: readonly { id: string; attempt: number }[]): Promise<number> {
    if (tasks.length === 0 || !isUuid(workerId)) return 0;
    const rows = await this.releaseRows(workerId, tasks);
    this.announce(rows);
    return rows.length;
  }

  private async releaseRows(workerId: string, tasks: readonly { id: string; attempt: number }[]): Promise<Row[]> {
    const { rows } = await this.db.query(T.taskReleaseClaimed, [
      this.now(), this.options.poisonAfter, workerId, tasks.map((t) => t.id), tasks.map((t) => t.attempt),
    ]);
    return rows;
  }

  /** Of the refused reports, those this worker had already settled (retried reports). */
  private async settledBy(workerId: string, reports: readonly TaskResultReport[]): Promise<Set<string>> {
    const { rows } = await this.db.query(T.taskSettledBy, [
      reports.map((r) => r.id), reports.map((r) => r.attempt), workerId, reports.map((r) => r.status === 'released'),
    ]);
    return new Set(rows.map((r) => r.id as string));
  }

  private async runSettle(statement: typeof T.taskSucceedMany, rows: string[], workerId: string, now: Date | null, extra: unknown[] = []): Promise<Row[]> {
    try {
      return (await this.db.query(statement, [`[${rows.join(',')}]`, workerId, now, ...extra])).rows;
    } catch (err) {
      throw mapStorageError(err, 'results');
    }
  }

  // ---------------------------------------------------------------- workers

  /** Registers a worker; it is alive for `workerTtlMs` unless it heartbeats. */
  async registerWorker(input: WorkerInput): Promise<WorkerInfo> {
    const id = crypto.randomUUID();
    await this.db.query(W.workerRegister, [
      id, input.name, JSON.stringify(input.queues), input.concurrency, JSON.stringify(input.metadata ?? {}),
      this.options.workerTtlMs, this.now(),
    ]);
    return this.getWorker(id);
  }

  /**
   * Keeps a worker alive and renews the leases of the tasks it is running (`running`, or all
   * it holds when omitted). A worker marked lost comes back to active (its old tasks were
   * requeued; their results will be refused). Throws NotFoundError for an unknown worker and
   * InvalidStateError for a deregistered one.
   */
  async heartbeat(workerId: string, running?: readonly string[]): Promise<HeartbeatResult> {
    if (!isUuid(workerId)) throw new NotFoundError('worker', workerId);
    const listed = running?.filter(isTaskId) ?? null;
    const { rows } = await this.db.query(W.workerHeartbeat, [workerId, this.options.workerTtlMs, this.now(), listed]);
    const r = rows[0]!;
    if (r.found === 0) await this.requireWorkerState(workerId, ['active', 'lost']);
    return { held: r.held, cancel: r.cancel };
  }

  /**
   * Deregisters a worker: it is stopped, and what it still holds is handed back at once
   * (attempt outcome `abandoned`; the task is queued again at once, or dead if that was its
   * last attempt). Idempotent.
   */
  async deregisterWorker(workerId: string): Promise<{ released: number }> {
    if (!isUuid(workerId)) throw new NotFoundError('worker', workerId);
    const released = await this.db.transaction(async (tx) => {
      const stopped = await tx.query(W.workerStop, [workerId, this.now()]);
      if (stopped.rowCount === 0) {
        await this.requireWorkerState(workerId, ['stopped'], tx);
        return [];
      }
      return (await tx.query(T.taskReleaseWorker, [this.now(), this.options.poisonAfter, workerId])).rows;
    });
    this.announce(released);
    return { released: released.length };
  }

  /** The worker's state; NotFoundError if unknown. */
  async workerState(workerId: string, executor: Executor = this.db): Promise<WorkerState> {
    if (!isUuid(workerId)) throw new NotFoundError('worker', workerId);
    const { rows } = await executor.query(W.workerState, [workerId]);
    if (rows.length === 0) throw new NotFoundError('worker', workerId);
    return rows[0]!.state;
  }

  private async requireWorkerState(workerId: string, allowed: WorkerState[], executor: Executor = this.db): Promise<void> {
    const state = await this.workerState(workerId, executor);
    if (!allowed.includes(state)) {
      throw new InvalidStateError(`worker ${workerId} is ${state}${state === 'stopped' ? ' (deregistered); register again' : ''}`, state);
    }
  }

  async getWorker(workerId: string): Promise<WorkerInfo> {
    if (!isUuid(workerId)) throw new NotFoundError('worker', workerId);
    const { rows } = await this.db.query(W.workerGet, [workerId]);
    if (rows.length === 0) throw new NotFoundError('worker', workerId);
    return toWorker(rows[0]!);
  }

  /** Workers, newest first; `after` is the last worker of the previous page. */
  async listWorkers(filter: { states?: WorkerState[]; after?: { registeredAt: Date; id: string }; limit: number }): Promise<WorkerInfo[]> {
    const { rows } = await this.db.query(W.workerList, [
      filter.states ?? null, filter.after?.registeredAt ?? null, filter.after?.id ?? null, filter.limit,
    ]);
    return rows.map(toWorker);
  }

  // ---------------------------------------------------------------- maintenance duties

  /**
   * How many task row versions this engine's claims and settlements replaced since the last
   * call (each leaves one behind, with its entry in the ready index, until a vacuum).
   */
  takeChurn(): number {
    const n = this.churn;
    this.churn = 0;
    return n;
  }

  /** VACUUMs the tasks table (see Maintenance: PGlite has no autovacuum). */
  async vacuumTasks(): Promise<void> {
    await this.db.query(T.tasksVacuum);
  }

  /** Turns expired leases into failed attempts (outcome `lease_expired`). Returns how many. */
  async rescueExpired(limit = 1000): Promise<number> {
    const { rows } = await this.db.query(T.taskRescueExpired, [this.now(), this.options.poisonAfter, limit]);
    this.announce(rows);
    return rows.length;
  }

  /** Marks workers past their heartbeat deadline lost and requeues their tasks at once. */
  async reapLostWorkers(limit = 100): Promise<{ workers: number; tasks: number }> {
    const { workers, tasks } = await this.db.transaction(async (tx) => {
      const lost = (await tx.query(W.workerMarkLost, [this.now(), limit])).rows.map((r) => r.id as string);
      if (lost.length === 0) return { workers: 0, tasks: [] as Row[] };
      const rescued = await tx.query(T.taskRescueLostWorkers, [this.now(), this.options.poisonAfter, lost]);
      return { workers: lost.length, tasks: rescued.rows };
    });
    this.announce(tasks);
    return { workers, tasks: tasks.length };
  }

  /** Moves due scheduled and retrying tasks to `queued`. Returns how many. */
  async promoteDue(limit = 1000): Promise<number> {
    const { rows } = await this.db.query(T.taskPromoteDue, [this.now(), limit]);
    this.announce(rows);
    return rows.length;
  }

  /** Milliseconds until the next scheduled or retrying task is due, or null if none. */
  async nextDueInMs(): Promise<number | null> {
    const { rows } = await this.db.query(T.taskNextDue, [this.now()]);
    return rows[0]?.ms ?? null;
  }

  // ---------------------------------------------------------------- tasks

  async getTask(id: string): Promise<Task> {
    if (!isTaskId(id)) throw new NotFoundError('task', id);
    const { rows } = await this.db.query(T.taskGet, [id]);
    if (rows.length === 0) throw new NotFoundError('task', id);
    return toTask(rows[0]!);
  }

  /** Every attempt of a task, oldest first, including the running one. */
  async getAttempts(id: string): Promise<Attempt[]> {
    if (!isTaskId(id)) throw new NotFoundError('task', id);
    const { rows } = await this.db.query(T.taskAttempts, [id]);
    return rows.map(toAttempt);
  }

  /** A page of tasks, newest first. */
  async listTasks(filter: TaskFilter): Promise<Task[]> {
    const { rows } = await this.db.query(T.taskList, [
      filter.states ?? null, filter.queue ?? null, filter.type ?? null, filter.tag ?? null,
      filter.createdFrom ?? null, filter.createdBefore ?? null, filter.beforeId ?? null, filter.limit,
    ]);
    return rows.map(toTask);
  }

  /** Changes priority and/or run time of a task that is not running or finished. */
  async updateTask(id: string, change: { priority?: number; runAt?: Date }): Promise<Task> {
    await this.transitionOne(id, T.taskUpdate, [id, change.priority ?? null, change.runAt ?? null, this.now()], 'updated');
    return this.getTask(id);
  }

  /**
   * Cancels a task: at once if it is not running; a running one is flagged and its worker is
   * told at its next heartbeat (the handler sees an aborted signal). Terminal tasks refuse.
   */
  async cancelTask(id: string): Promise<Task> {
    if (!isTaskId(id)) throw new NotFoundError('task', id);
    const { rows } = await this.db.query(T.taskCancel, [id, this.now()]);
    if (rows.length === 0) await this.refuseTransition(id, 'cancelled');
    return toTask(rows[0]!);
  }

  /** Runs a dead or cancelled task again, with a fresh retry budget. */
  async retryTask(id: string): Promise<Task> {
    await this.transitionOne(id, T.taskRequeue, [[id], ['dead', 'cancelled'], this.now()], 'retried');
    return this.getTask(id);
  }

  private async transitionOne(id: string, statement: typeof T.taskUpdate, params: unknown[], verb: string): Promise<void> {
    if (!isTaskId(id)) throw new NotFoundError('task', id);
    let rows: Row[];
    try {
      ({ rows } = await this.db.query(statement, params));
    } catch (err) {
      throw mapStorageError(err);
    }
    if (rows.length === 0) await this.refuseTransition(id, verb);
    this.announce(rows);
  }

  /** Throws the reason a transition matched no row: the task is unknown, or in the wrong state. */
  private async refuseTransition(id: string, verb: string): Promise<never> {
    const task = await this.getTask(id);
    throw new InvalidStateError(`task ${id} is ${task.state} and cannot be ${verb}`, task.state);
  }

  // ---------------------------------------------------------------- dead-letter queue

  /** Requeues dead tasks by id; reports each. */
  async requeueDead(ids: readonly string[]): Promise<RequeueOutcome[]> {
    const valid = ids.filter(isTaskId);
    const { rows } = valid.length ? await this.db.query(T.taskRequeue, [valid, ['dead'], this.now()]) : { rows: [] };
    this.announce(rows);
    const done = new Set(rows.map((r) => String(r.id)));
    const pending = ids.filter((id) => !done.has(id) && isTaskId(id));
    const existing = new Set<string>();
    if (pending.length > 0) {
      const found = await this.db.query(T.taskExisting, [pending]);
      for (const r of found.rows) existing.add(String(r.id));
    }
    return ids.map((id) => (done.has(id) ? 'requeued' : existing.has(id) ? 'invalid_state' : 'not_found'));
  }

  /** Requeues every dead task of a queue (and type). Returns how many. */
  async requeueDeadWhere(filter: { queue?: string; type?: string }): Promise<number> {
    const { rows } = await this.db.query(T.taskRequeueDeadWhere, [filter.queue ?? null, filter.type ?? null, this.now()]);
    this.announce(rows);
    return rows.length;
  }

  /** Deletes dead tasks (and their attempts), optionally of one queue. Returns how many. */
  async purgeDead(filter: { queue?: string }): Promise<number> {
    const { rows } = await this.db.query(T.taskPurgeDead, [filter.queue ?? null]);
    return rows[0]!.purged;
  }

  // ---------------------------------------------------------------- queues

  async listQueues(): Promise<QueueInfo[]> {
    const { rows } = await this.db.query(Q.queueStats, [null, this.now()]);
    return rows.map(toQueue);
  }

  async getQueue(name: string): Promise<QueueInfo> {
    const { rows } = await this.db.query(Q.queueStats, [name, this.now()]);
    if (rows.length === 0) throw new NotFoundError('queue', name);
    return toQueue(rows[0]!);
  }

  /** Pauses (claims skip it) or resumes a queue; creates the queue if it does not exist yet. */
  async setQueuePaused(name: string, paused: boolean): Promise<QueueInfo> {
    await this.db.query(Q.queueSetPaused, [name, paused, this.now()]);
    if (!paused) this.announce([{ queue: name, state: 'queued' }]);
    return this.getQueue(name);
  }
}

/** Most queue names an engine remembers as existing (see Engine.knownQueues). */
const KNOWN_QUEUES_MAX = 10_000;

function keyOf(queue: string, key: string): string {
  return `${queue}\u0000${key}`;
}

/**
 * The rows a batch insert without keys answers in one row (see ONE_ROW_ANSWER in
 * sql/tasks/insert.ts), one per input, in input order.
 */
function rowsOfOneRowAnswer(items: readonly ResolvedInput[], answer: Row): Row[] {
  const ids: string[] = answer.ids ? answer.ids.split(',') : [];
  if (ids.length !== items.length) throw new Error(`the insert answered ${ids.length} ids for ${items.length} tasks`);
  const odd = new Map<string, string[]>();
  if (answer.odd) {
    for (const entry of (answer.odd as string).split(',')) {
      const [id, state, runAt] = entry.split(' ');
      odd.set(id!, [state!, runAt!]);
    }
  }
  const now: string = answer.now;
  return ids.map((id, k) => {
    const o = odd.get(id);
    return { id, queue: items[k]!.queue, state: o ? o[0] : 'queued', run_at: o ? o[1] : now, idempotency_key: null, created_at: now };
  });
}

/** The task as inserted, built from the input and the columns the insert returned. */
function insertedTask(i: ResolvedInput, r: Row): Task {
  const bytes = i.payloadBase64 !== undefined;
  return {
    id: String(r.id),
    queue: i.queue,
    type: i.type,
    state: r.state as TaskState,
    priority: i.priority,
    runAt: new Date(r.run_at),
    payload: bytes ? null : (i.payload ?? null),
    payloadBase64: bytes ? i.payloadBase64! : null,
    contentType: i.contentType,
    result: null,
    attempt: 0,
    attemptBase: 0,
    maxAttempts: i.maxAttempts,
    backoff: i.backoff,
    timeoutMs: i.timeoutMs,
    tags: i.tags,
    idempotencyKey: i.idempotencyKey ?? null,
    workerId: null,
    leaseExpiresAt: null,
    cancelRequested: false,
    leaseLosses: 0,
    lastError: null,
    deadReason: null,
    createdAt: new Date(r.created_at),
    startedAt: null,
    finishedAt: null,
  };
}

/**
 * One row of a success batch, as JSON text (the result as the edge serialised it); result and
 * logs only when there are some (see SUCCEED_INPUT in sql/tasks/settle.ts). The id goes as a JSON
 * number: it is a checked decimal of at most 19 digits, which PostgreSQL reads into its bigint
 * column exactly.
 */
function toSucceedRow(r: TaskResultReport & { status: 'succeeded' }): string {
  const result = r.resultJson ?? (r.result === undefined ? undefined : JSON.stringify(r.result));
  return `{"id":${r.id},"attempt":${r.attempt}${result === undefined ? '' : `,"rw":{"v":${result}}`}${r.logs ? `,"logs":${JSON.stringify(r.logs)}` : ''}}`;
}

/** One row of a failure batch, as JSON text. */
function toFailRow(r: TaskResultReport & { status: 'failed' }): string {
  return JSON.stringify({
    id: r.id,
    attempt: r.attempt,
    message: r.error.message,
    stack: r.error.stack ?? null,
    retryable: r.retryable ?? true,
    retry_after_ms: r.retryAfterMs ?? null,
    logs: r.logs ?? null,
  });
}
