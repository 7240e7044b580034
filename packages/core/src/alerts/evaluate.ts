/**
 * The evaluation duty's pass: each rule's value (values.ts), its next state (transition.ts),
 * and the change applied so that however many nodes evaluate at once, a rule changes state
 * once, is recorded once and notifies once.
 *
 * The duty's pass first claims the rules no node evaluated within the interval
 * (alertRulesClaim): a cluster evaluates each rule about once per interval, not once per
 * node. Correctness does not rest on the claim: two passes over one rule (a pass forced by a
 * caller, a node slower than the interval) still change it once, as below.
 *
 * A change is one transaction: the compare-and-set UPDATE on the version the pass read
 * (alertRuleTransition), then, for a move into or out of firing, the history row and one
 * notification task per channel (engine enqueue, same transaction). The node that loses the
 * race matches no row, writes nothing, and rolls back an empty transaction. A node killed
 * mid-transaction leaves nothing: the first pass of the next interval, on any node, makes the
 * change again.
 */
import type { Executor } from '../db/types.ts';
import type { Engine } from '../engine/engine.ts';
import type { Row } from '../engine/rows.ts';
import * as A from '../sql/alerts.ts';
import { toRule } from './rules.ts';
import { nextMove, type Move } from './transition.ts';
import { ALERT_KINDS, ALERT_NOTIFY_TYPE, ALERTS_QUEUE, type AlertNotifyPayload, type AlertPassResult, type AlertRule } from './types.ts';
import { PassValues, type RuleValue } from './values.ts';

/** Attempts of a notification, and its backoff: 5 s doubling (5, 10, 20 … 320 s: about 11 min in all). */
export const NOTIFY_MAX_ATTEMPTS = 8;
export const NOTIFY_BACKOFF = { type: 'exponential', delayMs: 5000, factor: 2, maxDelayMs: 600_000 } as const;
/** The lease of one delivery: a webhook's timeout is well under it. */
export const NOTIFY_TIMEOUT_MS = 60_000;

/** Whether the rule's condition holds for this value. A disabled rule's never does. */
export function holds(rule: Pick<AlertRule, 'kind' | 'threshold' | 'enabled' | 'minAttempts'>, v: RuleValue): boolean {
  if (!rule.enabled) return false;
  if (rule.kind === 'failure_rate' && v.samples < rule.minAttempts) return false;
  return ALERT_KINDS[rule.kind].compare === 'above' ? v.value > rule.threshold : v.work && v.value < rule.threshold;
}

/** Which rules a pass evaluates, and where their values come from. */
export interface PassOptions {
  /**
   * Claim the rules no node evaluated within this many ms (alertRulesClaim), rather than take
   * every rule: the duty's pass, once per interval across the nodes. Absent: every rule.
   */
  claimIntervalMs?: number;
  /** Read depth and age from a queue gauges' snapshot this young (PassValues). @defaultValue 0 (count) */
  snapshotMaxAgeMs?: number;
}

/**
 * The share of the interval a claim may come early: a timer or a round trip a few ms short of
 * the interval does not cost a whole interval.
 */
const CLAIM_SLACK = 0.1;

/** See Alerts.evaluate and Alerts.evaluateDue. */
export async function evaluateRules(engine: Engine, options: PassOptions = {}): Promise<AlertPassResult> {
  const result: AlertPassResult = { evaluated: 0, transitions: 0, recorded: 0, notifications: 0, lost: 0, failed: 0 };
  const { rows } = options.claimIntervalMs === undefined
    ? await engine.db.query(A.alertRulesToEvaluate, [engine.clock.now()])
    : await engine.db.query(A.alertRulesClaim, [engine.clock.now(), Math.floor(options.claimIntervalMs * (1 - CLAIM_SLACK))]);
  if (rows.length === 0) return result;
  const values = new PassValues(engine, new Date(rows[0]!.now), options.snapshotMaxAgeMs ?? 0);
  for (const row of rows) {
    const rule = toRule(row);
    const now = new Date(row.now);
    try {
      const v = await values.of(rule);
      result.evaluated++;
      const move = nextMove(rule.state, rule.stateSince, holds(rule, v), rule.forMs, now);
      if (!move) continue;
      const applied = await engine.db.transaction((tx) => apply(engine, tx, rule, move, v.value, now));
      if (applied === null) {
        result.lost++;
        continue;
      }
      result.transitions++;
      if (move.record) result.recorded++;
      result.notifications += applied;
    } catch (err) {
      // One rule that cannot be evaluated must not hold up the others: logged, tried again next pass.
      engine.logger.error({ err, rule: rule.id }, `alert rule ${rule.name} failed to evaluate; trying again in the next pass`);
      result.failed++;
    }
  }
  return result;
}

/** Applies a move; returns the notifications enqueued, or null when another node moved the rule first. */
async function apply(engine: Engine, tx: Executor, rule: AlertRule, move: Move, value: number, now: Date): Promise<number | null> {
  const moved = await tx.query(A.alertRuleTransition, [rule.id, rule.version, move.to, move.since, value]);
  if (moved.rows.length === 0) return null;
  if (!move.record) return 0;
  const silenced = rule.silencedUntil !== null && rule.silencedUntil.getTime() > now.getTime();
  const sent = silenced ? 0 : rule.channels.length;
  const { rows } = await tx.query(A.alertHistoryInsert, [
    rule.id, rule.name, rule.kind, move.record, value, rule.threshold, rule.severity, JSON.stringify(rule.scope), now, silenced, sent,
  ]);
  const historyId = String((rows[0] as Row).id);
  if (sent === 0) return 0;
  await engine.enqueue(rule.channels.map((_, channel) => {
    const payload: AlertNotifyPayload = { ruleId: rule.id, historyId, channel };
    return {
      queue: ALERTS_QUEUE, type: ALERT_NOTIFY_TYPE, payload, idempotencyKey: `alert:${historyId}:${channel}`,
      maxAttempts: NOTIFY_MAX_ATTEMPTS, backoff: { ...NOTIFY_BACKOFF }, timeoutMs: NOTIFY_TIMEOUT_MS,
    };
  }), tx);
  return sent;
}
