/**
 * The adaptive prefetch (the default, `prefetch: 'auto'`): how many tasks a worker claims ahead
 * of its free slots. It doubles while claims come back full (the queue has more) and halves when
 * one comes back short (the queue runs dry, or other workers take their share), within a bound
 * that keeps the buffer short in time:
 *
 *   prefetch ≤ concurrency × horizon / handler time,  horizon = 2 claim round trips,
 *              clamped to [20 ms, 50 ms] and to half the shortest lease held
 *
 * so a buffered task starts within two round trips (what prefetch exists to hide) or 50 ms,
 * never near the end of its lease, and a worker never holds much more than it starts in 50 ms:
 * when the queue runs dry, the others are not left idle while it works through a long buffer. Quick tasks (no-op handlers) reach the cap, `AUTO_PREFETCH_PER_SLOT` ×
 * concurrency; slow ones stay near 0. It grows only after a slot turnover (as many tasks done
 * as there are slots since the last step), so the handler time it divides by is measured.
 * Pure logic: the worker feeds it what it observes.
 */

/** The cap of the adaptive prefetch, per slot: at most this many tasks buffered per unit of concurrency. */
export const AUTO_PREFETCH_PER_SLOT = 20;
/** The horizon, in claim round trips, that the buffer covers. */
const HORIZON_ROUND_TRIPS = 2;
/** The horizon's floor, ms (below it, round-trip noise would shrink the buffer of quick tasks). */
const MIN_HORIZON_MS = 20;
/** The horizon's ceiling, ms: on a slow network or a busy machine, the buffer still holds no more than 50 ms of work. */
const MAX_HORIZON_MS = 50;
/** Weight of a new sample in the moving averages. */
const ALPHA = 0.2;

export class AdaptivePrefetch {
  /** Tasks to claim ahead of the free slots now. */
  value = 0;
  readonly #concurrency: number;
  readonly #cap: number;
  /** Moving averages, undefined until a first sample: a handler's run time, a full claim's round trip. */
  #handlerMs: number | undefined;
  #roundTripMs: number | undefined;
  /** Tasks finished since the last change of `value`. */
  #doneSinceStep = 0;

  constructor(concurrency: number, cap = AUTO_PREFETCH_PER_SLOT * concurrency) {
    this.#concurrency = concurrency;
    this.#cap = Math.max(0, Math.min(cap, 1000));
  }

  /** A handler ran for `ms`. */
  taskDone(ms: number): void {
    this.#handlerMs = this.#handlerMs === undefined ? ms : this.#handlerMs + ALPHA * (ms - this.#handlerMs);
    this.#doneSinceStep++;
  }

  /**
   * A claim for `asked` tasks brought `got` after `roundTripMs`; `leaseMs` is the shortest lease
   * among the tasks held (undefined: none).
   */
  claimed(asked: number, got: number, roundTripMs: number, leaseMs: number | undefined): void {
    if (asked <= 0) return;
    if (got >= asked) {
      // A full answer came back at once; a short one may have waited in the long poll.
      this.#roundTripMs = this.#roundTripMs === undefined ? roundTripMs : this.#roundTripMs + ALPHA * (roundTripMs - this.#roundTripMs);
      if (this.#doneSinceStep >= this.#concurrency) this.#step(this.value === 0 ? this.#concurrency : this.value * 2);
    } else if (this.value > 0) {
      this.#step(Math.floor(this.value / 2));
    }
    this.value = Math.min(this.value, this.bound(leaseMs));
  }

  /** The most the buffer may hold given what has been observed. */
  bound(leaseMs: number | undefined): number {
    if (this.#handlerMs === undefined) return 0;
    const rt = this.#roundTripMs ?? MIN_HORIZON_MS;
    let horizon = Math.min(MAX_HORIZON_MS, Math.max(MIN_HORIZON_MS, HORIZON_ROUND_TRIPS * rt));
    if (leaseMs !== undefined) horizon = Math.min(horizon, leaseMs / 2);
    const handlerMs = Math.max(this.#handlerMs, 0.001);
    return Math.min(this.#cap, Math.floor((this.#concurrency * horizon) / handlerMs));
  }

  #step(to: number): void {
    this.value = to;
    this.#doneSinceStep = 0;
  }
}
