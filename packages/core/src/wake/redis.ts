import { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import { Coalescer, parseWakeMessage, type WakeMessage, type WakeTransport } from './hub.ts';

/**
 * Wake-ups across nodes by Redis pub/sub. Redis holds nothing that matters: when it is down,
 * publishes fail fast (no offline queue), a warning is logged once per outage, and waiters
 * fall back to their poll interval until it returns; ioredis reconnects and re-subscribes.
 */
export class RedisTransport implements WakeTransport {
  readonly name = 'redis';
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly channel: string;
  private readonly nodeId: string;
  private readonly logger: Logger;
  private readonly coalescer: Coalescer;
  private down = false;
  private started = false;

  constructor(url: string, schema: string, nodeId: string, logger: Logger) {
    const common = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times: number) => Math.min(100 * times, 2000),
    };
    this.pub = new Redis(url, common);
    this.sub = new Redis(url, { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.channel = `taskflow:${schema}:wake`;
    this.nodeId = nodeId;
    this.logger = logger;
    for (const conn of [this.pub, this.sub]) {
      conn.on('error', (err) => this.markDown(err));
      conn.on('ready', () => this.markUp());
    }
    // The hello of a start or a reconnect goes out once the connection can carry it.
    this.pub.on('ready', () => {
      if (this.started) this.hello();
    });
    this.coalescer = new Coalescer((queues) => this.send({ n: this.nodeId, q: queues }), (err) => this.markDown(err));
  }

  private async send(msg: WakeMessage): Promise<void> {
    await this.pub.publish(this.channel, JSON.stringify(msg));
  }

  private markDown(err: unknown): void {
    if (this.down) return;
    this.down = true;
    this.logger.warn({ err }, 'Redis unreachable: wake-ups across nodes fall back to polling until it returns');
  }

  private markUp(): void {
    if (!this.down) return;
    this.down = false;
    this.logger.info({}, 'Redis reachable again: wake-ups across nodes are pushed');
  }

  async start(deliver: (msg: WakeMessage) => void): Promise<void> {
    this.started = true;
    this.sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      try {
        const msg = parseWakeMessage(message, this.nodeId);
        if (msg) deliver(msg);
      } catch (err) {
        this.logger.warn({ err }, 'ignored a malformed wake-up message');
      }
    });
    // Not awaited to the end: with Redis down at boot the service still starts (and polls);
    // the subscription is queued and ioredis renews it on every reconnect.
    this.sub.subscribe(this.channel).catch((err: unknown) => this.markDown(err));
  }

  publish(queues: string[]): void {
    this.coalescer.add(queues);
  }

  hello(): void {
    if (this.pub.status !== 'ready') return; // sent on 'ready'
    this.send({ n: this.nodeId, h: 1 }).catch((err: unknown) => this.markDown(err));
  }

  connected(): boolean {
    return this.pub.status === 'ready' && this.sub.status === 'ready';
  }

  async stop(): Promise<void> {
    this.pub.disconnect();
    this.sub.disconnect();
  }
}
