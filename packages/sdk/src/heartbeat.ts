/**
 * Heartbeats: they renew the leases of the tasks the worker holds and bring back the tasks to
 * abort (cancelled, or no longer this worker's).
 */
import type { EventEmitter } from 'node:events';
import type { TaskResult } from '@taskflow/contracts';
import type { TaskflowClient } from './client.ts';
import { LeaseLostError, TaskCancelledError } from './errors.ts';
import { abandonTask, abortTask, type InFlight } from './context.ts';
import type { WorkerSession } from './lifecycle.ts';
import type { WorkerLogger } from './options.ts';
import type { WorkerEvents } from './worker.ts';

/** Most task ids one heartbeat lists (the service's limit). */
const MAX_RUNNING = 10_000;

/** How often a task's lease must be renewed: a third of its timeout (at least every 50 ms). */
function leaseCadence(timeoutMs: number): number {
  return Math.max(50, Math.floor(timeoutMs / 3));
}

export interface HeartbeatDeps {
  client: TaskflowClient;
  session: WorkerSession;
  /** Every task the worker holds, by id (shared with the worker, which adds and removes them). */
  held: Map<string, InFlight>;
  /** Results not yet accepted by the service: their tasks' leases must last until they are. */
  unreported: () => readonly TaskResult[];
  log: WorkerLogger;
  /** Where `error` is emitted. */
  events: EventEmitter<WorkerEvents>;
  /** Comes back from an error that says the worker is not active (see recovery.ts); true if it did. */
  recover: (err: unknown, usedId: string) => Promise<boolean>;
}

/**
 * Heartbeats every `intervalMs`, or more often while a task with a shorter lease runs (a
 * third of its timeout), so no lease runs out between two heartbeats.
 */
export class Heartbeat {
  /** The service's cadence, given at registration. */
  intervalMs = 5000;
  #timer: NodeJS.Timeout | undefined;
  /** When the next heartbeat is due (local time), or +Infinity while one is being sent. */
  #due = Number.POSITIVE_INFINITY;
  readonly #deps: HeartbeatDeps;

  constructor(deps: HeartbeatDeps) {
    this.#deps = deps;
  }

  /** A task was claimed at `receivedAt`: a lease shorter than the cadence pulls the next heartbeat in. */
  leaseReceived(receivedAt: number, timeoutMs: number): void {
    const due = receivedAt + leaseCadence(timeoutMs);
    if (due < this.#due && this.#deps.session.state === 'running') this.schedule(due - Date.now());
  }

  schedule(delay = this.#delay()): void {
    clearTimeout(this.#timer);
    this.#due = Date.now() + delay;
    this.#timer = setTimeout(() => {
      this.#due = Number.POSITIVE_INFINITY;
      void this.beat().finally(() => {
        const { state } = this.#deps.session;
        if (state === 'running' || state === 'stopping') this.schedule();
      });
    }, delay);
    this.#timer.unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  #delay(): number {
    let delay = this.intervalMs;
    for (const e of this.#deps.held.values()) delay = Math.min(delay, leaseCadence(e.task.timeoutMs));
    return delay;
  }

  /** The timer's heartbeat: sends one, and comes back (recovery.ts) if the service says the worker is not active. */
  async beat(): Promise<void> {
    const { session } = this.#deps;
    const usedId = session.id;
    if (!usedId) return;
    try {
      await this.send();
    } catch (err) {
      if (session.state === 'running' && (await this.#deps.recover(err, usedId))) return;
      this.#deps.log.warn({ err: String(err) }, 'heartbeat failed');
      this.#deps.events.emit('error', err);
    }
  }

  /** The tasks whose leases a running worker renews: those it holds, and those whose results wait. */
  #running(): string[] {
    const running = [...this.#deps.held.values()].filter((e) => !e.abandoned).map((e) => e.task.id);
    for (const r of this.#deps.unreported()) {
      if (running.length >= MAX_RUNNING) break;
      if (r.status !== 'released') running.push(r.id);
    }
    return running;
  }

  /**
   * One heartbeat: renews leases; aborts tasks that were cancelled or are no longer ours.
   * Throws what the service answered, and never recovers: the recovery sends it.
   */
  async send(): Promise<void> {
    const { client, session, held } = this.#deps;
    if (!session.id) return;
    const sentAt = Date.now();
    // Stopping, it claims no more: a held task it does not know came in the answer of a claim
    // that stop() aborted. Renewing all it holds (no `running`) keeps such a task until the
    // deregistration hands it back with its attempt refunded, instead of letting it expire as
    // a used attempt while the grace period runs.
    const hb = await client.heartbeat(session.id, session.state === 'stopping' ? {} : { running: this.#running() });
    for (const id of hb.cancel) {
      const e = held.get(id);
      if (e) abortTask(e, new TaskCancelledError(id));
    }
    const kept = new Set(hb.held);
    for (const e of held.values()) {
      if (!kept.has(e.task.id) && e.receivedAt < sentAt && !e.abandoned) abandonTask(held, e, new LeaseLostError(e.task.id));
    }
  }
}
