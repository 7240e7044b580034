import type { Logger } from '../logger.ts';

/** Carries wake-ups between server nodes (LISTEN/NOTIFY or Redis pub/sub). */
export interface WakeTransport {
  readonly name: string;
  /** Starts delivering queues woken on other nodes to `deliver`. */
  start(deliver: (queues: string[]) => void): Promise<void>;
  /** Tells the other nodes these queues have ready tasks. Never throws; logs instead. */
  publish(queues: string[]): void;
  stop(): Promise<void>;
}

/** Interest in a set of queues, registered before looking for work. */
export interface Subscription {
  /**
   * Resolves true when one of the queues is woken (including any wake-up since the
   * subscription was made), false after `timeoutMs` or when `signal` aborts.
   */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  close(): void;
}

/**
 * Wake-ups for long-polling claims. In-process first (a task enqueued on this node wakes its
 * waiters without a round trip), then across nodes through the transport. A waiter
 * subscribes before it claims and waits after, so a wake-up that lands in between is not
 * lost; waiters also re-check on their poll interval, so a lost message (transport down)
 * costs at most that interval.
 */
export class WakeHub {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly transport: WakeTransport | undefined;
  private readonly logger: Logger;

  constructor(transport: WakeTransport | undefined, logger: Logger) {
    this.transport = transport;
    this.logger = logger;
  }

  get transportName(): string {
    return this.transport?.name ?? 'in-process';
  }

  async start(): Promise<void> {
    await this.transport?.start((queues) => this.wakeLocal(queues));
  }

  async stop(): Promise<void> {
    await this.transport?.stop();
    for (const set of this.waiters.values()) for (const w of set) w();
    this.waiters.clear();
  }

  /** Wakes local waiters and tells the other nodes. */
  publish(queues: string[]): void {
    this.wakeLocal(queues);
    this.transport?.publish(queues);
  }

  /** Wakes the waiters of this node only. */
  wakeLocal(queues: readonly string[]): void {
    for (const q of queues) {
      const set = this.waiters.get(q);
      if (!set) continue;
      this.waiters.delete(q);
      for (const w of set) w();
    }
  }

  subscribe(queues: readonly string[]): Subscription {
    let woken = false;
    let resolveWait: ((v: boolean) => void) | undefined;
    const wake = (): void => {
      woken = true;
      resolveWait?.(true);
    };
    for (const q of queues) {
      let set = this.waiters.get(q);
      if (!set) this.waiters.set(q, (set = new Set()));
      set.add(wake);
    }
    const close = (): void => {
      for (const q of queues) {
        const set = this.waiters.get(q);
        set?.delete(wake);
        if (set && set.size === 0) this.waiters.delete(q);
      }
    };
    return {
      close,
      wait: (timeoutMs, signal) => {
        if (woken) return Promise.resolve(true);
        if (signal?.aborted) return Promise.resolve(false);
        return new Promise<boolean>((resolve) => {
          const done = (v: boolean): void => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', onAbort);
            resolveWait = undefined;
            resolve(v);
          };
          const onAbort = (): void => done(false);
          const timer = setTimeout(() => done(false), Math.max(0, timeoutMs));
          signal?.addEventListener('abort', onAbort, { once: true });
          resolveWait = done;
        });
      },
    };
  }

  /** Waiting subscriptions per queue (for metrics and tests). */
  waiting(queue: string): number {
    return this.waiters.get(queue)?.size ?? 0;
  }
}

/**
 * Sends queue wake-ups with at most one message in flight: queues published meanwhile are
 * gathered and sent together when it returns, so a burst of enqueues costs a few messages,
 * and the last wake-up of a burst is never dropped.
 */
export class Coalescer {
  private pending = new Set<string>();
  private flushing = false;
  private readonly send: (queues: string[]) => Promise<void>;
  private readonly onError: (err: unknown) => void;

  constructor(send: (queues: string[]) => Promise<void>, onError: (err: unknown) => void) {
    this.send = send;
    this.onError = onError;
  }

  add(queues: readonly string[]): void {
    for (const q of queues) this.pending.add(q);
    if (!this.flushing) void this.flush();
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.size > 0) {
        const batch = [...this.pending];
        this.pending = new Set();
        try {
          await this.send(batch);
        } catch (err) {
          this.onError(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}
