/**
 * Settlement: a worker's results, each accepted only for the current attempt it holds (the
 * fencing token), and the claim of its next tasks in as few round trips as possible.
 */
import { mapStorageError, PG_ERROR, ResultTooLargeError, sqlState } from '../errors.ts';
import * as T from '../sql/tasks/index.ts';
import type { Statement } from '../db/types.ts';
import type { EngineContext } from './context.ts';
import { claimFrom } from './claim.ts';
import { isTaskId, isUuid } from './ids.ts';
import { isSettled, toClaimedTask, type Row } from './rows.ts';
import { weightedOrder } from './weights.ts';
import { observeClaimed, observeEnded, observeSucceededLists } from './observe.ts';
import type { ClaimedTask, QueueWeight, SettleOutcome, TaskResultReport } from './types.ts';
import type { EngineTelemetry } from './telemetry.ts';

/** See Engine.settle. */
export async function settle(ctx: EngineContext, workerId: string, reports: readonly TaskResultReport[]): Promise<SettleOutcome[]> {
  return (await settleAndClaim(ctx, workerId, reports, [], 0)).outcomes;
}

/** See Engine.settleAndClaim. */
export async function settleAndClaim(
  ctx: EngineContext, workerId: string, reports: readonly TaskResultReport[], queues: readonly QueueWeight[], max: number,
): Promise<{ outcomes: SettleOutcome[]; tasks: ClaimedTask[] }> {
  if (!isUuid(workerId)) return { outcomes: reports.map(() => 'stale'), tasks: [] };
  // Each task's first report counts (a later one for the same task is stale), split by status
  // in one pass: this runs for every result of every request.
  const firstIndex = new Map<string, number>();
  const unique: TaskResultReport[] = [];
  const ok: (TaskResultReport & { status: 'succeeded' })[] = [];
  const failed: (TaskResultReport & { status: 'failed' })[] = [];
  const released: TaskResultReport[] = [];
  for (let i = 0; i < reports.length; i++) {
    const r = reports[i]!;
    if (firstIndex.has(r.id) || !isTaskId(r.id)) continue;
    firstIndex.set(r.id, i);
    unique.push(r);
    if (r.status === 'succeeded') ok.push(r);
    else if (r.status === 'failed') failed.push(r);
    else if (r.status === 'released') released.push(r);
  }
  await refuseLargeParentResults(ctx, ok);
  const order = max > 0 ? weightedOrder(queues) : [];
  // The successes' statement carries the plain claim of the first queue. When that queue is
  // limited, the statement claims nothing (a limit of 0) and the queue's own claim follows
  // (claimFrom, flowClaim.ts): the queue's lock, which every claimer of the queue waits for, is
  // then held for the claim alone, not for the settlement's writes and its commit's WAL flush.
  // The claim, a transaction begun after the settlement committed, counts the slots the
  // successes freed.
  const carrier = ok.length > 0 ? order[0] : undefined;
  const carried = carrier === undefined || ctx.flow.isLimited(carrier.name) ? 0 : max;
  const now = ctx.now();
  // Failures and releases first (rare, and a task queued again at once may then be claimed
  // in this very call).
  const failRows = failed.length === 0 ? [] : await runSettle(ctx, T.taskFailMany, failed.map(toFailRow), workerId, now);
  const releaseRowList = released.length === 0 ? [] : await releaseRows(ctx, workerId, released);
  const failedRows = releaseRowList.length === 0 ? failRows : [...failRows, ...releaseRowList];
  const okRows = ok.length === 0
    ? []
    : carrier
      ? await runSettle(ctx, ctx.telemetry ? T.taskSucceedAndClaimObserved : T.taskSucceedAndClaim, ok.map(toSucceedRow), workerId, now, [carrier.name, carried])
      : await runSettle(ctx, T.taskSucceedMany, ok.map(toSucceedRow), workerId, now);
  const tasks = carrier ? okRows.filter((r) => r.kind === 'claimed').map(toClaimedTask) : [];
  ctx.churn += tasks.length;
  // taskSucceedAndClaim lists the settled ids (and the queues of children made ready, in
  // `ready_queues`) in one row; taskSucceedMany returns a row each (and one per child it changed).
  const settledRow = carrier ? okRows.find((r) => r.kind === 'settled') : undefined;
  const settledList: string | null | undefined = settledRow?.id;
  const settledOk = carrier ? (settledList ? settledList.split(',') : []) : okRows.filter(isSettled).map((r) => String(r.id));
  if (ctx.telemetry) observeSettlement(ctx.telemetry, { okRows, withClaim: carrier !== undefined, failRows, failed, releaseRows: releaseRowList });
  if (settledRow?.ready_queues) ctx.announce((settledRow.ready_queues as string).split(',').map((queue) => ({ queue, state: 'queued' })));
  else if (!carrier) ctx.announce(okRows.filter((r) => !isSettled(r)));
  if (tasks.length < max) tasks.push(...(await claimFrom(ctx, workerId, carried > 0 ? order.slice(1) : order, max - tasks.length)));
  const accepted = new Set<string>(settledOk);
  for (const r of failedRows) if (isSettled(r)) accepted.add(String(r.id));
  ctx.churn += accepted.size;
  ctx.announce(failedRows);
  if (accepted.size > 0) wakeLimited(ctx, queues, [...okRows, ...failedRows]);
  const refused = unique.filter((r) => !accepted.has(r.id));
  const duplicates = refused.length === 0 ? new Set<string>() : await settledBy(ctx, workerId, refused);
  const outcomes = reports.map((r, i): SettleOutcome => {
    if (firstIndex.get(r.id) !== i) return 'stale';
    return accepted.has(r.id) ? 'accepted' : duplicates.has(r.id) ? 'duplicate' : 'stale';
  });
  if (ctx.telemetry && accepted.size + duplicates.size < reports.length) {
    ctx.telemetry.rejected(outcomes.filter((o) => o === 'stale').length);
  }
  return { outcomes, tasks };
}

/** Tells the observer what one settlement did (see telemetry.ts). */
function observeSettlement(t: EngineTelemetry, s: {
  okRows: readonly Row[]; withClaim: boolean; failRows: readonly Row[]; failed: readonly TaskResultReport[]; releaseRows: readonly Row[];
}): void {
  if (s.withClaim) {
    observeSucceededLists(t, s.okRows);
    observeClaimed(t, s.okRows);
  } else {
    observeEnded(t, s.okRows, 'succeeded');
  }
  observeEnded(t, s.failRows, 'failed', s.failed);
  observeEnded(t, s.releaseRows, 'abandoned');
}

/**
 * Settled attempts free slots of limited queues: their waiting claimers look again. The queues
 * are the worker's and those the success rows name (a settle without a claim).
 */
function wakeLimited(ctx: EngineContext, queues: readonly QueueWeight[], okRows: readonly Row[]): void {
  const limited = new Set<string>();
  for (const q of queues) if (ctx.flow.isLimited(q.name)) limited.add(q.name);
  for (const r of okRows) if (typeof r.queue === 'string' && ctx.flow.isLimited(r.queue)) limited.add(r.queue);
  if (limited.size > 0) ctx.announce([...limited].map((queue) => ({ queue, state: 'queued' })));
}

/** See Engine.releaseClaimed. */
export async function releaseClaimed(ctx: EngineContext, workerId: string, tasks: readonly { id: string; attempt: number }[]): Promise<number> {
  if (tasks.length === 0 || !isUuid(workerId)) return 0;
  const rows = await releaseRows(ctx, workerId, tasks);
  if (ctx.telemetry) observeEnded(ctx.telemetry, rows, 'abandoned');
  ctx.announce(rows);
  return rows.filter(isSettled).length;
}

/**
 * Most bytes of JSON a task with children may return: its children receive it in their
 * claim answers (all their parents' results together), so it is refused rather than truncated.
 */
export const MAX_PARENT_RESULT_BYTES = 64 * 1024;

/**
 * Refuses the whole report when a success carries a result over MAX_PARENT_RESULT_BYTES for a
 * task that has children. Costs a query only when such a large result comes in.
 */
async function refuseLargeParentResults(ctx: EngineContext, ok: readonly TaskResultReport[]): Promise<void> {
  const large = new Map<string, number>();
  for (const r of ok) {
    if (r.status !== 'succeeded') continue;
    const json = r.resultJson ?? (r.result === undefined ? undefined : JSON.stringify(r.result));
    if (json !== undefined && json.length > MAX_PARENT_RESULT_BYTES / 4) {
      const bytes = Buffer.byteLength(json);
      if (bytes > MAX_PARENT_RESULT_BYTES) large.set(r.id, bytes);
    }
  }
  if (large.size === 0) return;
  const { rows } = await ctx.db.query(T.taskWithChildren, [[...large.keys()]]);
  const first = rows[0];
  if (first) throw new ResultTooLargeError(String(first.id), large.get(String(first.id))!, MAX_PARENT_RESULT_BYTES);
}

async function releaseRows(ctx: EngineContext, workerId: string, tasks: readonly { id: string; attempt: number }[]): Promise<Row[]> {
  const { rows } = await ctx.db.query(T.taskReleaseClaimed, [
    ctx.now(), ctx.options.poisonAfter, workerId, tasks.map((t) => t.id), tasks.map((t) => t.attempt),
  ]);
  return rows;
}

/** Of the refused reports, those this worker had already settled (retried reports). */
async function settledBy(ctx: EngineContext, workerId: string, reports: readonly TaskResultReport[]): Promise<Set<string>> {
  const { rows } = await ctx.db.query(T.taskSettledBy, [
    reports.map((r) => r.id), reports.map((r) => r.attempt), workerId, reports.map((r) => r.status === 'released'),
  ]);
  return new Set(rows.map((r) => r.id as string));
}

/** Times a settle statement is run again after PostgreSQL aborted it as a deadlock. */
const DEADLOCK_RETRIES = 3;

/**
 * Runs a settle statement. A deadlock (two settlements unblocking shared children in different
 * orders: sql/tasks/dependents.ts) rolled the whole statement back, so it runs again as it was.
 */
async function runSettle(ctx: EngineContext, statement: Statement, rows: string[], workerId: string, now: Date | null, extra: unknown[] = []): Promise<Row[]> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await ctx.db.query(statement, [`[${rows.join(',')}]`, workerId, now, ...extra])).rows;
    } catch (err) {
      if (sqlState(err) === PG_ERROR.deadlockDetected && attempt < DEADLOCK_RETRIES) continue;
      throw mapStorageError(err, 'results');
    }
  }
}

/**
 * One row of a success batch, as JSON text (the result as the edge serialised it); result and
 * logs only when there are some (see SUCCEED_INPUT in sql/tasks/settle.ts). The id goes as a JSON
 * number: it is a checked decimal of at most 19 digits, which PostgreSQL reads into its bigint
 * column exactly.
 */
function toSucceedRow(r: TaskResultReport & { status: 'succeeded' }): string {
  const result = r.resultJson ?? (r.result === undefined ? undefined : JSON.stringify(r.result));
  return `{"id":${r.id},"attempt":${r.attempt}${result === undefined ? '' : `,"rw":{"v":${result}}`}${r.logs ? `,"logs":${JSON.stringify(r.logs)}` : ''}${r.traceId ? `,"tid":${JSON.stringify(r.traceId)}` : ''}}`;
}

/** One row of a failure batch, as JSON text. */
function toFailRow(r: TaskResultReport & { status: 'failed' }): string {
  return JSON.stringify({
    id: r.id,
    attempt: r.attempt,
    message: r.error.message,
    stack: r.error.stack ?? null,
    retryable: r.retryable ?? true,
    retry_after_ms: r.retryAfterMs ?? null,
    logs: r.logs ?? null,
    trace_id: r.traceId ?? null,
  });
}
