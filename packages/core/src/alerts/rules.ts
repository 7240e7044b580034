/**
 * Alert rules as an operator changes them (create, read, update, delete, silence) and the
 * history and firing reads. The evaluation is evaluate.ts.
 */
import type { Database, Executor } from '../db/types.ts';
import { AlreadyExistsError, InvalidInputError, NotFoundError, mapStorageError } from '../errors.ts';
import * as A from '../sql/alerts.ts';
import type { Row } from '../engine/rows.ts';
import {
  ALERT_KINDS, type AlertChannel, type AlertChannelView, type AlertHistoryEntry, type AlertKind, type AlertRule, type AlertRuleInput,
  type AlertRulePatch, type AlertScope, type AlertSeverity,
} from './types.ts';

const ID = /^[1-9][0-9]{0,18}$/;
const SEVERITIES = new Set<AlertSeverity>(['info', 'warning', 'critical']);

/**
 * The first field of a rule that is wrong, with what was expected, or null. The HTTP edge
 * calls it to name the field (`/body/<field>`); the store calls it again before writing.
 */
export function checkAlertRule(r: AlertRuleInput): { field: string; message: string } | null {
  if (typeof r.name !== 'string' || r.name.length === 0 || r.name.length > 200) return { field: 'name', message: 'is required: 1 to 200 characters' };
  const spec = Object.hasOwn(ALERT_KINDS, r.kind) ? ALERT_KINDS[r.kind as AlertKind] : undefined;
  if (!spec) return { field: 'kind', message: `must be one of ${Object.keys(ALERT_KINDS).join(', ')}` };
  if (typeof r.threshold !== 'number' || !Number.isFinite(r.threshold)) return { field: 'threshold', message: 'is required: a finite number' };
  if (r.kind === 'failure_rate' && (r.threshold < 0 || r.threshold > 1)) return { field: 'threshold', message: 'is a share of attempts: between 0 and 1' };
  if (spec.windowed && (r.windowMs === undefined || r.windowMs === null)) return { field: 'windowMs', message: `is required for ${r.kind}` };
  if (!spec.windowed && r.windowMs !== undefined && r.windowMs !== null) return { field: 'windowMs', message: `is not used by ${r.kind}: leave it out` };
  if (r.windowMs != null && (!Number.isInteger(r.windowMs) || r.windowMs < 1000)) return { field: 'windowMs', message: 'must be an integer of at least 1000 (ms)' };
  if (r.minAttempts !== undefined && r.kind !== 'failure_rate' && r.minAttempts !== 1) return { field: 'minAttempts', message: 'is for failure_rate only' };
  if (r.minAttempts !== undefined && (!Number.isInteger(r.minAttempts) || r.minAttempts < 1)) return { field: 'minAttempts', message: 'must be an integer of at least 1' };
  if (r.forMs !== undefined && (!Number.isInteger(r.forMs) || r.forMs < 0)) return { field: 'forMs', message: 'must be an integer of at least 0 (ms)' };
  if (r.severity !== undefined && !SEVERITIES.has(r.severity)) return { field: 'severity', message: 'must be info, warning or critical' };
  for (const key of Object.keys(r.scope ?? {}) as (keyof AlertScope)[]) {
    if ((r.scope as Record<string, unknown>)[key] === undefined) continue;
    if (!spec.scopes.includes(key)) return { field: `scope/${key}`, message: `is not a scope of ${r.kind} (it takes ${spec.scopes.join(', ')})` };
  }
  if (r.scope?.schedule !== undefined && !ID.test(r.scope.schedule)) return { field: 'scope/schedule', message: 'must be a schedule id' };
  for (const [i, c] of (r.channels ?? []).entries()) {
    const wrong = checkChannel(c);
    if (wrong) return { field: `channels/${i}/${wrong.field}`, message: wrong.message };
  }
  return null;
}

function checkChannel(c: AlertChannel): { field: string; message: string } | null {
  const given = c as Partial<Record<'url' | 'secret' | 'to', unknown>>;
  if (c.type === 'webhook') {
    if (given.to !== undefined) return { field: 'to', message: 'is for email channels only' };
    let url: URL | undefined;
    try {
      url = new URL(String(c.url));
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) return { field: 'url', message: 'must be an http or https URL' };
    if (typeof c.secret !== 'string' || c.secret.length < 16) return { field: 'secret', message: 'is required: at least 16 characters' };
    return null;
  }
  if (c.type === 'email') {
    if (given.url !== undefined || given.secret !== undefined) return { field: given.url !== undefined ? 'url' : 'secret', message: 'is for webhook channels only' };
    if (!Array.isArray(c.to) || c.to.length === 0) return { field: 'to', message: 'must list at least one address' };
    const bad = c.to.findIndex((a) => typeof a !== 'string' || !/^[^\s@<>,;"]+@[^\s@<>,;"]+\.[^\s@<>,;"]+$/.test(a));
    return bad >= 0 ? { field: `to/${bad}`, message: 'is not an email address' } : null;
  }
  return { field: 'type', message: 'must be webhook or email' };
}

const date = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string));
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function toRule(r: Row): AlertRule {
  const scope: AlertScope = {};
  if (r.scope_queue !== null) scope.queue = r.scope_queue;
  if (r.scope_type !== null) scope.type = r.scope_type;
  if (r.scope_schedule !== null) scope.schedule = String(r.scope_schedule);
  return {
    id: String(r.id), name: r.name, kind: r.kind, threshold: Number(r.threshold), windowMs: num(r.window_ms), minAttempts: r.min_attempts, forMs: Number(r.for_ms),
    severity: r.severity, scope, channels: r.channels, enabled: r.enabled, builtin: r.builtin, silencedUntil: date(r.silenced_until),
    silenceReason: r.silence_reason, state: r.state, stateSince: date(r.state_since), lastValue: num(r.last_value),
    version: Number(r.version), createdAt: date(r.created_at)!, updatedAt: date(r.updated_at)!,
  };
}

export function toHistory(r: Row): AlertHistoryEntry {
  return {
    id: String(r.id), ruleId: String(r.rule_id), ruleName: r.rule_name, kind: r.kind, state: r.state, value: num(r.value),
    threshold: Number(r.threshold), severity: r.severity, scope: r.scope, at: date(r.at)!, silenced: r.silenced, notifications: r.notifications,
  };
}

/** The channels as reads show them: no secret, whether one is set. */
export function channelViews(channels: readonly AlertChannel[]): AlertChannelView[] {
  return channels.map((c) => (c.type === 'webhook' ? { type: 'webhook', url: c.url, secretSet: c.secret.length > 0 } : { type: 'email', to: [...c.to] }));
}

type Settings = Required<Omit<AlertRuleInput, 'windowMs'>> & { windowMs: number | null };

function validated(input: AlertRuleInput): Settings {
  const wrong = checkAlertRule(input);
  if (wrong) throw new InvalidInputError(wrong.field, `${wrong.field} ${wrong.message}`);
  return {
    name: input.name, kind: input.kind, threshold: input.threshold, windowMs: input.windowMs ?? null, minAttempts: input.minAttempts ?? 1,
    forMs: input.forMs ?? 0,
    severity: input.severity ?? 'warning', scope: input.scope ?? {}, channels: input.channels ?? [], enabled: input.enabled ?? true,
  };
}

function params(s: Settings): unknown[] {
  return [
    s.name, s.kind, s.threshold, s.windowMs, s.minAttempts, s.forMs, s.severity, s.scope.queue ?? null, s.scope.type ?? null, s.scope.schedule ?? null,
    JSON.stringify(s.channels), s.enabled,
  ];
}

const now = (clock: () => Date | null) => clock();

export async function createRule(db: Executor, clock: () => Date | null, input: AlertRuleInput): Promise<AlertRule> {
  const s = validated(input);
  let rows: Row[];
  try {
    rows = (await db.query(A.alertRuleInsert, [now(clock), ...params(s)])).rows;
  } catch (err) {
    throw mapStorageError(err);
  }
  if (rows.length === 0) throw new AlreadyExistsError('alert rule', 'name', s.name);
  return toRule(rows[0]!);
}

export async function getRule(db: Executor, id: string): Promise<AlertRule> {
  if (!ID.test(id)) throw new NotFoundError('alert rule', id);
  const { rows } = await db.query(A.alertRuleGet, [id]);
  if (rows.length === 0) throw new NotFoundError('alert rule', id);
  return toRule(rows[0]!);
}

export async function listRules(db: Executor, page: { afterId?: string; limit: number }): Promise<AlertRule[]> {
  const { rows } = await db.query(A.alertRuleList, [page.afterId ?? '0', page.limit]);
  return rows.map(toRule);
}

/** The patch over the current rule; webhook secrets left out are kept (see AlertRulePatch). */
export function mergePatch(current: AlertRule, patch: AlertRulePatch): AlertRuleInput {
  const channels = patch.channels?.map((c, i): AlertChannel => {
    if (c.type !== 'webhook' || c.secret !== undefined) return c as AlertChannel;
    const before = current.channels[i];
    if (before?.type === 'webhook' && before.url === c.url) return { ...c, secret: before.secret };
    return { ...c, secret: '' };
  });
  const merged: AlertRuleInput = { ...current, ...stripUndefined(patch), channels: channels ?? current.channels };
  // A new kind does not inherit settings it cannot take: the window, the minimum of attempts.
  if (patch.kind !== undefined && patch.kind !== current.kind) {
    if (patch.windowMs === undefined && !ALERT_KINDS[patch.kind]?.windowed) merged.windowMs = null;
    if (patch.minAttempts === undefined && patch.kind !== 'failure_rate') merged.minAttempts = 1;
  }
  return merged;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export async function updateRule(db: Database, clock: () => Date | null, id: string, patch: AlertRulePatch): Promise<AlertRule> {
  return db.transaction(async (tx) => {
    const current = await getRule(tx, id);
    const s = validated(mergePatch(current, patch));
    if (s.name !== current.name && (await tx.query(A.alertRuleByName, [s.name])).rows.length > 0) {
      throw new AlreadyExistsError('alert rule', 'name', s.name);
    }
    try {
      const { rows } = await tx.query(A.alertRuleUpdate, [id, ...params(s), now(clock)]);
      return toRule(rows[0]!);
    } catch (err) {
      throw mapStorageError(err);
    }
  });
}

export async function deleteRule(db: Executor, id: string): Promise<AlertRule> {
  if (!ID.test(id)) throw new NotFoundError('alert rule', id);
  const { rows } = await db.query(A.alertRuleDelete, [id]);
  if (rows.length === 0) throw new NotFoundError('alert rule', id);
  return toRule(rows[0]!);
}

/** Silences a rule until `until` (null lifts it). */
export async function silenceRule(db: Executor, clock: () => Date | null, id: string, until: Date | null, reason: string | null): Promise<AlertRule> {
  if (!ID.test(id)) throw new NotFoundError('alert rule', id);
  const { rows } = await db.query(A.alertRuleSilence, [id, until, reason, now(clock)]);
  if (rows.length === 0) throw new NotFoundError('alert rule', id);
  return toRule(rows[0]!);
}

export async function listHistory(db: Executor, filter: { ruleId?: string; beforeId?: string; limit: number }): Promise<AlertHistoryEntry[]> {
  if (filter.ruleId !== undefined && !ID.test(filter.ruleId)) return [];
  const { rows } = await db.query(A.alertHistoryList, [filter.ruleId ?? null, filter.beforeId ?? null, filter.limit]);
  return rows.map(toHistory);
}

export async function getHistory(db: Executor, id: string): Promise<AlertHistoryEntry> {
  if (!ID.test(id)) throw new NotFoundError('alert history entry', id);
  const { rows } = await db.query(A.alertHistoryGet, [id]);
  if (rows.length === 0) throw new NotFoundError('alert history entry', id);
  return toHistory(rows[0]!);
}

export async function listFiring(db: Executor): Promise<AlertRule[]> {
  return (await db.query(A.alertFiring)).rows.map(toRule);
}
