/**
 * Coming back after the service said this worker is not active. A small state machine, one
 * recovery at a time:
 *
 *   idle ── worker_lost ──────────────▶ heartbeat ── answered ──────────▶ idle (active again)
 *    │                                     │
 *    │                                     ├─ worker_stopped / 404 ──▶ register
 *    │                                     └─ unreachable ───────────▶ idle (caller backs off)
 *    └─ worker_stopped / 404 ────────────────────────────────────────▶ register
 *                                          register ── registered ───▶ idle (new id)
 *                                                   └─ failed ───────▶ idle (caller backs off)
 *
 * Whoever meets such an error (a claim loop, the heartbeat timer) while a recovery runs
 * awaits that recovery; none starts a second one, and the recovery's own heartbeat never
 * recovers. That cycle, a heartbeat waiting on the recovery that waits on the heartbeat, once
 * stopped the claim loops and the heartbeats for good when a lost worker was deregistered
 * before its heartbeat arrived.
 */
import { WORKER_LOST, WORKER_STOPPED } from '@taskflow/contracts';
import { TaskflowApiError } from './errors.ts';
import type { WorkerSession } from './lifecycle.ts';
import type { WorkerLogger } from './options.ts';

/** What an error says about this worker: `lost` (heartbeat to come back), `gone` (register again), or nothing. */
export type Verdict = 'lost' | 'gone' | undefined;

export function verdictOf(err: unknown): Verdict {
  if (!(err instanceof TaskflowApiError)) return undefined;
  if (err.code === WORKER_LOST) return 'lost';
  // 404: the service does not know this id (its database was replaced, say).
  if (err.code === WORKER_STOPPED || (err.status === 404 && err.code === 'not_found')) return 'gone';
  return undefined;
}

export type RecoveryStep = 'idle' | 'heartbeat' | 'register';

export interface RecoveryDeps {
  session: WorkerSession;
  log: WorkerLogger;
  /** Sends one heartbeat and applies its answer; throws what the service answered. Never recovers. */
  heartbeat(): Promise<void>;
  /** Gives up what the old id held and registers under a new one; throws if it could not. */
  register(): Promise<void>;
}

export class Recovery {
  #step: RecoveryStep = 'idle';
  #current: Promise<boolean> | undefined;
  readonly #deps: RecoveryDeps;

  constructor(deps: RecoveryDeps) {
    this.#deps = deps;
  }

  /** Where the recovery in progress is (`idle`: none). */
  get step(): RecoveryStep {
    return this.#step;
  }

  /**
   * Comes back from `err`, met by a request made as `usedId`. Resolves true when the caller
   * should go on at once (recovered, by this call or another, or the id changed since the
   * request), false when `err` is not about this worker or the recovery could not finish (the
   * caller backs off and tries again).
   */
  recover(err: unknown, usedId: string | undefined): Promise<boolean> {
    const verdict = verdictOf(err);
    if (!verdict) return Promise.resolve(false);
    if (usedId !== this.#deps.session.id) return Promise.resolve(true);
    this.#current ??= this.#run(verdict).finally(() => {
      this.#step = 'idle';
      this.#current = undefined;
    });
    return this.#current;
  }

  async #run(verdict: 'lost' | 'gone'): Promise<boolean> {
    const { log, session } = this.#deps;
    if (verdict === 'lost') {
      this.#step = 'heartbeat';
      log.warn({ workerId: session.id }, 'the service marked this worker lost; heartbeating to come back');
      try {
        await this.#deps.heartbeat();
        return true;
      } catch (err) {
        if (verdictOf(err) === undefined) {
          log.warn({ err: String(err) }, 'the heartbeat to come back failed; trying again later');
          return false;
        }
        // Deregistered (or forgotten) since it was lost: only a new registration brings it back.
      }
    }
    this.#step = 'register';
    log.warn({ workerId: session.id }, 'the service no longer knows this worker as active; registering again');
    try {
      await this.#deps.register();
      return true;
    } catch (err) {
      log.error({ err: String(err) }, 'could not register again; trying again later');
      return false;
    }
  }
}
