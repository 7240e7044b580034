import type { Engine, EnqueueResult } from './engine.ts';
import type { TaskInput } from './types.ts';
import { DatabaseUnavailableError } from '../errors.ts';

export interface EnqueueBatcherOptions {
  /** Most tasks per insert statement (a larger request still goes alone). @defaultValue 1000 */
  maxBatch: number;
  /** Inserts in flight at once; requests arriving meanwhile wait for the next one. @defaultValue 2 */
  maxInFlight: number;
  /**
   * A request of at least this many tasks is inserted at once, on its own and outside the
   * in-flight limit: it is a big enough group by itself (a statement's fixed cost is a few
   * percent of 100 rows), and big batches from many producers keep using the database's cores
   * in parallel. @defaultValue 100
   */
  alone: number;
}

/** One request's tasks: written all together or not at all. */
interface Pending {
  inputs: readonly TaskInput[];
  resolve: (r: EnqueueResult[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for submissions. Concurrent requests each bring one task (`POST /tasks`) or a
 * batch (`POST /tasks/batch`; one of `alone` tasks or more is inserted at once by itself);
 * the batcher turns whatever arrived while the previous insert was in flight into one
 * multi-row insert, and answers each request only after that insert committed. Under load
 * this turns N commits (and N WAL flushes) into a few, and many small batches (producers whose
 * clients coalesce, such as the SDK's `submit`) into fewer, larger statements, which cost the
 * database less per row; with one request at a time it adds one turn of the event loop.
 *
 * A request is all or nothing whatever it shares a statement with: a shared insert that fails
 * (one bad value, a race with another node lost beyond the engine's retries) is retried request
 * by request, so a failure one request causes fails only that request. Only a database that
 * cannot be reached fails them all, with the error that says to retry.
 */
export class EnqueueBatcher {
  private readonly engine: Engine;
  private readonly opts: EnqueueBatcherOptions;
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(engine: Engine, options: Partial<EnqueueBatcherOptions> = {}) {
    this.engine = engine;
    this.opts = { maxBatch: 1000, maxInFlight: 2, alone: 100, ...options };
  }

  /** Enqueues one task; resolves once it is committed. */
  async enqueue(input: TaskInput): Promise<EnqueueResult> {
    const [result] = await this.enqueueMany([input]);
    return result!;
  }

  /** Enqueues one request's tasks, all or nothing; resolves once they are committed, in input order. */
  enqueueMany(inputs: readonly TaskInput[]): Promise<EnqueueResult[]> {
    if (inputs.length === 0) return Promise.resolve([]);
    if (inputs.length >= this.opts.alone) return this.engine.enqueue(inputs);
    return new Promise((resolve, reject) => {
      this.queue.push({ inputs, resolve, reject });
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
      while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) void this.flush(this.take());
    });
  }

  /** The requests of the next insert, in arrival order: at least one, at most maxBatch tasks unless one request alone has more. */
  private take(): Pending[] {
    let count = 0;
    let tasks = 0;
    while (count < this.queue.length && (count === 0 || tasks + this.queue[count]!.inputs.length <= this.opts.maxBatch)) {
      tasks += this.queue[count]!.inputs.length;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private async flush(batch: Pending[]): Promise<void> {
    this.inFlight++;
    try {
      const inputs = batch.length === 1 ? batch[0]!.inputs : batch.flatMap((p) => p.inputs);
      const results = await this.engine.enqueue(inputs);
      let at = 0;
      for (const p of batch) {
        p.resolve(results.slice(at, at + p.inputs.length));
        at += p.inputs.length;
      }
    } catch (err) {
      if (batch.length > 1 && !(err instanceof DatabaseUnavailableError)) {
        // Request by request, in arrival order: of two submissions with one idempotency key,
        // the first must stay the original; of two submissions to a nearly full queue, the
        // first takes the places left.
        for (const p of batch) await this.engine.enqueue(p.inputs).then(p.resolve, p.reject);
      } else {
        for (const p of batch) p.reject(err);
      }
    } finally {
      this.inFlight--;
      this.schedule();
    }
  }
}
