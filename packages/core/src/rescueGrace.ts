/**
 * Whether the rescuer may take a worker's silence for its death, after an outage of the
 * database. While the database cannot answer, no worker can heartbeat: every deadline and
 * lease that passes then passes because of the outage, not because the worker died. Rescued
 * at once when the database is back, every worker would be marked lost together and every
 * task it held would count a lease loss towards poison quarantine, though the workers are
 * alive and still running them. So after the rescuer met the database unavailable, it judges
 * nobody until the database has answered it again for `graceMs` without interruption (the
 * server passes the worker TTL): the living workers heartbeat meanwhile, which moves their
 * deadlines and renews the leases of the tasks they list. A worker that died during the
 * outage, or before it, is rescued `graceMs` later than it would have been.
 *
 * Time here is this process's monotonic clock: a span measured on one node, not a deadline
 * compared with the database's (those stay in SQL).
 */
import { DatabaseUnavailableError } from './errors.ts';

export class RescueGrace {
  private readonly graceMs: number;
  private readonly now: () => number;
  /**
   * `judging`: no outage met (or its grace is over); `down`: the last statement met the
   * database unavailable; a number: the database has answered without interruption since then.
   */
  private state: 'judging' | 'down' | number = 'judging';

  /** `now`: milliseconds of a monotonic clock (tests pass their own). */
  constructor(graceMs: number, now: () => number = () => performance.now()) {
    this.graceMs = graceMs;
    this.now = now;
  }

  /** Whether the database has not answered since it was last found unavailable (a probe must pass first). */
  get down(): boolean {
    return this.state === 'down';
  }

  /** Milliseconds until silence may be judged again: 0 when it may now. */
  remainingMs(): number {
    if (this.state === 'judging') return 0;
    if (this.state === 'down') return this.graceMs;
    const left = this.state + this.graceMs - this.now();
    if (left > 0) return left;
    this.state = 'judging';
    return 0;
  }

  /** The database answered a statement of the rescuer's. */
  answered(): void {
    if (this.state === 'down') this.state = this.now();
  }

  /**
   * A statement of the rescuer's failed: when the database was unavailable, the grace starts
   * again from the next answer. Returns whether it did.
   */
  failed(err: unknown): boolean {
    if (!(err instanceof DatabaseUnavailableError) || this.graceMs <= 0) return false;
    this.state = 'down';
    return true;
  }
}
