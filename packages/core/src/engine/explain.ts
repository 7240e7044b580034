/**
 * "Why is this task not running?" (docs/flow-control.md): what holds a task, read in one
 * statement (sql/flow.ts, taskExplain) and weighed here.
 */
import { NotFoundError } from '../errors.ts';
import * as F from '../sql/flow.ts';
import type { EngineContext } from './context.ts';
import { toFlowState, type FlowState, type RateLimit } from './flowSettings.ts';
import { isTaskId } from './ids.ts';
import type { Row } from './rows.ts';
import type { TaskState } from './types.ts';

/** One thing that holds a task back. */
export interface TaskBlocker {
  /**
   * - `run_at`: its run time (or retry backoff) is in the future;
   * - `parents`: it waits on tasks it depends on (state `blocked`);
   * - `queue_paused`: its queue is paused;
   * - `concurrency_key`: its concurrency key holds all its slots;
   * - `queue_concurrency`: its queue holds all its slots;
   * - `rate_limit` / `key_rate_limit`: the queue's / its rate key's bucket is empty.
   */
  kind: 'run_at' | 'parents' | 'queue_paused' | 'concurrency_key' | 'queue_concurrency' | 'rate_limit' | 'key_rate_limit';
  message: string;
  /** When it lets go at the latest (run time, refill, the soonest lease to expire); null if unknown. */
  until: Date | null;
  /** The limit that binds, and what holds it (slots: running attempts; rate: none). */
  limit?: number;
  running?: number;
  /** The concurrency or rate key concerned. */
  key?: string;
}

export interface TaskExplanation {
  taskId: string;
  queue: string;
  state: TaskState;
  /** Nothing holds it back: queued, it waits only for its turn and a free worker (or it is running or finished). */
  blockers: TaskBlocker[];
  /** Queued: ready tasks of its queue ahead of it in claim order (before fairness across keys); else null. */
  ahead: number | null;
  /** What `state` means for this question, in a sentence. */
  summary: string;
}

const SUMMARY: Record<TaskState, string> = {
  blocked: 'waits on the tasks it depends on',
  scheduled: 'waits for its run time',
  queued: 'is ready to be claimed',
  running: 'is running: nothing holds it',
  retrying: 'waits for the backoff before its next attempt',
  succeeded: 'has finished (succeeded)',
  dead: 'has finished (dead: in the dead-letter queue)',
  cancelled: 'has finished (cancelled)',
};

/** See Engine.explainTask. */
export async function explainTask(ctx: EngineContext, id: string): Promise<TaskExplanation> {
  if (!isTaskId(id)) throw new NotFoundError('task', id);
  const { rows } = await ctx.db.query(F.taskExplain, [id, ctx.now()]);
  const r = rows[0];
  if (!r) throw new NotFoundError('task', id);
  const blockers = blockersOf(r, toFlowState(r.limited === null ? undefined : r));
  return {
    taskId: r.id, queue: r.queue, state: r.state, blockers, ahead: r.ahead ?? null,
    summary: `task ${r.id} ${SUMMARY[r.state as TaskState]}${blockers.length > 0 ? `; held by: ${blockers.map((b) => b.kind).join(', ')}` : ''}`,
  };
}

/** Tokens a GCRA bucket holds at `now` (see sql/flow.ts tokens) and when it holds one again. */
export function bucket(rate: RateLimit, tat: Date | null, now: Date): { tokens: number; refillAt: Date } {
  const emitMs = rate.intervalMs / rate.limit;
  const from = Math.max(tat?.getTime() ?? now.getTime(), now.getTime());
  const tokens = Math.floor((now.getTime() - from) / emitMs + rate.burst + 1e-9);
  return { tokens, refillAt: new Date(from - (rate.burst - 1) * emitMs) };
}

/** What holds the task of an explain row, in the order a claim would meet it. */
export function blockersOf(r: Row, f: FlowState): TaskBlocker[] {
  const now: Date = r.now;
  const out: TaskBlocker[] = [];
  const state = r.state as TaskState;
  // Extension point for workflows: a blocked task's parents (which ones, their states) go here.
  if (state === 'blocked') out.push({ kind: 'parents', message: 'it waits until the tasks it depends on have succeeded', until: null });
  if ((state === 'scheduled' || state === 'retrying') && r.run_at > now) {
    out.push({ kind: 'run_at', message: `its run time is ${r.run_at.toISOString()}`, until: r.run_at });
  }
  if (state !== 'queued' && state !== 'scheduled' && state !== 'retrying' && state !== 'blocked') return out;
  if (r.paused) out.push({ kind: 'queue_paused', message: `queue ${r.queue} is paused`, until: null });
  const key: string | null = r.concurrency_key;
  if (key !== null && f.maxRunningPerKey !== null && r.key_running >= f.maxRunningPerKey) {
    out.push({
      kind: 'concurrency_key', key, limit: f.maxRunningPerKey, running: r.key_running, until: r.key_frees_at ?? null,
      message: `concurrency key ${key} runs ${r.key_running} of its limit of ${f.maxRunningPerKey}`,
    });
  }
  if (f.maxRunning !== null && r.running >= f.maxRunning) {
    out.push({
      kind: 'queue_concurrency', limit: f.maxRunning, running: r.running, until: r.running_frees_at ?? null,
      message: `queue ${r.queue} runs ${r.running} of its limit of ${f.maxRunning}`,
    });
  }
  if (f.rateLimit !== null) {
    const b = bucket(f.rateLimit, r.queue_tat ?? null, now);
    if (b.tokens < 1) {
      out.push({ kind: 'rate_limit', limit: f.rateLimit.limit, until: b.refillAt,
        message: `queue ${r.queue} started its ${f.rateLimit.limit} per ${f.rateLimit.intervalMs} ms; it may start another at ${b.refillAt.toISOString()}` });
    }
  }
  const rateKey: string | null = r.rate_key;
  if (rateKey !== null && f.rateLimitPerKey !== null) {
    const b = bucket(f.rateLimitPerKey, r.key_tat ?? null, now);
    if (b.tokens < 1) {
      out.push({ kind: 'key_rate_limit', key: rateKey, limit: f.rateLimitPerKey.limit, until: b.refillAt,
        message: `rate key ${rateKey} started its ${f.rateLimitPerKey.limit} per ${f.rateLimitPerKey.intervalMs} ms; it may start another at ${b.refillAt.toISOString()}` });
    }
  }
  return out;
}
