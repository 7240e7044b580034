/**
 * A queue's flow settings (docs/flow-control.md): their shape, their validation, their change,
 * and the cache the hot path reads them from.
 */
import type { Executor } from '../db/types.ts';
import { InvalidInputError, mapStorageError } from '../errors.ts';
import * as F from '../sql/flow.ts';
import type { EngineContext } from './context.ts';
import type { Row } from './rows.ts';
import type { BackoffPolicy } from './types.ts';

/** A rate limit: `limit` starts per `intervalMs`, at most `burst` at once (GCRA). */
export interface RateLimit {
  limit: number;
  intervalMs: number;
  burst: number;
}

/** A queue's flow settings; null: not set. */
export interface QueueSettings {
  /** Running attempts at most over the whole queue (a slot is held by an unexpired lease). */
  maxRunning: number | null;
  /** Running attempts at most per concurrency key. */
  maxRunningPerKey: number | null;
  /** Starts over the whole queue. */
  rateLimit: RateLimit | null;
  /** Starts per rate key. */
  rateLimitPerKey: RateLimit | null;
  /** A submit is refused (429) when it would leave more than this many tasks waiting. */
  maxDepth: number | null;
  /** A submit is refused (429) while the oldest ready task has waited longer than this, ms. */
  maxAgeMs: number | null;
  /** maxAttempts of a task submitted without one (else the engine's default). */
  defaultMaxAttempts: number | null;
  /** backoff of a task submitted without one (else the engine's default). */
  defaultBackoff: BackoffPolicy | null;
  /** Claims take the queue's keys round by round (always so with a concurrency or rate limit). */
  fair: boolean;
}

/** A change of settings: a field absent keeps its value, null clears it (`fair`: false). */
export type QueueSettingsPatch = { [K in keyof QueueSettings]?: QueueSettings[K] | (K extends 'fair' ? null : never) };

/** A queue's settings with what the claim and the enqueue branch on. */
export interface FlowState extends QueueSettings {
  /** Has a concurrency or rate limit: claimed by the flow claim. */
  limited: boolean;
  /** Has maxDepth or maxAgeMs: submits are admitted under the queue's lock. */
  admission: boolean;
}

export const NO_SETTINGS: FlowState = {
  maxRunning: null, maxRunningPerKey: null, rateLimit: null, rateLimitPerKey: null, maxDepth: null, maxAgeMs: null,
  defaultMaxAttempts: null, defaultBackoff: null, fair: false, limited: false, admission: false,
};

function rate(limit: number | null, intervalMs: number | null, burst: number | null): RateLimit | null {
  return limit === null || limit === undefined ? null : { limit, intervalMs: intervalMs!, burst: burst! };
}

/** Settings from a row with SETTINGS_COLUMNS (none when there is no row). */
export function toFlowState(r: Row | undefined): FlowState {
  if (!r) return NO_SETTINGS;
  const s: QueueSettings = {
    maxRunning: r.max_running ?? null,
    maxRunningPerKey: r.key_max_running ?? null,
    rateLimit: rate(r.rate_limit ?? null, r.rate_interval_ms, r.rate_burst),
    rateLimitPerKey: rate(r.key_rate_limit ?? null, r.key_rate_interval_ms, r.key_rate_burst),
    maxDepth: r.max_depth ?? null,
    maxAgeMs: r.max_age_ms === null || r.max_age_ms === undefined ? null : Number(r.max_age_ms),
    defaultMaxAttempts: r.default_max_attempts ?? null,
    defaultBackoff: r.default_backoff ?? null,
    fair: r.fair === true,
  };
  return { ...s, limited: r.limited === true, admission: s.maxDepth !== null || s.maxAgeMs !== null };
}

/** Just the settings, for a queue's answer. */
export function settingsOf(f: FlowState): QueueSettings {
  const { limited: _l, admission: _a, ...s } = f;
  return s;
}

const MAX_INT = 2_147_483_647;

function positive(field: string, v: unknown, max = MAX_INT): void {
  if (v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw new InvalidInputError(field, `${field} must be an integer from 1 to ${max}, or null to clear it`);
  }
}

/** The patch as the columns queueSettingsPatch takes; InvalidInputError naming a bad field. */
export function patchColumns(p: QueueSettingsPatch): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const int = (field: keyof QueueSettings, column: string, max?: number) => {
    if (p[field] === undefined) return;
    positive(field, p[field], max);
    out[column] = p[field];
  };
  int('maxRunning', 'max_running');
  int('maxRunningPerKey', 'key_max_running');
  int('maxDepth', 'max_depth');
  int('maxAgeMs', 'max_age_ms', Number.MAX_SAFE_INTEGER);
  int('defaultMaxAttempts', 'default_max_attempts', 1000);
  for (const [field, prefix] of [['rateLimit', 'rate'], ['rateLimitPerKey', 'key_rate']] as const) {
    const r = p[field];
    if (r === undefined) continue;
    if (r !== null) {
      positive(`${field}.limit`, r.limit);
      positive(`${field}.intervalMs`, r.intervalMs, 86_400_000);
      positive(`${field}.burst`, r.burst);
    }
    out[`${prefix}_limit`] = r?.limit ?? null;
    out[`${prefix}_interval_ms`] = r?.intervalMs ?? null;
    out[`${prefix}_burst`] = r?.burst ?? null;
  }
  if (p.defaultBackoff !== undefined) out.default_backoff = p.defaultBackoff;
  if (p.fair !== undefined) out.fair = p.fair === true;
  return out;
}

/** How long a node's copy of a queue's settings is fresh, ms: a change made on another node binds here within about that. */
export const SETTINGS_TTL_MS = 1000;

/**
 * The settings of the queues this engine claims from and submits to, read again in the
 * background once older than SETTINGS_TTL_MS (the stale copy serves meanwhile: no call waits
 * for a refresh, only for a queue's first read). A stale copy never over-admits: the plain
 * claim skips limited queues by itself, and a limited claim or an admission check reads the
 * settings again under the queue's lock; a stale copy can only delay the switch to the right
 * statement, and a new default retry policy or admission limit, by about the TTL.
 */
export class FlowSettingsCache {
  private readonly entries = new Map<string, { at: number; state: FlowState; refreshing: boolean }>();
  private readonly db: Executor;

  constructor(db: Executor) {
    this.db = db;
  }

  /** The settings known for the queue (refreshed in the background when stale), or undefined. */
  peek(queue: string): FlowState | undefined {
    const e = this.entries.get(queue);
    if (e && !e.refreshing && performance.now() - e.at >= SETTINGS_TTL_MS) {
      e.refreshing = true;
      // A failed refresh forgets the entry: the next call reads it and meets the error itself.
      this.read(this.db, queue).catch(() => this.entries.delete(queue));
    }
    return e?.state;
  }

  /** Whether the queue is known to be limited (unknown: no). */
  isLimited(queue: string): boolean {
    return this.peek(queue)?.limited === true;
  }

  /** The settings, read with `executor` when none are known yet. */
  async get(executor: Executor, queue: string): Promise<FlowState> {
    return this.peek(queue) ?? this.read(executor, queue);
  }

  set(queue: string, state: FlowState): FlowState {
    if (this.entries.size >= 10_000 && !this.entries.has(queue)) this.entries.clear();
    this.entries.set(queue, { at: performance.now(), state, refreshing: false });
    return state;
  }

  private async read(executor: Executor, queue: string): Promise<FlowState> {
    const { rows } = await executor.query(F.queueSettingsGet, [queue]);
    return this.set(queue, toFlowState(rows[0]));
  }
}

/** See Engine.updateQueueSettings. */
export async function updateQueueSettings(ctx: EngineContext, queue: string, patch: QueueSettingsPatch): Promise<FlowState> {
  const columns = patchColumns(patch);
  try {
    await ctx.db.transaction(async (tx) => {
      await tx.query(F.queueEnsure, [queue]);
      await tx.query(F.queueSettingsPatch, [queue, JSON.stringify(columns)]);
    });
  } catch (err) {
    throw mapStorageError(err, 'settings');
  }
  const { rows } = await ctx.db.query(F.queueSettingsGet, [queue]);
  const state = ctx.flow.set(queue, toFlowState(rows[0]));
  // Waiting claimers take the new limits (or their removal) at once.
  ctx.announce([{ queue, state: 'queued' }]);
  return state;
}
