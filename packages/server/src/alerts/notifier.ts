/**
 * The notifier: an in-process consumer of the `taskflow.alerts` queue, on every node. It
 * claims notification tasks through the engine's claim and settle (leases and fencing as for
 * any worker, no HTTP hop), sends each to its channel, and settles it: a failed send is a
 * failed attempt that the task's retry policy retries with backoff (evaluate.ts in core sets
 * it), so a notification survives a restart of every node and a receiver that is down.
 *
 * Its worker is registered when the first notification waits, and deregistered at stop.
 *
 * The task holds no secret: the rule's channel is read when sending. A notification whose
 * rule was deleted, or whose channel is gone, succeeds with nothing sent (and says so).
 */
import {
  ALERTS_QUEUE, InvalidStateError, Loop, NotFoundError, type AlertNotifyPayload, type Alerts, type ClaimedTask, type Engine,
  type Logger, type TaskResultReport,
} from '@taskflow/core';
import type { AlertMailer } from './email.ts';
import { noticeOf } from './notice.ts';
import { postWebhook } from './webhook.ts';

export interface NotifierOptions {
  engine: Engine;
  alerts: Alerts;
  logger: Logger;
  /** Absent: email channels fail (TASKFLOW_SMTP_URL is not set) and go to the dead-letter queue. */
  mailer?: AlertMailer;
  /** Longest sleep between looks for notifications, ms (it is hurried by new ones). @defaultValue 1000 */
  pollIntervalMs?: number;
  /** How long a webhook may take to answer, ms. @defaultValue 10000 */
  webhookTimeoutMs?: number;
  /** Notifications sent at once. @defaultValue 4 */
  concurrency?: number;
  /** Told of each send: the channel type and whether it went out. */
  onSent?: (channel: 'webhook' | 'email', ok: boolean) => void;
  /** The worker TTL: the notifier heartbeats a third of it apart. */
  workerTtlMs: number;
}

/** Marks the notifier's worker row, so that alert rules on live workers do not count it. */
export const INTERNAL_WORKER = { internal: 'alerts-notifier' };

export class AlertNotifier {
  private readonly opts: Required<Omit<NotifierOptions, 'mailer' | 'onSent'>> & Pick<NotifierOptions, 'mailer' | 'onSent'>;
  private readonly loop: Loop;
  private workerId: string | undefined;
  private lastBeat = 0;
  /** The engine clock at the last beat, when one is injected (null: the database's). */
  private lastBeatAt: number | null = null;
  private unsubscribe: (() => void) | undefined;

  constructor(options: NotifierOptions) {
    this.opts = { pollIntervalMs: 1000, webhookTimeoutMs: 10_000, concurrency: 4, ...options };
    this.loop = new Loop({ name: 'alert-notifier', intervalMs: this.opts.pollIntervalMs, logger: options.logger, run: () => this.pass() });
  }

  start(): void {
    this.unsubscribe = this.opts.engine.on({ ready: (queues) => queues.includes(ALERTS_QUEUE) && this.loop.soon(0) });
    this.loop.start();
  }

  /** Asks for a look at once (notifications were enqueued). */
  soon(): void {
    this.loop.soon(0);
  }

  /** Stops claiming, waits for the sends in progress, and deregisters (anything held is handed back). */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.loop.stop();
    if (this.workerId) await this.opts.engine.deregisterWorker(this.workerId).catch((err) => this.opts.logger.error({ err }, 'alert notifier failed to deregister'));
  }

  private async pass(): Promise<number | void> {
    const { engine, concurrency } = this.opts;
    // No worker row until there is something to send: a node whose rules have no channels
    // shows no notifier among its workers.
    if (this.workerId === undefined && !(await this.opts.alerts.notificationsWaiting())) return;
    const worker = await this.worker();
    let tasks = await engine.claim(worker, [{ name: ALERTS_QUEUE, weight: 1 }], concurrency);
    if (tasks.length === 0 && (await engine.workerState(worker)) !== 'active') {
      // Marked lost (a stalled process, or a clock moved in a test): a heartbeat brings it back.
      await this.beat(worker);
      tasks = await engine.claim(worker, [{ name: ALERTS_QUEUE, weight: 1 }], concurrency);
    }
    if (tasks.length === 0) return;
    const reports = await Promise.all(tasks.map((t) => this.deliver(t)));
    await engine.settle(worker, reports);
    return tasks.length === concurrency ? 0 : undefined;
  }

  private async worker(): Promise<string> {
    if (this.workerId === undefined) {
      const w = await this.opts.engine.registerWorker({
        name: 'taskflow-alert-notifier', queues: [{ name: ALERTS_QUEUE, weight: 1 }], concurrency: this.opts.concurrency, metadata: INTERNAL_WORKER,
      });
      this.workerId = w.id;
      this.noteBeat();
    } else if (this.beatDue()) {
      await this.beat(this.workerId);
    }
    return this.workerId!;
  }

  /**
   * A beat is due a third of the TTL after the last by this process's time, or by the engine's
   * clock when one is injected: that clock moves by jumps (a test's ManualClock), and a claim
   * made past the worker's deadline by it would hand the rescuer a delivery in flight to
   * requeue, to be sent twice.
   */
  private beatDue(): boolean {
    const third = this.opts.workerTtlMs / 3;
    const at = this.opts.engine.clock.now()?.getTime() ?? null;
    return Date.now() - this.lastBeat > third || (at !== null && this.lastBeatAt !== null && at - this.lastBeatAt > third);
  }

  private noteBeat(): void {
    this.lastBeat = Date.now();
    this.lastBeatAt = this.opts.engine.clock.now()?.getTime() ?? null;
  }

  private async beat(worker: string): Promise<void> {
    try {
      await this.opts.engine.heartbeat(worker);
      this.noteBeat();
    } catch (err) {
      if (!(err instanceof InvalidStateError || err instanceof NotFoundError)) throw err;
      this.workerId = undefined; // deregistered: register afresh on the next pass
      throw err;
    }
  }

  /** Sends one notification; the report to settle it with. */
  private async deliver(task: ClaimedTask): Promise<TaskResultReport> {
    const { alerts, logger, mailer, webhookTimeoutMs, onSent } = this.opts;
    const base = { id: task.id, attempt: task.attempt };
    let channelType: 'webhook' | 'email' | undefined;
    try {
      const payload = JSON.parse(task.payloadJson ?? 'null') as AlertNotifyPayload;
      const history = await alerts.getHistory(payload.historyId);
      const rule = await alerts.getRule(payload.ruleId).catch((err: unknown) => {
        if (err instanceof NotFoundError) return null;
        throw err;
      });
      const channel = rule?.channels[payload.channel];
      if (!rule || !channel) return { ...base, status: 'succeeded', result: { sent: false, reason: rule ? 'the channel is gone' : 'the rule was deleted' } };
      channelType = channel.type;
      const notice = noticeOf(history);
      if (channel.type === 'webhook') {
        const status = await postWebhook(channel.url, channel.secret, JSON.stringify(notice), `alert-${task.id}`, webhookTimeoutMs);
        onSent?.('webhook', true);
        return { ...base, status: 'succeeded', result: { sent: true, status } };
      }
      if (!mailer) {
        return { ...base, status: 'failed', retryable: false, error: { message: 'an email channel needs TASKFLOW_SMTP_URL and TASKFLOW_ALERTS_EMAIL_FROM' } };
      }
      await mailer.send(channel.to, notice);
      onSent?.('email', true);
      return { ...base, status: 'succeeded', result: { sent: true } };
    } catch (err) {
      if (channelType) onSent?.(channelType, false);
      logger.warn({ err, task: task.id, attemptsLeft: task.attemptsLeft }, 'alert notification failed; it is retried with backoff');
      return { ...base, status: 'failed', error: { message: (err as Error).message, stack: (err as Error).stack ?? null } };
    }
  }
}
