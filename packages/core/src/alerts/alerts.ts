/**
 * The front of the built-in alerts: rules, silences, history, the firing list and the
 * evaluation pass, over one engine (its database, clock and enqueue). See docs/operations.md,
 * "Alerts".
 */
import type { Engine } from '../engine/engine.ts';
import { Loop } from '../loop.ts';
import type { Logger } from '../logger.ts';
import { evaluateRules } from './evaluate.ts';
import * as rules from './rules.ts';
import * as A from '../sql/alerts.ts';
import { ALERTS_QUEUE, type AlertHistoryEntry, type AlertPassResult, type AlertRule, type AlertRuleInput, type AlertRulePatch } from './types.ts';

export class Alerts {
  private readonly engine: Engine;
  private readonly now: () => Date | null;

  constructor(engine: Engine) {
    this.engine = engine;
    this.now = () => engine.clock.now();
  }

  /** Throws InvalidInputError naming the field, AlreadyExistsError for a name taken. */
  createRule(input: AlertRuleInput): Promise<AlertRule> {
    return rules.createRule(this.engine.db, this.now, input);
  }

  getRule(id: string): Promise<AlertRule> {
    return rules.getRule(this.engine.db, id);
  }

  /** Rules by id; `afterId` is the last rule of the previous page. */
  listRules(page: { afterId?: string; limit: number }): Promise<AlertRule[]> {
    return rules.listRules(this.engine.db, page);
  }

  /**
   * Changes a rule (see AlertRulePatch). A change of kind, threshold, window or scope starts
   * its evaluation afresh (inactive); a rule disabled while firing resolves at the next pass.
   */
  updateRule(id: string, patch: AlertRulePatch): Promise<AlertRule> {
    return rules.updateRule(this.engine.db, this.now, id, patch);
  }

  /** Deletes a rule; its history stays. Returns it as it was. */
  deleteRule(id: string): Promise<AlertRule> {
    return rules.deleteRule(this.engine.db, id);
  }

  /**
   * Silences a rule until `until`: it still changes state and is recorded, marked silenced,
   * and sends nothing. `until` null lifts the silence.
   */
  silenceRule(id: string, until: Date | null, reason: string | null = null): Promise<AlertRule> {
    return rules.silenceRule(this.engine.db, this.now, id, until, reason);
  }

  /** Fired and resolved changes, newest first; `beforeId` is the last entry of the previous page. */
  listHistory(filter: { ruleId?: string; beforeId?: string; limit: number }): Promise<AlertHistoryEntry[]> {
    return rules.listHistory(this.engine.db, filter);
  }

  getHistory(id: string): Promise<AlertHistoryEntry> {
    return rules.getHistory(this.engine.db, id);
  }

  /** The rules firing now. */
  listFiring(): Promise<AlertRule[]> {
    return rules.listFiring(this.engine.db);
  }

  /** Whether a notification is ready on the alerts queue (the notifier's cue to register). */
  async notificationsWaiting(): Promise<boolean> {
    const { rows } = await this.engine.db.query(A.alertNotificationsWaiting, [ALERTS_QUEUE]);
    return rows[0]!.waiting === true;
  }

  /**
   * One evaluation pass over every enabled rule (and every disabled one still pending or
   * firing), now, whenever any node last evaluated them. Safe on every node at once: each
   * change of state is made, recorded and notified once (evaluate.ts). Depth and age are
   * counted unless `snapshotMaxAgeMs` lets them come from the queue gauges' snapshot
   * (values.ts).
   */
  evaluate(options: { snapshotMaxAgeMs?: number } = {}): Promise<AlertPassResult> {
    return evaluateRules(this.engine, { snapshotMaxAgeMs: options.snapshotMaxAgeMs ?? 0 });
  }

  /**
   * The duty's pass: evaluates the rules no node evaluated within the last `intervalMs` (less
   * a tenth), claiming them, so that the nodes running the duty share one pass per interval;
   * depth and age come from a snapshot younger than the interval. Evaluates nothing when
   * another node's pass came first.
   */
  evaluateDue(intervalMs: number): Promise<AlertPassResult> {
    return evaluateRules(this.engine, { claimIntervalMs: intervalMs, snapshotMaxAgeMs: intervalMs });
  }
}

export interface AlertDutyOptions {
  /** Time between passes, ms. @defaultValue 15000 */
  intervalMs?: number;
  /** Told after a pass that enqueued notifications (the notifier is hurried). */
  onNotified?: (count: number) => void;
}

/**
 * The evaluation duty: a Loop running `Alerts.evaluateDue` on every node; the nodes share one
 * pass per interval.
 */
export class AlertEvaluationDuty {
  private readonly loop: Loop;

  constructor(alerts: Alerts, logger: Logger, options: AlertDutyOptions = {}) {
    const intervalMs = options.intervalMs ?? 15_000;
    this.loop = new Loop({
      name: 'alerts',
      intervalMs,
      logger,
      run: async () => {
        const pass = await alerts.evaluateDue(intervalMs);
        if (pass.recorded > 0) logger.info({ ...pass }, 'alert rules changed state');
        if (pass.notifications > 0) options.onNotified?.(pass.notifications);
      },
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }
}
