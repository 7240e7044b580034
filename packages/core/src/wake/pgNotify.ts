import type { Database } from '../db/types.ts';
import type { Logger } from '../logger.ts';
import { Coalescer, parseWakeMessage, type WakeMessage, type WakeTransport } from './hub.ts';

/**
 * Wake-ups across nodes by LISTEN/NOTIFY on one channel per schema. The message names the
 * sending node (it has woken its own waiters already) and the queues. NOTIFY does not work
 * through PgBouncer's transaction pooling, and under heavy writes its commit-time lock
 * serialises commits: set REDIS_URL in those deployments.
 */
export class PgNotifyTransport implements WakeTransport {
  readonly name = 'postgres-notify';
  private readonly db: Database;
  private readonly channel: string;
  private readonly nodeId: string;
  private readonly logger: Logger;
  private readonly coalescer: Coalescer;
  private unlisten: (() => Promise<void>) | undefined;

  constructor(db: Database, nodeId: string, logger: Logger) {
    this.db = db;
    this.channel = `taskflow:${db.schema}`;
    this.nodeId = nodeId;
    this.logger = logger;
    this.coalescer = new Coalescer((queues) => this.send({ n: nodeId, q: queues }), (err) => this.failed(err));
  }

  private async send(msg: WakeMessage): Promise<void> {
    await this.db.query({ name: 'tf_wake_notify', text: 'SELECT pg_notify($1, $2)' }, [this.channel, JSON.stringify(msg)]);
  }

  private failed(err: unknown): void {
    this.logger.warn({ err }, 'NOTIFY failed; other nodes fall back to polling');
  }

  async start(deliver: (msg: WakeMessage) => void): Promise<void> {
    this.unlisten = await this.db.listen(this.channel, (payload) => {
      try {
        const msg = parseWakeMessage(payload, this.nodeId);
        if (msg) deliver(msg);
      } catch (err) {
        this.logger.warn({ err, payload }, 'ignored a malformed wake-up notification');
      }
    });
  }

  publish(queues: string[]): void {
    this.coalescer.add(queues);
  }

  hello(): void {
    this.send({ n: this.nodeId, h: 1 }).catch((err: unknown) => this.failed(err));
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
    this.unlisten = undefined;
  }
}
