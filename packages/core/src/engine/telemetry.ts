/**
 * What the engine tells an observer about the work it does, so that a metrics exporter (the
 * server's, with prom-client) can count it without a query of its own: every figure here comes
 * from rows a statement returned anyway. The engine imports no metrics library; without an
 * observer (EngineConfig.telemetry) nothing here is built.
 */
import type { TaskState } from './types.ts';

/** How an attempt ended: `succeeded`, or the outcomes `attempts` records. */
export type AttemptOutcome = 'succeeded' | 'failed' | 'cancelled' | 'lease_expired' | 'worker_lost' | 'abandoned';

/** One claimed task. */
export interface ClaimObservation {
  queue: string;
  type: string;
  /**
   * Seconds from ready (its run time: creation, the due time of a scheduled or retrying task)
   * to claimed, on the database clock: deliberate delays are not counted as waiting.
   */
  waitSeconds: number;
}

/** One ended attempt. */
export interface AttemptObservation {
  queue: string;
  type: string;
  outcome: AttemptOutcome;
  /** Seconds from claim to end, on the database clock. */
  seconds: number;
  /** The task's state afterwards: `succeeded`, `dead`, `cancelled`, or `queued`/`retrying` for another attempt. */
  next: TaskState;
  /** With `failed`: the error's class as the worker reported it (see errorTypeOf). */
  errorType?: string;
}

export interface EngineTelemetry {
  /** Tasks an enqueue created (not those an idempotency key matched). */
  submitted(tasks: readonly { queue: string; type: string }[]): void;
  claimed(tasks: readonly ClaimObservation[]): void;
  settled(attempts: readonly AttemptObservation[]): void;
  /** Results refused by the fencing check (not the current attempt held by the worker). */
  rejected(count: number): void;
  /** Workers declared lost after missing their heartbeats. */
  workersLost(count: number): void;
}

const ERROR_CLASS = /^([A-Za-z_$][\w$.]{0,63})(?::|$)/;

/**
 * The class of a reported error, from the first line of its stack (`TypeError: ...`, as V8,
 * Python's last line aside, and most runtimes print it), else `Error`. Never the message: it
 * may hold anything, and a label must stay bounded.
 */
export function errorTypeOf(error: { message: string; stack?: string | null }): string {
  const first = error.stack ? error.stack.slice(0, error.stack.indexOf('\n') >>> 0) : '';
  return ERROR_CLASS.exec(first)?.[1] ?? 'Error';
}
