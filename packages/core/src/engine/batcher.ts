import type { Engine, EnqueueResult } from './engine.ts';
import type { TaskInput } from './types.ts';
import { InvalidInputError } from '../errors.ts';

export interface EnqueueBatcherOptions {
  /** Most tasks per insert statement. @defaultValue 1000 */
  maxBatch: number;
  /** Inserts in flight at once; requests arriving meanwhile wait for the next one. @defaultValue 2 */
  maxInFlight: number;
}

interface Pending {
  input: TaskInput;
  resolve: (r: EnqueueResult) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for single-task submissions. Concurrent requests each ask for one task; the
 * batcher turns whatever arrived while the previous insert was in flight into one multi-row
 * insert, and answers each request only after that insert committed. Under load this turns N
 * commits (and N WAL flushes) into a few; with one request at a time it adds one turn of the
 * event loop.
 *
 * A batch the database refuses as input (one bad value) is retried item by item, so one
 * caller's bad value fails only that caller.
 */
export class EnqueueBatcher {
  private readonly engine: Engine;
  private readonly opts: EnqueueBatcherOptions;
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(engine: Engine, options: Partial<EnqueueBatcherOptions> = {}) {
    this.engine = engine;
    this.opts = { maxBatch: 1000, maxInFlight: 2, ...options };
  }

  /** Enqueues one task; resolves once it is committed. */
  enqueue(input: TaskInput): Promise<EnqueueResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Flushes after the current turn of the event loop, so that every request parsed in this
   * turn joins the same insert (they arrive in bursts: one read of many sockets).
   */
  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.opts.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
        void this.flush(this.queue.splice(0, this.opts.maxBatch));
      }
    });
  }

  private async flush(batch: Pending[]): Promise<void> {
    this.inFlight++;
    try {
      const results = await this.engine.enqueue(batch.map((p) => p.input));
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      if (batch.length > 1 && err instanceof InvalidInputError) {
        // One by one, in arrival order: of two submissions with one idempotency key, the
        // first must stay the original.
        for (const p of batch) await this.engine.enqueue([p.input]).then((r) => p.resolve(r[0]!), p.reject);
      } else {
        for (const p of batch) p.reject(err);
      }
    } finally {
      this.inFlight--;
      this.schedule();
    }
  }
}
