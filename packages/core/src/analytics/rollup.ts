/**
 * One pass of the analytics rollup: the minute rows from the last final minute to now,
 * recomputed from `tasks` and `attempts`, then the hour, 6-hour and day rows they fall in. Every node may run
 * it: a transaction-scoped advisory lock elects one at a time, and a pass recomputes rather
 * than adds, so a pass run twice, or cut short and rolled back, leaves the same rows.
 *
 * Nothing on the claim or settle path writes analytics: the hot path pays only the BRIN
 * index on `finished_at` (migration 0006).
 */
import type { Database, Executor } from '../db/types.ts';
import * as A from '../sql/analytics.ts';

export interface RollupOptions {
  /** How far back the very first pass starts, ms (history older than this is not rolled up). @defaultValue 7 days */
  backfillMs: number;
  /**
   * Minutes behind now that are still recomputed at every pass, ms: a settlement whose
   * transaction began this long before it committed is still counted. @defaultValue 120000
   */
  settleMarginMs: number;
  /** Most minutes one pass covers; a pass that is behind returns `behind` and the duty runs again. @defaultValue 60 */
  maxMinutesPerPass: number;
  /** How long minute rows are kept, ms. @defaultValue 2 days */
  minuteRetentionMs: number;
  /** How long hour rows are kept, ms. @defaultValue 90 days */
  hourRetentionMs: number;
  /** How long day rows are kept, ms. @defaultValue 400 days */
  dayRetentionMs: number;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

export const DEFAULT_ROLLUP_OPTIONS: RollupOptions = {
  backfillMs: 7 * DAY,
  settleMarginMs: 2 * MINUTE,
  maxMinutesPerPass: 60,
  minuteRetentionMs: 2 * DAY,
  hourRetentionMs: 90 * DAY,
  dayRetentionMs: 400 * DAY,
};

export interface RollupPassResult {
  /** False when another node held the lock: this one did nothing. */
  ran: boolean;
  /** The minutes recomputed, [from, to). */
  from?: Date;
  to?: Date;
  /** Minutes up to now remain: run again at once. */
  behind: boolean;
}

const floorTo = (t: number, unit: number) => Math.floor(t / unit) * unit;
const ceilTo = (t: number, unit: number) => Math.ceil(t / unit) * unit;

/** The id marks after a pass (see analytics_state in migration 0006). */
function nextMarks(st: Record<string, any>, finalThrough: number): unknown[] {
  let idMark = String(st.id_mark);
  let idMarkAt: Date | null = st.id_mark_at;
  let pending: string | null = st.pending_mark;
  let pendingAt: Date | null = st.pending_mark_at;
  if (pending !== null && pendingAt !== null && pendingAt.getTime() <= finalThrough) {
    idMark = pending;
    idMarkAt = pendingAt;
    pending = null;
    pendingAt = null;
  }
  if (pending === null) {
    pending = String(st.mark);
    pendingAt = st.mark_at;
  }
  return [idMark, idMarkAt, pending, pendingAt];
}

/** Runs one pass, as the elected node, or returns `ran: false`. `now` null = database time. */
export async function rollupPass(db: Database, now: Date | null, options: Partial<RollupOptions> = {}): Promise<RollupPassResult> {
  const opts = { ...DEFAULT_ROLLUP_OPTIONS, ...options };
  return db.transaction(async (tx) => {
    const { rows: lock } = await tx.query(A.analyticsLock);
    if (!lock[0]?.locked) return { ran: false, behind: false };
    await tx.query(A.analyticsNoJit);
    await tx.query(A.analyticsSummarize, [db.driver === 'pglite']);
    const st = (await tx.query(A.analyticsStateRead, [now])).rows[0]!;
    const t = (st.now as Date).getTime();
    const open = floorTo(t, MINUTE) + MINUTE; // the end of the current minute
    // The first pass backfills `backfillMs`, or from the first task if that is later (none: now).
    const first = st.first_created_at ? Math.max(t - opts.backfillMs, (st.first_created_at as Date).getTime()) : t;
    const from = st.final_through ? (st.final_through as Date).getTime() : floorTo(Math.min(first, t), HOUR);
    const to = Math.min(open, from + opts.maxMinutesPerPass * MINUTE);
    if (to <= from) return { ran: true, behind: false };
    // A mark newer than `from` would hide tasks created between the two: search for one. A
    // window well before the newest mark (the backfill) gets an upper bound too.
    const maxId = String(st.mark);
    const mark = st.id_mark_at && (st.id_mark_at as Date).getTime() <= from ? String(st.id_mark) : await searchMark(tx, from - CREATION_SLACK_MS, maxId);
    const upper = to + CREATION_SLACK_MS < (st.mark_at as Date).getTime() ? await searchMark(tx, to + CREATION_SLACK_MS, maxId) : null;
    await recompute(tx, from, to, [mark, upper]);
    const finalThrough = Math.max(from, Math.min(to, floorTo(t - opts.settleMarginMs, MINUTE)));
    await tx.query(A.analyticsPrune, [
      new Date(floorTo(t, MINUTE) - opts.minuteRetentionMs), new Date(floorTo(t, HOUR) - opts.hourRetentionMs),
      new Date(floorTo(t, DAY) - opts.dayRetentionMs),
    ]);
    await tx.query(A.analyticsStateWrite, [new Date(finalThrough), ...nextMarks(st, finalThrough), now]);
    return { ran: true, from: new Date(from), to: new Date(to), behind: to < open };
  });
}

/**
 * How much earlier than its id's neighbours a task may have been created: ids are handed out
 * in order, but created_at is its transaction's start, so a task submitted inside a long
 * transaction can carry an older time than tasks with smaller ids.
 */
const CREATION_SLACK_MS = 10 * MINUTE;

/**
 * The id where creation times cross `target`, by bisection over the primary key: a task with
 * an id at most the answer was created before `target`, and the next one at or after it
 * (give or take CREATION_SLACK_MS, which the callers add). About log2(max id) lookups, where
 * counting submissions without it would read the whole table: the marks of the passes
 * (analytics_state) spare it once the duty has caught up.
 */
async function searchMark(tx: Executor, target: number, maxId: string): Promise<string> {
  let lo = 0n; // created before target (or no task)
  let hi = BigInt(maxId) + 1n; // past the end
  while (hi - lo > 1n) {
    const mid = (lo + hi) / 2n;
    const row = (await tx.query(A.analyticsCreatedAt, [mid.toString()])).rows[0];
    if (!row) hi = mid;
    else if ((row.created_at as Date).getTime() < target) lo = BigInt(row.id as string);
    else hi = mid;
  }
  return lo.toString();
}

/** The minute rows of [from, to), then the hour, 6-hour and day rows that contain them. */
async function recompute(tx: Executor, from: number, to: number, ids: [string, string | null]): Promise<void> {
  await tx.query(A.analyticsClearMinutes, [new Date(from), new Date(to)]);
  await tx.query(A.analyticsRollupMinutes, [new Date(from), new Date(to), ...ids]);
  const hours = [new Date(floorTo(from, HOUR)), new Date(ceilTo(to, HOUR))];
  await tx.query(A.analyticsClearHours, hours);
  await tx.query(A.analyticsRollupHours, hours);
  const quarters = [new Date(floorTo(from, 6 * HOUR)), new Date(ceilTo(to, 6 * HOUR))];
  await tx.query(A.analyticsClear6h, quarters);
  await tx.query(A.analyticsRollup6h, quarters);
  const days = [new Date(floorTo(from, DAY)), new Date(ceilTo(to, DAY))];
  await tx.query(A.analyticsClearDays, days);
  await tx.query(A.analyticsRollupDays, days);
}
