import type { Logger } from '../logger.ts';

/** What server nodes say to each other on the wake-up channel (JSON). */
export interface WakeMessage {
  /** The sending node's id. */
  n: string;
  /** Queues that have ready tasks. */
  q?: string[];
  /** Presence: the sender is up and listening. */
  h?: 1;
}

/**
 * Reads a message of the wake-up channel; undefined for this node's own (it has woken its own
 * waiters already). Throws on anything that is not a message of ours.
 */
export function parseWakeMessage(text: string, self: string): WakeMessage | undefined {
  const msg = JSON.parse(text) as WakeMessage;
  if (typeof msg?.n !== 'string' || (msg.q !== undefined && !Array.isArray(msg.q))) throw new Error('not a wake-up message');
  return msg.n === self ? undefined : msg;
}

/** Carries wake-ups between server nodes (LISTEN/NOTIFY or Redis pub/sub). */
export interface WakeTransport {
  readonly name: string;
  /** Starts delivering the other nodes' messages (never this node's own) to `deliver`. */
  start(deliver: (msg: WakeMessage) => void): Promise<void>;
  /** Tells the other nodes these queues have ready tasks. Never throws; logs instead. */
  publish(queues: string[]): void;
  /** Tells the other nodes this node is up and listening. Never throws; logs instead. */
  hello(): void;
  /** Whether its connection is up now, without a round trip (readiness); absent: always. */
  connected?(): boolean;
  stop(): Promise<void>;
}

export interface WakeHubOptions {
  /** How often this node tells the others it is here. @defaultValue 5000 */
  presenceIntervalMs: number;
  /** A node not heard from for this long is taken as gone. @defaultValue 3 × presenceIntervalMs */
  peerTtlMs: number;
}

/** Interest in a set of queues, registered before looking for work. */
export interface Subscription {
  /**
   * Resolves true when this subscription has been handed a wake-up of one of its queues
   * (including one handed to it since it was made), false after `timeoutMs` or when `signal`
   * aborts.
   */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  /** Whether this subscription has been handed a wake-up. */
  readonly woken: boolean;
  close(): void;
}

interface Waiter {
  readonly queues: readonly string[];
  wake(): void;
}

/**
 * Wake-ups for long-polling claims. In-process first (a task enqueued on this node wakes its
 * waiters without a round trip), then across nodes through the transport. A waiter
 * subscribes before it claims and waits after, so a wake-up that lands in between is not
 * lost; waiters also re-check on their poll interval, so a lost message (transport down)
 * costs at most that interval.
 *
 * Wake-ups go to the transport only while another node is listening. Each node says hello on
 * start and every `presenceIntervalMs`, and answers the hello of a node it did not know, so
 * two nodes know of each other within a round trip of the later one's start; a node not heard
 * from for `peerTtlMs` is forgotten. A lone node thus sends nothing per enqueue: on
 * PostgreSQL a `NOTIFY` per insert costs CPU on both sides, a large share of a one-task
 * insert, and its commit-time lock serialises commits. The price: a node started a moment ago
 * may miss a wake-up from a node that has not heard its hello yet, and waits one poll interval.
 *
 * A wake-up of a queue goes to **one** waiter of this node: the one that has waited longest.
 * Waking every waiter of a queue for each ready task would make every parked long poll claim
 * at once: with forty parked polls, forty claim statements per task where one takes it. The waiter hands the wake-up on (`wakeLocal`
 * again) when it may have left work behind: its claim filled its batch, or it will not claim
 * after the wake-up at all (it is answering already, its worker hung up, it failed). A
 * waiter that claimed less than a full batch, or nothing, hands nothing on: the queue is
 * empty as far as it can see. Shutdown wakes every waiter.
 */
export class WakeHub {
  /** Waiters by queue, oldest first (a Set keeps insertion order). */
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly transport: WakeTransport | undefined;
  private readonly logger: Logger;
  private readonly opts: WakeHubOptions;
  /** Other nodes, by id: when each was last heard from (performance.now()). */
  private readonly peers = new Map<string, number>();
  private presence: NodeJS.Timeout | undefined;

  constructor(transport: WakeTransport | undefined, logger: Logger, options: Partial<WakeHubOptions> = {}) {
    this.transport = transport;
    this.logger = logger;
    const presenceIntervalMs = options.presenceIntervalMs ?? 5000;
    this.opts = { presenceIntervalMs, peerTtlMs: options.peerTtlMs ?? 3 * presenceIntervalMs };
  }

  /** Whether the transport's connection is up (undefined without one, or one that cannot tell). */
  transportConnected(): boolean | undefined {
    return this.transport?.connected?.();
  }

  get transportName(): string {
    return this.transport?.name ?? 'in-process';
  }

  async start(): Promise<void> {
    const transport = this.transport;
    if (!transport) return;
    await transport.start((msg) => this.receive(msg));
    transport.hello();
    this.presence = setInterval(() => transport.hello(), this.opts.presenceIntervalMs);
    this.presence.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.presence);
    this.presence = undefined;
    await this.transport?.stop();
    const all = new Set<Waiter>();
    for (const set of this.waiters.values()) for (const w of set) all.add(w);
    this.waiters.clear();
    for (const w of all) w.wake();
  }

  /** Wakes local waiters and, if another node is listening, tells the other nodes. */
  publish(queues: string[]): void {
    this.wakeLocal(queues);
    if (this.transport && this.peerCount() > 0) this.transport.publish(queues);
  }

  /** Other nodes heard from within the last `peerTtlMs`. */
  peerCount(): number {
    if (this.peers.size === 0) return 0;
    const now = performance.now();
    for (const [id, at] of this.peers) if (now - at > this.opts.peerTtlMs) this.peers.delete(id);
    if (this.peers.size === 0) this.logger.info({ peerTtlMs: this.opts.peerTtlMs }, 'no other server node heard from: wake-ups stay on this node');
    return this.peers.size;
  }

  private receive(msg: WakeMessage): void {
    this.peerCount(); // forgets the nodes gone quiet
    const known = this.peers.has(msg.n);
    const alone = this.peers.size === 0;
    this.peers.set(msg.n, performance.now());
    if (!known) {
      if (alone) this.logger.info({ node: msg.n }, 'another server node is listening: wake-ups are pushed to other nodes');
      this.transport?.hello(); // so that a node that just started knows of this one at once
    }
    if (msg.q) this.wakeLocal(msg.q);
  }

  /**
   * Hands a wake-up of each of these queues to one waiter of this node: the oldest (see the
   * class comment). A waiter handed one stops waiting on all its queues.
   */
  wakeLocal(queues: readonly string[]): void {
    for (const q of queues) {
      const oldest = this.waiters.get(q)?.values().next().value;
      if (!oldest) continue;
      this.remove(oldest);
      oldest.wake();
    }
  }

  private remove(w: Waiter): void {
    for (const q of w.queues) {
      const set = this.waiters.get(q);
      if (!set) continue;
      set.delete(w);
      if (set.size === 0) this.waiters.delete(q);
    }
  }

  subscribe(queues: readonly string[]): Subscription {
    let woken = false;
    let resolveWait: ((v: boolean) => void) | undefined;
    const waiter: Waiter = {
      queues: [...new Set(queues)],
      wake: () => {
        woken = true;
        resolveWait?.(true);
      },
    };
    for (const q of waiter.queues) {
      let set = this.waiters.get(q);
      if (!set) this.waiters.set(q, (set = new Set()));
      set.add(waiter);
    }
    return {
      close: () => this.remove(waiter),
      get woken() {
        return woken;
      },
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
