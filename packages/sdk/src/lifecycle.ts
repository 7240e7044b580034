/**
 * The worker's life, shared by its parts: who it is at the service and where it is between
 * start and stop; and the pieces of a graceful stop (signals, the grace period).
 */
import type { TaskAttempt } from '@taskflow/contracts';
import type { TaskflowClient } from './client.ts';
import type { WorkerLogger } from './options.ts';

export type WorkerState = 'new' | 'running' | 'stopping' | 'stopped';

/**
 * What every part of a worker reads about the worker itself. The worker alone writes it: `id`
 * at each registration (a worker the service forgot registers again under a new id), `state`
 * at start and stop.
 */
export class WorkerSession {
  /** The id the service gave this worker; undefined until registered. */
  id: string | undefined = undefined;
  state: WorkerState = 'new';
  readonly #stop = new AbortController();

  /** Aborts when the worker starts stopping: waits between retries end early. */
  get stopSignal(): AbortSignal {
    return this.#stop.signal;
  }

  /** Marks the worker as stopping and aborts `stopSignal`. */
  beginStop(): void {
    this.state = 'stopping';
    this.#stop.abort();
  }
}

/** The longest a worker waits on a service's Retry-After before trying again, ms. */
export const MAX_SERVICE_WAIT_MS = 60_000;

/**
 * How long a worker's loop waits before trying the service again after `err`: its own
 * `backoff`, or longer if the service said so (Retry-After), at most MAX_SERVICE_WAIT_MS.
 */
export function serviceWait(err: unknown, backoff: number): number {
  const asked = (err as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  return typeof asked === 'number' ? Math.min(Math.max(asked, backoff), MAX_SERVICE_WAIT_MS) : backoff;
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

/**
 * Stops gracefully on SIGTERM and SIGINT; a second signal exits at once. Returns the function
 * that removes the handlers.
 */
export function trapSignals(log: WorkerLogger, stop: () => void): () => void {
  let count = 0;
  const handler = () => {
    count++;
    if (count > 1) {
      log.warn({}, 'second signal: exiting without waiting');
      process.exit(130);
    }
    log.info({}, 'signal received: finishing in-flight tasks, then stopping');
    stop();
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

/**
 * Resolves once `idle()` holds (checked every 10 ms) or after `graceMs`, whichever comes first.
 * The loser's timer is cleared: a stopped worker must not hold its process for the rest of the
 * grace period.
 */
export async function idleWithin(graceMs: number, idle: () => boolean): Promise<void> {
  const done = new AbortController();
  try {
    await Promise.race([
      new Promise<void>((resolve) => {
        const check = () => {
          if (idle()) resolve();
          else if (!done.signal.aborted) setTimeout(check, 10).unref();
        };
        check();
      }),
      sleep(graceMs, done.signal),
    ]);
  } finally {
    done.abort();
  }
}

/** Most tasks a deregistration may list as started (the service's limit). */
const MAX_STARTED = 10_000;

/**
 * A stopping worker's last call: deregisters `id`, listing the tasks it `started` and did not
 * report, so the service refunds the attempt of every other task it still holds. Past the
 * service's limit, no list: every held task counts as started (none that ran is refunded). A
 * failure is logged: the service notices the worker is gone within its TTL.
 */
export async function deregister(client: TaskflowClient, log: WorkerLogger, id: string, started: TaskAttempt[]): Promise<void> {
  try {
    await client.deregisterWorker(id, started.length <= MAX_STARTED ? started : undefined);
  } catch (err) {
    log.warn({ err: String(err) }, 'deregister failed; the service will notice the worker is gone within its TTL');
  }
}
