import type { BackoffPolicy } from './types.ts';

/** Engine settings. Every field has a default; the server fills them from its configuration. */
export interface EngineOptions {
  /** Queue of a task that names none. @defaultValue `default` */
  defaultQueue: string;
  /** @defaultValue 5 */
  defaultMaxAttempts: number;
  /** @defaultValue `{ type: 'exponential', delayMs: 1000, factor: 2, maxDelayMs: 3600000, jitter: 0.2 }` */
  defaultBackoff: BackoffPolicy;
  /** Lease of an attempt when the task names none, ms. @defaultValue 30000 */
  defaultTimeoutMs: number;
  /**
   * Attempts ending with the worker gone (lease expired, worker lost) after which a task is
   * quarantined in the dead-letter queue as `poison`, whatever attempts it has left.
   * @defaultValue 3
   */
  poisonAfter: number;
  /** A worker that has not heartbeated for this long is lost; its tasks are requeued. @defaultValue 15000 */
  workerTtlMs: number;
  /**
   * Largest payload (JSON text, or decoded base64 bytes) of the task a schedule's fire makes;
   * a larger template's fire is recorded `refused`. The server's submission limit
   * (TASKFLOW_MAX_PAYLOAD_BYTES), which a template met when stored and may exceed once the
   * limit is lowered. null: no limit. @defaultValue null
   */
  maxPayloadBytes: number | null;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  defaultQueue: 'default',
  defaultMaxAttempts: 5,
  defaultBackoff: { type: 'exponential', delayMs: 1000, factor: 2, maxDelayMs: 3_600_000, jitter: 0.2 },
  defaultTimeoutMs: 30_000,
  poisonAfter: 3,
  workerTtlMs: 15_000,
  maxPayloadBytes: null,
};
