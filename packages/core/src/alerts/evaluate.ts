/**
 * The evaluation duty's pass: each rule's value from the database, its next state
 * (transition.ts), and the change applied so that however many nodes evaluate at once, a rule
 * changes state once, is recorded once and notifies once.
 *
 * A change is one transaction: the compare-and-set UPDATE on the version the pass read
 * (alertRuleTransition), then, for a move into or out of firing, the history row and one
 * notification task per channel (engine enqueue, same transaction). The node that loses the
 * race matches no row, writes nothing, and rolls back an empty transaction. A node killed
 * mid-transaction leaves nothing: the next pass of any node makes the change again.
 */
import type { Executor, Statement } from '../db/types.ts';
import type { Engine } from '../engine/engine.ts';
import type { Row } from '../engine/rows.ts';
import * as A from '../sql/alerts.ts';
import { toRule } from './rules.ts';
import { nextMove, type Move } from './transition.ts';
import {
  ALERT_KINDS, ALERT_NOTIFY_TYPE, ALERTS_QUEUE, type AlertKind, type AlertNotifyPayload, type AlertPassResult, type AlertRule,
} from './types.ts';

/** Attempts of a notification, and its backoff: 5 s doubling (5, 10, 20 … 320 s: about 11 min in all). */
export const NOTIFY_MAX_ATTEMPTS = 8;
export const NOTIFY_BACKOFF = { type: 'exponential', delayMs: 5000, factor: 2, maxDelayMs: 600_000 } as const;
/** The lease of one delivery: a webhook's timeout is well under it. */
export const NOTIFY_TIMEOUT_MS = 60_000;

const VALUE_OF: Record<AlertKind, Statement> = {
  queue_depth: A.alertValueQueueDepth,
  oldest_ready_age: A.alertValueOldestReadyAge,
  failure_rate: A.alertValueFailureRate,
  dead_letter_growth: A.alertValueDeadGrowth,
  workers_online_below: A.alertValueWorkersOnline,
  no_completions: A.alertValueCompletions,
  schedule_missed_fire: A.alertValueMissedFires,
};

export interface RuleValue {
  value: number;
  /** Whether work waits in the scope (the `below` kinds fire only then). */
  work: boolean;
  /** failure_rate: the attempts that ended in the window. */
  samples: number;
}

/** A rule's value at `now`. */
export async function ruleValue(db: Executor, rule: Pick<AlertRule, 'kind' | 'scope' | 'windowMs'>, now: Date): Promise<RuleValue> {
  const s = rule.scope;
  const from = new Date(now.getTime() - (rule.windowMs ?? 0));
  const params = rule.kind === 'workers_online_below'
    ? [now, s.queue ?? null]
    : rule.kind === 'schedule_missed_fire'
      ? [now, s.schedule ?? null, null, from]
      : ALERT_KINDS[rule.kind].windowed ? [now, s.queue ?? null, s.type ?? null, from] : [now, s.queue ?? null, s.type ?? null];
  const row = (await db.query(VALUE_OF[rule.kind], params)).rows[0]!;
  return { value: Number(row.value), work: row.work !== false, samples: Number(row.samples ?? 0) };
}

/** Whether the rule's condition holds for this value. A disabled rule's never does. */
export function holds(rule: Pick<AlertRule, 'kind' | 'threshold' | 'enabled' | 'minAttempts'>, v: RuleValue): boolean {
  if (!rule.enabled) return false;
  if (rule.kind === 'failure_rate' && v.samples < rule.minAttempts) return false;
  return ALERT_KINDS[rule.kind].compare === 'above' ? v.value > rule.threshold : v.work && v.value < rule.threshold;
}

/** See Alerts.evaluate. */
export async function evaluateRules(engine: Engine): Promise<AlertPassResult> {
  const result: AlertPassResult = { evaluated: 0, transitions: 0, recorded: 0, notifications: 0, lost: 0, failed: 0 };
  const { rows } = await engine.db.query(A.alertRulesToEvaluate, [engine.clock.now()]);
  for (const row of rows) {
    const rule = toRule(row);
    const now = new Date(row.now);
    try {
      const v = await ruleValue(engine.db, rule, now);
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
  const moved = await tx.query(A.alertRuleTransition, [rule.id, rule.version, move.to, move.since, value, now]);
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
