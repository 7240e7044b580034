/**
 * A claim that waits for work (long poll): settle the worker's results and claim in one
 * statement; if nothing was ready, wait for a wake-up (or the poll interval) and claim again,
 * until tasks come, the wait is over, or the worker or this node goes away.
 */
import type {
  ClaimedTask, Engine, QueueWeight, SettleOutcome, Subscription, TaskResultReport, WakeHub, WorkerState,
} from '@taskflow/core';
import type { WorkerDirectory } from './workerDirectory.ts';

/**
 * A call by a worker that is not active, with the code that says what to do: `worker_lost`
 * (heartbeat, which makes it active again, then claim again) or `worker_stopped` (deregistered:
 * register again). The code, not the detail, is what a worker branches on.
 */
export class WorkerNotActiveError extends Error {
  readonly state: Exclude<WorkerState, 'active'>;
  readonly code: 'worker_lost' | 'worker_stopped';
  readonly title: string;
  constructor(workerId: string, state: Exclude<WorkerState, 'active'>, options?: ErrorOptions) {
    super(state === 'lost'
      ? `worker ${workerId} is lost (it missed its heartbeat deadline and its tasks were taken back); heartbeat, then claim again`
      : `worker ${workerId} is stopped (deregistered); register again`, options);
    this.name = 'WorkerNotActiveError';
    this.state = state;
    this.code = state === 'lost' ? 'worker_lost' : 'worker_stopped';
    this.title = state === 'lost' ? 'Worker lost' : 'Worker stopped';
  }
}

export interface ClaimRequest {
  workerId: string;
  queues: QueueWeight[];
  /** Results to settle first, in the statement of the first claim. */
  reports: TaskResultReport[];
  /** Most tasks to claim. */
  max: number;
  /** How long to wait for work when none is ready, ms (0: answer at once). */
  waitMs: number;
  /** Called once the results are settled (before any wait): the tracing's `settle` span ends there. */
  onSettled?: (outcomes: readonly SettleOutcome[]) => void;
}

export interface ClaimAnswer {
  tasks: ClaimedTask[];
  /** One per report of the request, in its order. */
  outcomes: SettleOutcome[];
}

export interface LongPollDeps {
  engine: Engine;
  hub: WakeHub;
  directory: WorkerDirectory;
  /** Aborted at shutdown: waiting claims return empty at once. */
  shutdown: AbortSignal;
  /** Longest wait between two claims of one request, wake-up or not. */
  pollIntervalMs: number;
}

/** A request's interest in wake-ups: the current subscription, and whether to hand one on. */
interface Waiting {
  readonly names: string[];
  sub: Subscription;
  /**
   * A wake-up goes to one waiter (see WakeHub): hand it on if this claim may have left tasks
   * behind (a full batch) or does not claim after it (see `claim`'s `finally`).
   */
  handOn: boolean;
}

/** Resolves after the event loop's next poll for I/O (an immediate set from an immediate runs after it). */
function afterNextPoll(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

export class LongPoll {
  readonly #deps: LongPollDeps;

  constructor(deps: LongPollDeps) {
    this.#deps = deps;
  }

  /**
   * Settles the request's results and claims up to `max` tasks, waiting up to `waitMs` for
   * them. `hungUp` aborts when the worker goes away: the wait ends, and tasks claimed for it
   * meanwhile are handed back at once (not after their lease).
   */
  async claim(req: ClaimRequest, hungUp: AbortSignal): Promise<ClaimAnswer> {
    const { engine, hub, directory, shutdown } = this.#deps;
    const { workerId } = req;
    const deadline = Date.now() + req.waitMs;
    // Combined only for a wait (#waitForTasks): AbortSignal.any costs more than the rest of a
    // busy claim's bookkeeping, and a claim that finds tasks at once only reads the flags.
    const gone = () => hungUp.aborted || shutdown.aborted;
    const names = req.queues.map((q) => q.name);
    // Subscribe before looking, so a task enqueued between a look and the wait wakes us.
    const waiting: Waiting = { names, sub: hub.subscribe(names), handOn: false };
    try {
      // The results and the first claim share a statement (one round trip, one commit).
      const first = await engine.settleAndClaim(workerId, req.reports, req.queues, req.max);
      req.onSettled?.(first.outcomes);
      let tasks = first.tasks;
      if (tasks.length === 0) {
        if (!directory.recentlyActive(workerId)) await this.#requireActive(workerId);
        tasks = await this.#waitForTasks(req, waiting, deadline, AbortSignal.any([hungUp, shutdown]));
      }
      if (tasks.length > 0) {
        directory.sawActive(workerId);
        // A hang-up that arrived while the claim ran is read only in the event loop's next
        // poll for I/O: PGlite's claim takes no I/O (nothing polled since the request came),
        // and a PostgreSQL answer may be read before a hang-up that came first. Let one poll
        // pass (the second setImmediate runs after it) before deciding.
        if (!gone()) await afterNextPoll();
      }
      if (hungUp.aborted && !shutdown.aborted && tasks.length > 0) {
        // The worker hung up while we claimed: hand the tasks back now, not after their lease.
        await engine.releaseClaimed(workerId, tasks);
        tasks = [];
      }
      return { tasks, outcomes: first.outcomes };
    } finally {
      // Handed a wake-up that no claim of this request followed: another waiter takes it.
      if (waiting.sub.woken) waiting.handOn = true;
      waiting.sub.close();
      if (waiting.handOn) hub.wakeLocal(names);
    }
  }

  /** A claim that found nothing answers a worker that is not active at once (409). */
  async #requireActive(workerId: string): Promise<void> {
    const state = await this.#deps.engine.workerState(workerId);
    if (state !== 'active') throw new WorkerNotActiveError(workerId, state);
    this.#deps.directory.sawActive(workerId);
  }

  /** Waits for a wake-up or the poll interval, then claims; again until tasks come or the wait ends. */
  async #waitForTasks(req: ClaimRequest, waiting: Waiting, deadline: number, gone: AbortSignal): Promise<ClaimedTask[]> {
    const { engine, hub, pollIntervalMs } = this.#deps;
    let tasks: ClaimedTask[] = [];
    while (tasks.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0 || gone.aborted) break;
      await waiting.sub.wait(Math.min(left, pollIntervalMs), gone);
      if (gone.aborted) break; // do not claim for a worker that has gone
      const woken = waiting.sub.woken;
      waiting.sub.close();
      waiting.sub = hub.subscribe(waiting.names);
      tasks = await engine.claim(req.workerId, req.queues, req.max);
      if (woken && tasks.length >= req.max) waiting.handOn = true;
    }
    return tasks;
  }
}
