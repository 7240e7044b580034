/** A worker's options, documented with their defaults, and resolved once when it is made. */
import type { TaskflowClient } from './client.ts';
import type { TaskHandler } from './context.ts';
import type { WorkerTracingOptions } from './tracing.ts';

/** The logging a worker does; pino and console-like loggers fit. */
export interface WorkerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface WorkerOptions {
  /** A client, or `url` and `apiKey` (a key with scope `worker`) to make one. */
  client?: TaskflowClient;
  url?: string;
  apiKey?: string;
  /** Queues served: names, or {name, weight} for a weighted share. */
  queues: (string | { name: string; weight?: number })[];
  /** Handlers by task type. */
  handlers: Record<string, TaskHandler>;
  /** Tasks run at once. @defaultValue 10 */
  concurrency?: number;
  /** @defaultValue `<hostname>:<pid>` */
  name?: string;
  metadata?: Record<string, unknown>;
  /** How long a claim waits for work on the server (long-poll), ms. @defaultValue 30000 */
  waitMs?: number;
  /**
   * Claim requests in flight at once. Two overlap one request's round trip (and the
   * database's commit) with the next, which matters when tasks are short. @defaultValue 2
   * (never more than concurrency + prefetch)
   */
  pipeline?: number;
  /**
   * Tasks claimed ahead of free slots and kept in a local buffer, started as slots free up.
   * Saves round trips when tasks are short (a claim then brings more than the free slots);
   * costs latency for other workers when tasks are long (buffered tasks wait here, their leases
   * renewed). `'auto'` adapts it (prefetch.ts): it doubles while claims come back full and halves
   * when one comes back short, up to 20 × concurrency (at most 1,000), and never beyond what the
   * slots start within two claim round trips (20 to 50 ms) at the handlers' observed run time,
   * nor half the lease: quick tasks get a deep buffer, slow ones almost none. A number fixes it.
   * @defaultValue 'auto'
   */
  prefetch?: number | 'auto';
  /** Most tasks per claim. @defaultValue (concurrency + prefetch now) / pipeline (at most 1000) */
  maxBatch?: number;
  /** On stop, how long in-flight tasks may take to finish before they are aborted, ms. @defaultValue 30000 */
  shutdownGraceMs?: number;
  /**
   * On stop, how long to keep trying to report results while the service does not take them
   * (down, unreachable, 503), ms. Past it the worker stops anyway, logging how many it could not
   * report; the service runs those tasks again. @defaultValue 10000
   */
  shutdownReportMs?: number;
  /** Stop gracefully on SIGTERM and SIGINT (a second signal exits at once). @defaultValue true */
  handleSignals?: boolean;
  /** @defaultValue warnings and errors to stderr */
  logger?: WorkerLogger;
  /**
   * OpenTelemetry: each task runs in a `process <queue>` span linked to the producer's span
   * (through `@opentelemetry/api`; nothing is recorded unless the application registers an
   * OpenTelemetry SDK). @defaultValue `{ processParent: 'link' }`
   */
  tracing?: WorkerTracingOptions;
}

/** The options with every default filled in; `maxBatch` undefined: (concurrency + prefetch now) / pipeline. */
export type ResolvedOptions = Required<Pick<WorkerOptions, 'concurrency' | 'waitMs' | 'pipeline' | 'prefetch' | 'shutdownGraceMs' | 'shutdownReportMs' | 'handleSignals'>> & WorkerOptions;

export function resolveOptions(opts: WorkerOptions): ResolvedOptions {
  const concurrency = opts.concurrency ?? 10;
  const prefetch = opts.prefetch === undefined || opts.prefetch === 'auto' ? 'auto' : Math.max(0, opts.prefetch);
  const pipeline = Math.max(1, Math.min(opts.pipeline ?? 2, prefetch === 'auto' ? concurrency : concurrency + prefetch));
  return {
    ...opts,
    concurrency,
    prefetch,
    pipeline,
    waitMs: opts.waitMs ?? 30_000,
    maxBatch: opts.maxBatch === undefined ? undefined : Math.max(1, Math.min(opts.maxBatch, 1000)),
    shutdownGraceMs: opts.shutdownGraceMs ?? 30_000,
    shutdownReportMs: opts.shutdownReportMs ?? 10_000,
    handleSignals: opts.handleSignals ?? true,
  };
}

export const stderrLogger: WorkerLogger = {
  info() {},
  warn: (obj, msg) => console.warn(`[taskflow worker] ${msg ?? ''}`, obj),
  error: (obj, msg) => console.error(`[taskflow worker] ${msg ?? ''}`, obj),
};
