/**
 * The value a rule measures, for one evaluation pass. Most kinds are one statement of
 * sql/alerts.ts over their scope. `queue_depth` and `oldest_ready_age` cost the backlog they
 * count, so:
 * - unscoped or scoped by queue, they are read from the queue gauges' snapshot
 *   (`stats_snapshot`, engine/stats.ts) when it is fresh: taken within the pass's
 *   `snapshotMaxAgeMs` and before the pass's instant. A stale one is refreshed first through
 *   its own election (one node counts per period; the metrics read the same row), and counted
 *   only when that does not make it fresh (another node is refreshing it, or the engine clock
 *   stands still on the snapshot's instant, as a ManualClock in a test can);
 * - scoped by type, `queue_depth` counts at most threshold + 1 ready tasks (a type may be spread
 *   over every queue, and the snapshot counts per queue): the value recorded when it fires is
 *   that bound, not the whole backlog. `oldest_ready_age` by type counts.
 */
import type { Executor, Statement } from '../db/types.ts';
import type { Engine } from '../engine/engine.ts';
import type { QueueStats, StatsSnapshot } from '../engine/stats.ts';
import * as A from '../sql/alerts.ts';
import { ALERT_KINDS, type AlertKind, type AlertRule } from './types.ts';

const VALUE_OF: Record<AlertKind, Statement> = {
  queue_depth: A.alertValueQueueDepth,
  oldest_ready_age: A.alertValueOldestReadyAge,
  failure_rate: A.alertValueFailureRate,
  dead_letter_growth: A.alertValueDeadGrowth,
  workers_online_below: A.alertValueWorkersOnline,
  no_completions: A.alertValueCompletions,
  schedule_missed_fire: A.alertValueMissedFires,
};

/** The largest cap worth a LIMIT; above it the count is whole (no backlog is that deep). */
const MAX_CAP = 2 ** 48;

export interface RuleValue {
  value: number;
  /** Whether work waits in the scope (the `below` kinds fire only then). */
  work: boolean;
  /** failure_rate: the attempts that ended in the window. */
  samples: number;
}

type Measured = Pick<AlertRule, 'kind' | 'scope' | 'windowMs' | 'threshold'>;

/** A rule's value at `now`, counted (no snapshot). */
export async function ruleValue(db: Executor, rule: Measured, now: Date): Promise<RuleValue> {
  const s = rule.scope;
  const from = new Date(now.getTime() - (rule.windowMs ?? 0));
  if (rule.kind === 'queue_depth' && s.type !== undefined) {
    const cap = Math.max(1, Math.floor(rule.threshold) + 1);
    const statement = cap > MAX_CAP ? A.alertValueQueueDepth : A.alertValueQueueDepthCapped;
    const row = (await db.query(statement, cap > MAX_CAP ? [now, s.queue ?? null, s.type] : [now, s.queue ?? null, s.type, cap])).rows[0]!;
    return { value: Number(row.value), work: true, samples: 0 };
  }
  const params = rule.kind === 'workers_online_below'
    ? [now, s.queue ?? null]
    : rule.kind === 'schedule_missed_fire'
      ? [now, s.schedule ?? null, null, from]
      : ALERT_KINDS[rule.kind].windowed ? [now, s.queue ?? null, s.type ?? null, from] : [now, s.queue ?? null, s.type ?? null];
  const row = (await db.query(VALUE_OF[rule.kind], params)).rows[0]!;
  return { value: Number(row.value), work: row.work !== false, samples: Number(row.samples ?? 0) };
}

/**
 * The values of one pass: the snapshot is read (and refreshed if stale) once, by the first
 * rule that can use it. `snapshotMaxAgeMs` 0: every value is counted.
 */
export class PassValues {
  private readonly engine: Engine;
  private readonly now: Date;
  private readonly snapshotMaxAgeMs: number;
  private snapshot: Promise<StatsSnapshot | null> | undefined;

  constructor(engine: Engine, now: Date, snapshotMaxAgeMs: number) {
    this.engine = engine;
    this.now = now;
    this.snapshotMaxAgeMs = snapshotMaxAgeMs;
  }

  async of(rule: Measured): Promise<RuleValue> {
    const fromSnapshot = this.snapshotMaxAgeMs > 0 && (rule.kind === 'queue_depth' || rule.kind === 'oldest_ready_age') && rule.scope.type === undefined;
    const snapshot = fromSnapshot ? await (this.snapshot ??= this.freshSnapshot()) : null;
    if (!snapshot) return ruleValue(this.engine.db, rule, this.now);
    const queues = snapshot.queues.filter((q) => rule.scope.queue === undefined || q.queue === rule.scope.queue);
    const value = rule.kind === 'queue_depth'
      ? queues.reduce((n, q) => n + (q.counts.queued ?? 0), 0)
      : queues.reduce((age, q) => Math.max(age, readyAgeMs(q, snapshot.takenAt, this.now)), 0);
    return { value, work: true, samples: 0 };
  }

  private async freshSnapshot(): Promise<StatsSnapshot | null> {
    const current = await this.engine.readStats();
    if (this.fresh(current)) return current;
    if (!(await this.engine.refreshStats(this.snapshotMaxAgeMs))) return null;
    const refreshed = await this.engine.readStats();
    return this.fresh(refreshed) ? refreshed : null;
  }

  /**
   * Taken within the allowed age of the pass's instant (after it, too: refreshed during the
   * pass), but not at that very instant: such a snapshot cannot be ordered against the writes
   * of the instant (an engine clock held still); the database's now() does not repeat.
   */
  private fresh(s: StatsSnapshot | null): s is StatsSnapshot {
    if (!s) return false;
    const ageMs = Math.round((this.now.getTime() - s.takenAt * 1000) * 1000) / 1000; // to the µs of timestamptz
    return ageMs !== 0 && Math.abs(ageMs) < this.snapshotMaxAgeMs;
  }
}

/**
 * How long the queue's oldest ready task has waited at `now`, from its age at the snapshot:
 * that task's wait if it still waits (the case the rule is for: nothing takes it), an
 * overestimate by at most the snapshot's age if a worker took it since.
 */
function readyAgeMs(q: QueueStats, takenAt: number, now: Date): number {
  if (!q.counts.queued) return 0;
  return Math.max(0, now.getTime() - (takenAt - q.oldestReadyAgeSeconds) * 1000);
}
