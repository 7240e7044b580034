/**
 * The firing duty's pass: every due schedule fires in a transaction of its own, on any number
 * of nodes at once (docs/schedules.md, "Exactly once").
 *
 * One transaction per schedule: lock it (scheduleLockDue, SKIP LOCKED), plan its fires from
 * next_fire_at up to the database's now (firePlan.ts), and for each fire record it
 * (scheduleFireInsert: the primary key (schedule, fire time), ON CONFLICT DO NOTHING), create
 * its task with the engine's enqueue in the same transaction and link the two; then advance
 * next_fire_at. The row lock keeps nodes from doing the same work; the key makes a fire happen
 * once whatever the locks did. A node killed mid-transaction loses nothing: PostgreSQL rolls
 * back the fire, the task and the advance together, and the next pass of any node fires it.
 */
import type { Executor } from '../db/types.ts';
import * as S from '../sql/schedules.ts';
import * as T from '../sql/tasks/index.ts';
import type { EngineContext } from './context.ts';
import { AdmissionRefusedError, InvalidInputError } from '../errors.ts';
import { enqueue, type TaskRef } from './enqueue.ts';
import { planFires, type PlannedFire } from './firePlan.ts';
import { FireTimes } from './fireTimes.ts';
import type { Row } from './rows.ts';
import type { FireOutcome, Schedule } from './scheduleTypes.ts';
import { toSchedule } from './schedules.ts';

/** Most fires one schedule makes in one transaction; the rest follow in the next. */
const FIRES_PER_TRANSACTION = 100;

const FINISHED = new Set(['succeeded', 'dead', 'cancelled']);

export interface FirePassResult {
  /** Schedules handled. */
  schedules: number;
  /** Tasks created. */
  created: number;
  /** Schedules that failed to fire (logged; tried again in the next pass). */
  failed: number;
}

/** See Engine.fireDueSchedules. */
export async function fireDueSchedules(ctx: EngineContext, limit: number): Promise<FirePassResult> {
  const failed: string[] = [];
  const result: FirePassResult = { schedules: 0, created: 0, failed: 0 };
  while (result.schedules < limit) {
    let made: Row[] | null;
    let id: string | undefined;
    try {
      made = await ctx.db.transaction(async (tx) => {
        const { rows } = await tx.query(S.scheduleLockDue, [ctx.now(), failed]);
        if (rows.length === 0) return null;
        id = String(rows[0]!.id);
        return fireOne(ctx, tx, toSchedule(rows[0]!), new Date(rows[0]!.now).getTime());
      });
    } catch (err) {
      // One schedule that cannot fire must not hold up the others: logged, passed over until
      // the next pass, which tries it again.
      if (id === undefined) throw err;
      ctx.logger.error({ err, schedule: id }, `schedule ${id} failed to fire; trying again in the next pass`);
      failed.push(id);
      result.failed++;
      continue;
    }
    if (made === null) break;
    result.schedules++;
    result.created += made.length;
    ctx.announce(made);
  }
  return result;
}

/** Fires one locked, due schedule. Returns the tasks it created (as rows for `announce`). */
async function fireOne(ctx: EngineContext, tx: Executor, s: Schedule, now: number): Promise<Row[]> {
  const times = new FireTimes(s, s.nextFireAt!.getTime());
  const plan = planFires(times, s.nextFireAt!.getTime(), now, s, FIRES_PER_TRANSACTION);
  const created: Row[] = [];
  let lastTask = s.lastTaskId;
  let newTask: string | null = null;
  for (const fire of plan.fires) {
    const outcome = fire.kind === 'skipped_misfire' ? 'skipped_misfire' : await overlapOutcome(tx, s, lastTask);
    if (!(await record(ctx, tx, s, fire, outcome))) continue; // fired already: the key says so
    if (outcome === 'skipped_misfire' || outcome === 'skipped_overlap') continue;
    const r = await createTask(ctx, tx, s, fire.fireTime, outcome === 'replaced' ? lastTask : null);
    if (r === null) continue; // refused, and recorded so
    created.push({ queue: r.queue, state: r.state, run_at: r.runAt });
    lastTask = newTask = r.id;
  }
  const last = plan.fires.at(-1)?.fireTime;
  await tx.query(S.scheduleAdvance, [
    s.id, plan.next === null ? null : new Date(plan.next), last === undefined ? null : new Date(last), newTask,
  ]);
  return created;
}

/**
 * Creates a recorded fire's task (after cancelling `replacing`, the last fire's task, under
 * overlap `replace`) and links the two; null when the task was refused. A refusal (the queue's
 * admission control, or a template that is no longer a valid task: it would be refused again
 * at every pass) is undone back to the savepoint, the fire recorded `refused` with the reason,
 * and the schedule moves on; any other error (the database unavailable, a lost race) fails the
 * whole transaction, which the next pass runs again.
 */
async function createTask(ctx: EngineContext, tx: Executor, s: Schedule, fireTime: number, replacing: string | null): Promise<TaskRef | null> {
  const at = new Date(fireTime);
  await tx.query(S.scheduleFireSavepoint);
  try {
    checkPayloadSize(s, ctx.options.maxPayloadBytes);
    if (replacing !== null) await tx.query(T.taskCancel, [replacing, ctx.now()]);
    const [r] = await enqueue(ctx, [{ ...s.template }], tx);
    await tx.query(S.scheduleFireLink, [s.id, at, r!.ref.id]);
    return r!.ref;
  } catch (err) {
    if (!(err instanceof AdmissionRefusedError || err instanceof InvalidInputError)) throw err;
    await tx.query(S.scheduleFireRollback);
    const reason = `${err.code}: ${err.message}`;
    await tx.query(S.scheduleFireRefused, [s.id, at, reason]);
    ctx.logger.warn({ schedule: s.id, fireTime: at, reason }, `schedule ${s.id}: the task of its fire at ${at.toISOString()} was refused; recorded as refused, and the schedule moves on`);
    return null;
  }
}

/**
 * The submission limit on the payload, measured as the server measures a submission's: a
 * template stored under a higher limit would make a task the API now refuses.
 */
function checkPayloadSize(s: Schedule, maxBytes: number | null): void {
  if (maxBytes === null) return;
  const t = s.template;
  const size = t.payloadBase64 !== undefined
    ? (t.payloadBase64.length / 4) * 3
    : t.payload !== undefined ? Buffer.byteLength(JSON.stringify(t.payload)) : 0;
  if (size > maxBytes) throw new InvalidInputError('template/payload', `is ${size} bytes, over the limit of ${maxBytes} bytes`);
}

/** What the overlap policy makes of a fire, given the task of the last fire. */
async function overlapOutcome(tx: Executor, s: Schedule, lastTask: string | null): Promise<FireOutcome> {
  if (s.overlapPolicy === 'allow' || lastTask === null) return 'created';
  const { rows } = await tx.query(T.taskGet, [lastTask]);
  if (rows.length === 0 || FINISHED.has(rows[0]!.state)) return 'created';
  return s.overlapPolicy === 'skip' ? 'skipped_overlap' : 'replaced';
}

/** Records a fire; false when it was recorded before (by another node, or an earlier pass). */
async function record(ctx: EngineContext, tx: Executor, s: Schedule, fire: PlannedFire, outcome: FireOutcome): Promise<boolean> {
  const { rows } = await tx.query(S.scheduleFireInsert, [
    s.id, new Date(fire.fireTime), outcome, fire.skippedThrough === null ? null : new Date(fire.skippedThrough), ctx.now(),
  ]);
  return rows.length > 0;
}

/** See Engine.nextScheduleDueInMs. */
export async function nextScheduleDueInMs(ctx: EngineContext): Promise<number | null> {
  const { rows } = await ctx.db.query(S.scheduleNextDue, [ctx.now()]);
  return rows[0]?.ms ?? null;
}
