/**
 * Coalescing of single submissions (`TaskflowClient.submit`): the tasks submitted during one
 * turn of the event loop travel together in one `POST /api/v1/tasks/batch`, and each caller's
 * promise settles with its own task once the batch is committed. This is the client half of
 * group commit (the server's half merges concurrent requests into one insert): 50 producers
 * each awaiting `submit` cost one HTTP exchange and one insert, not 50 of each. Measured in
 * bench/README.md ("single enqueue"): one request per task costs ~330 µs of CPU across client,
 * server and database on the bench machine, most of it the HTTP exchange itself.
 *
 * What a caller can rely on:
 * - an acknowledged submission is committed (the batch answer comes after the commit);
 * - each call gets its own answer: when the server refuses a batch as a whole for something an
 *   item may have caused (400 validation, 409, 413 too large, 422), the batch is sent again one
 *   task per request, so one bad task fails only its own call;
 * - an error of the request itself (network, 401/403, 5xx) rejects every call of that batch,
 *   once the client's retries (client.ts, retry.ts) are spent: a batch whose every task has an
 *   idempotency key (the caller's, or made up here: the default, unless `idempotencyKeys: 'none'`) is sent
 *   again after any failure they allow, the same keys answering the tasks a lost answer had
 *   committed, so that each call resolves once, with one task; a batch without keys only after
 *   a failure that says it never reached the service;
 * - no call waits more than one event-loop turn plus the requests already in flight (and
 *   their retries).
 */
import type * as C from '@taskflow/contracts';
import { TaskflowApiError } from './errors.ts';
import { generateKey, withKey } from './keys.ts';

export interface SubmitOptions {
  /** Most tasks in one request (the server accepts up to 1,000). @defaultValue 1000 */
  maxItems?: number;
  /** Most bytes of task JSON in one request (the server's body limit is 16 MiB by default). @defaultValue 4 MiB */
  maxBytes?: number;
  /**
   * Batch requests in flight at once; the submissions of a turn are shared out evenly among the
   * free ones, so that the database commits one batch while the next is on its way.
   * @defaultValue 2
   */
  maxInFlight?: number;
}

/** What the client adds to SubmitOptions. */
interface SubmitterOptions extends SubmitOptions {
  /** Give a task without an idempotency key one made up (see ClientOptions.idempotencyKeys). */
  generateKeys: boolean;
}

/** What a submission resolves with: whether it created a task (false: its idempotency key matched one), and the task. */
export type Submitted = C.TaskBatchResult['items'][number];

interface Pending {
  json: string;
  /** Its idempotency key was made up here: a match is this call's own earlier attempt. */
  generated: boolean;
  /** It has an idempotency key, given or made up. */
  keyed: boolean;
  resolve: (item: Submitted) => void;
  reject: (err: unknown) => void;
}

/**
 * Sends `{"tasks":[…]}` (already serialised) and returns the batch answer; `idempotent`: every
 * task has a key, so the request may be repeated after any failure.
 */
export type SendBatch = (body: string, idempotent: boolean) => Promise<C.TaskBatchResult>;

/** Statuses for which a batch is retried one task at a time: an item may be the cause. */
const ITEM_STATUSES = new Set([400, 409, 413, 422]);

export class Submitter {
  private readonly maxItems: number;
  private readonly maxBytes: number;
  private readonly maxInFlight: number;
  private queue: Pending[] = [];
  private scheduled = false;
  private inFlight = 0;
  private readonly send: SendBatch;
  private readonly generateKeys: boolean;
  private idleWaiters: (() => void)[] = [];

  constructor(send: SendBatch, opts: SubmitterOptions) {
    this.send = send;
    this.generateKeys = opts.generateKeys;
    this.maxItems = Math.max(1, Math.min(1000, opts.maxItems ?? 1000));
    this.maxBytes = Math.max(1, opts.maxBytes ?? 4 * 1024 * 1024);
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 2);
  }

  submit(task: C.TaskInput): Promise<Submitted> {
    let json: string;
    try {
      // Serialised now: a caller may change its object after the call.
      json = JSON.stringify(task);
    } catch (err) {
      return Promise.reject(err);
    }
    const given = task.idempotencyKey != null;
    const generated = !given && this.generateKeys;
    if (generated) json = withKey(json, generateKey());
    return new Promise<Submitted>((resolve, reject) => {
      this.queue.push({ json, generated, keyed: given || generated, resolve, reject });
      this.schedule();
    });
  }

  /** Flushes on the next turn of the event loop, so that every caller of this turn joins. */
  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      // Shared out among the free requests (measured on the bench's 50 producers: two batches of
      // 25 in flight 15.9k tasks/s, one of 50 11.8k, five of 10 7.8k).
      const share = Math.min(this.maxItems, Math.ceil(this.queue.length / (this.maxInFlight - this.inFlight)));
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length && n < share && (n === 0 || bytes + this.queue[n]!.json.length + 1 <= this.maxBytes)) {
        bytes += this.queue[n]!.json.length + 1;
        n++;
      }
      const batch = this.queue.splice(0, n);
      this.inFlight++;
      void this.deliver(batch).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0) this.schedule();
        else if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
      });
    }
  }

  /** Resolves once every submission made so far has been answered (committed or failed). */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async deliver(batch: Pending[]): Promise<void> {
    let answer: C.TaskBatchResult;
    try {
      answer = await this.send(`{"tasks":[${batch.map((p) => p.json).join(',')}]}`, batch.every((p) => p.keyed));
    } catch (err) {
      if (batch.length > 1 && err instanceof TaskflowApiError && ITEM_STATUSES.has(err.status)) {
        // One task per request, one after another: each caller gets its own answer.
        for (const p of batch) await this.deliver([p]);
        return;
      }
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const item = answer.items[i];
      if (!item) return p.reject(new Error(`the batch answer has ${answer.items.length} items for ${batch.length} tasks`));
      // A made-up key that matched a task can only be this call's own earlier attempt (a held
      // unique key is another task's).
      if (p.generated && !item.created && item.deduplicated !== 'unique') {
        item.created = true;
        delete item.deduplicated;
      }
      p.resolve(item);
    });
  }
}
