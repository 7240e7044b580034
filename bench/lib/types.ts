/** What every benchmarked system provides, producer side (in the harness) and worker side. */

/** The payload of every benchmark task: phase, index within the phase, enqueue time (ms). */
export interface BenchPayload {
  p: string;
  i: number;
  t?: number;
  /** Like `t`, in fractional ms of the same clock (performance.timeOrigin + performance.now()): diagnose.ts. */
  tu?: number;
}

/**
 * A system's worker settings beyond its concurrency (`{}`: the library's defaults), by the
 * names systems/*.ts read them under; see each system's `TUNABLES`.
 */
export type Tuning = Record<string, number>;

/** A worker inside the worker process (see worker-child.ts). */
export interface WorkerHandle {
  /** Connects and starts taking tasks. */
  start(): Promise<void>;
  /** Stops gracefully (in-flight tasks finish, results are reported). */
  stop(): Promise<void>;
  /** Counters of the worker's own, if it keeps any (Taskflow: its requests, with `countRequests`). */
  stats?(): unknown;
}

/** Builds a worker that calls `onTask(payload)` at the start of every task of `options.queue`. */
export type MakeWorker = (options: any, onTask: (payload: BenchPayload) => void) => Promise<WorkerHandle>;

/** The producer side, in the harness process. */
export interface SystemUnderTest {
  /** Row label, e.g. "Taskflow (PostgreSQL)". */
  label: string;
  /** The module in systems/ the worker process loads. */
  module: string;
  /** Creates the namespace (schema, prefix), starts what must run (the Taskflow server). */
  setup(): Promise<void>;
  /** Options for the worker process (JSON). */
  workerOptions(queue: string, concurrency: number): Record<string, unknown>;
  /** The worker process's script, if not this tree's lib/worker-child.ts (Taskflow from another checkout). */
  readonly workerChild?: string;
  enqueueOne(queue: string, payload: BenchPayload): Promise<void>;
  enqueueBatch(queue: string, payloads: BenchPayload[]): Promise<void>;
  /**
   * One task per call, as enqueueOne, through the client's coalescing of concurrent calls where
   * the system has one (Taskflow: `TaskflowClient.submit`; BullMQ: `Queue.add` on an ioredis
   * connection with `enableAutoPipelining`). Each call still resolves with its own task, after
   * the storage has it.
   */
  enqueueOneCoalesced?(queue: string, payload: BenchPayload): Promise<void>;
  /** Tasks of the queue waiting to run (for checking an enqueue phase). */
  countWaiting(queue: string): Promise<number>;
  /**
   * Tasks of the queue completed, as the storage says (results recorded). `expected` is how
   * many were enqueued in all (graphile-worker deletes completed jobs: it counts what is left).
   */
  countCompleted(queue: string, expected: number): Promise<number>;
  /** Deletes every task of the queue. */
  purge(queue: string): Promise<void>;
  /**
   * Storage-side checks after the queue was drained of `expected` tasks: problems found, each
   * a sentence ([] when all is well).
   */
  verifyDrained(queue: string, expected: number): Promise<string[]>;
  /** Command name of the storage's processes, for their CPU during the drain (`postgres`, `redis-server`). */
  readonly storageProcess?: string;
  /** A process to watch for RSS/CPU (the Taskflow server), if any. */
  serverPid?(): number | undefined;
  /**
   * After the bulk load, before the drain: the same for every PostgreSQL system (`ANALYZE` of
   * its tables, `CHECKPOINT`; lib/pg.ts analyzeAndCheckpoint). Redis: nothing.
   */
  prepare?(): Promise<void>;
  /**
   * Whose connections to PostgreSQL are the system's (their backends' CPU is the system's
   * PostgreSQL CPU, lib/backends.ts): the server process (Taskflow) or the worker process.
   */
  readonly backendsOf?: 'server' | 'worker';
  /** Stops what setup started and deletes the namespace. */
  teardown(): Promise<void>;
}
