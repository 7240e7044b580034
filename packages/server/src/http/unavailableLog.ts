/**
 * The log of requests answered 503 `database_unavailable`. During an outage every request
 * fails alike; a line for each would bury the log. The first is logged at once, then at most
 * one line per interval, counting the answers since the previous line.
 */
import type { Logger } from '@taskflow/core';

export class UnavailableLog {
  readonly #logger: Logger;
  readonly #intervalMs: number;
  #lastAt = Number.NEGATIVE_INFINITY;
  #since = 0;

  constructor(logger: Logger, intervalMs = 1000) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  /** A request answered 503 because of `err`. */
  note(err: unknown, route: string): void {
    this.#since++;
    const now = Date.now();
    if (now - this.#lastAt < this.#intervalMs) return;
    this.#logger.warn({ err, route, answered503: this.#since }, 'database unavailable: answering 503 database_unavailable with Retry-After');
    this.#lastAt = now;
    this.#since = 0;
  }
}
