/**
 * The built-in alerts (docs/operations.md, "Alerts"): rules, silences, history, the firing
 * list. What a schema cannot check (a kind's window and scopes, a channel's URL, secret and
 * recipients) is checked here before anything is stored, as a 400 naming the field.
 */
import {
  channelViews, checkAlertRule, mergeAlertPatch, type AlertHistoryEntry, type AlertRule, type AlertRuleInput, type AlertRulePatch, type Alerts,
} from '@taskflow/core';
import type * as C from '@taskflow/contracts';
import type { Handlers } from '../http/route.ts';
import { badRequest } from '../http/problems.ts';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';
import { assertStorableText } from '../http/storable.ts';
import { parseTime } from './tasks.ts';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function ruleJson(r: AlertRule): C.AlertRule {
  return {
    id: r.id, name: r.name, kind: r.kind, threshold: r.threshold, windowMs: r.windowMs, minAttempts: r.minAttempts, forMs: r.forMs, severity: r.severity,
    scope: r.scope, channels: channelViews(r.channels), enabled: r.enabled, builtin: r.builtin, silencedUntil: iso(r.silencedUntil),
    silenceReason: r.silenceReason, state: r.state, stateSince: iso(r.stateSince), lastValue: r.lastValue,
    createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString(),
  };
}

function historyJson(h: AlertHistoryEntry): C.AlertHistoryEntry {
  return { ...h, at: h.at.toISOString() };
}

export function firingJson(r: AlertRule): C.FiringAlert {
  return {
    ruleId: r.id, name: r.name, kind: r.kind, severity: r.severity, scope: r.scope, since: (r.stateSince ?? r.updatedAt).toISOString(),
    value: r.lastValue, threshold: r.threshold, silencedUntil: iso(r.silencedUntil),
  };
}

/** The rule as it would be stored, checked: a 400 naming the first wrong field. */
function checked(rule: AlertRuleInput): AlertRuleInput {
  assertStorableText(rule.name, '/body/name');
  const wrong = checkAlertRule(rule);
  if (wrong) throw badRequest(`/body/${wrong.field}`, wrong.message);
  return rule;
}

export function alertHandlers(alerts: Alerts, now: () => Date): Pick<
  Handlers,
  | 'createAlertRule' | 'listAlertRules' | 'getAlertRule' | 'updateAlertRule' | 'deleteAlertRule' | 'silenceAlertRule' | 'unsilenceAlertRule'
  | 'listAlertHistory' | 'listFiringAlerts'
> {
  return {
    async createAlertRule(req, reply) {
      const r = await alerts.createRule(checked(req.body as AlertRuleInput));
      reply.code(201).header('location', `/api/v1/alerts/rules/${r.id}`);
      return ruleJson(r);
    },
    async listAlertRules(req) {
      const cursor = decodeCursor(req.query.cursor, ['id'] as const);
      const limit = req.query.limit ?? 50;
      const items = await alerts.listRules({ afterId: cursor?.id, limit });
      return { items: items.map(ruleJson), nextCursor: items.length === limit ? encodeCursor({ id: items.at(-1)!.id }) : null };
    },
    async getAlertRule(req) {
      return ruleJson(await alerts.getRule(req.params.id));
    },
    async updateAlertRule(req) {
      const patch = req.body as AlertRulePatch;
      checked(mergeAlertPatch(await alerts.getRule(req.params.id), patch));
      return ruleJson(await alerts.updateRule(req.params.id, patch));
    },
    async deleteAlertRule(req) {
      return ruleJson(await alerts.deleteRule(req.params.id));
    },
    async silenceAlertRule(req) {
      const until = parseTime(req.body.until, '/body/until');
      if (until.getTime() <= now().getTime()) throw badRequest('/body/until', 'must be later than now');
      if (req.body.reason !== undefined) assertStorableText(req.body.reason, '/body/reason');
      return ruleJson(await alerts.silenceRule(req.params.id, until, req.body.reason ?? null));
    },
    async unsilenceAlertRule(req) {
      return ruleJson(await alerts.silenceRule(req.params.id, null, null));
    },
    async listAlertHistory(req) {
      const cursor = decodeCursor(req.query.cursor, ['id'] as const);
      const limit = req.query.limit ?? 50;
      const items = await alerts.listHistory({ ruleId: req.query.rule, beforeId: cursor?.id, limit });
      return { items: items.map(historyJson), nextCursor: items.length === limit ? encodeCursor({ id: items.at(-1)!.id }) : null };
    },
    async listFiringAlerts() {
      return { items: (await alerts.listFiring()).map(firingJson) };
    },
  };
}
