/**
 * Built-in alerts (docs/operations.md, "Alerts"): rules evaluated by every node against the
 * database, their history of fired and resolved changes, silences, and notification channels
 * (signed webhooks, email) delivered through Taskflow's own queue.
 */
import { Type, type Static } from 'typebox';
import { Cursor, Limit, Page, Timestamp } from './common.ts';

export const AlertRuleId = Type.String({ pattern: '^[1-9][0-9]{0,18}$', description: 'Alert rule id: a positive integer, as a string.', examples: ['3'] });
export const AlertHistoryId = Type.String({ pattern: '^[1-9][0-9]{0,18}$', description: 'Alert history entry id.' });

export const AlertKind = Type.Enum(
  ['queue_depth', 'oldest_ready_age', 'failure_rate', 'dead_letter_growth', 'workers_online_below', 'no_completions', 'schedule_missed_fire'],
  {
    description: 'What the rule measures, and when it holds. Above the threshold: `queue_depth` (ready tasks), `oldest_ready_age` (ms the oldest ready task has waited), `failure_rate` (failed attempts over ended attempts in windowMs, 0..1), `dead_letter_growth` (tasks that entered the dead-letter queue in windowMs), `schedule_missed_fire` (fires skipped as misfires in windowMs, plus schedules overdue past their grace). Below the threshold, while ready (or running) tasks wait in the scope: `workers_online_below` (live workers serving the queue), `no_completions` (tasks that succeeded in windowMs).',
  },
);
export const AlertSeverity = Type.Enum(['info', 'warning', 'critical'], { description: 'Default warning.' });
export const AlertState = Type.Enum(['inactive', 'pending', 'firing'], {
  description: '`pending`: the condition holds, for less than forMs so far. `firing`: it has held forMs. Resolving returns the rule to `inactive`.',
});

export const AlertScope = Type.Object(
  {
    queue: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Only this queue (not for schedule_missed_fire).' })),
    type: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Only this task type (not for workers_online_below, schedule_missed_fire).' })),
    schedule: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,18}$', description: 'schedule_missed_fire only: this schedule (default every one).' })),
  },
  { additionalProperties: false, description: 'What the rule looks at; absent fields: all of them.' },
);

/**
 * One object for both channel types (not a union): a bad field of a channel is then named
 * (`/body/channels/0/url`), where a union would only say the channel matched no form. The
 * server checks what each type needs.
 */
export const AlertChannelInput = Type.Object(
  {
    type: Type.Enum(['webhook', 'email'], {
      description: '`webhook`: a signed JSON POST to `url` for each change of state (docs/operations.md, "Webhook signature"). `email`: a message to `to` through TASKFLOW_SMTP_URL.',
    }),
    url: Type.Optional(Type.String({ maxLength: 2000, description: 'webhook: an http or https URL.' })),
    secret: Type.Optional(Type.String({
      maxLength: 500,
      description: 'webhook: the HMAC-SHA256 key of the signature, at least 16 characters (write-only). Required on creation; on a change, left out keeps the secret of the channel at the same index with the same URL.',
    })),
    to: Type.Optional(Type.Array(Type.String({ maxLength: 320 }), { maxItems: 50, description: 'email: the recipients (at least one).' })),
  },
  { additionalProperties: false },
);
export type AlertChannelInput = Static<typeof AlertChannelInput>;
const EmailChannel = Type.Object({ type: Type.Literal('email'), to: Type.Array(Type.String()) });
export const AlertChannel = Type.Union([
  Type.Object({ type: Type.Literal('webhook'), url: Type.String(), secretSet: Type.Boolean({ description: 'A secret is stored (it is never returned).' }) }),
  EmailChannel,
]);

const name = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f]+$', description: 'Unique name; no control characters.' });
const threshold = Type.Number({ description: 'The value the rule compares with (the unit of its kind; failure_rate: 0..1).' });
const windowMs = Type.Integer({ minimum: 1000, maximum: 2_592_000_000, description: 'Look-back of failure_rate, dead_letter_growth, no_completions and schedule_missed_fire, ms: required for them, refused for the others.' });
const minAttempts = Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'failure_rate only: the fewest attempts that ended in the window for the rate to count (default 1).' });
const forMs = Type.Integer({ minimum: 0, maximum: 2_592_000_000, description: 'How long the condition must hold before the rule fires, ms (default 0: at once).' });
const channels = Type.Array(AlertChannelInput, { maxItems: 20, description: 'Where each change of state is sent (default none: it shows in firing and history only).' });

export const AlertRuleInput = Type.Object(
  {
    name, kind: AlertKind, threshold,
    windowMs: Type.Optional(windowMs),
    minAttempts: Type.Optional(minAttempts),
    forMs: Type.Optional(forMs),
    severity: Type.Optional(AlertSeverity),
    scope: Type.Optional(AlertScope),
    channels: Type.Optional(channels),
    enabled: Type.Optional(Type.Boolean({ description: 'Default true. A rule disabled while firing resolves at the next evaluation.' })),
  },
  { additionalProperties: false },
);
export type AlertRuleInput = Static<typeof AlertRuleInput>;

export const AlertRulePatch = Type.Object(
  {
    name: Type.Optional(name),
    kind: Type.Optional(AlertKind),
    threshold: Type.Optional(threshold),
    windowMs: Type.Optional(Type.Union([windowMs, Type.Null()])),
    minAttempts: Type.Optional(minAttempts),
    forMs: Type.Optional(forMs),
    severity: Type.Optional(AlertSeverity),
    scope: Type.Optional(AlertScope),
    channels: Type.Optional(channels),
    enabled: Type.Optional(Type.Boolean()),
  },
  {
    additionalProperties: false,
    description: 'The fields given replace the current ones (null clears windowMs; a new kind drops a windowMs or minAttempts it does not take unless given). A change of kind, threshold, windowMs, minAttempts or scope starts the evaluation afresh (inactive, nothing recorded).',
  },
);
export type AlertRulePatch = Static<typeof AlertRulePatch>;

export const AlertRule = Type.Object({
  id: AlertRuleId,
  name: Type.String(),
  kind: AlertKind,
  threshold: Type.Number(),
  windowMs: Type.Union([Type.Integer(), Type.Null()]),
  minAttempts: Type.Integer(),
  forMs: Type.Integer(),
  severity: AlertSeverity,
  scope: AlertScope,
  channels: Type.Array(AlertChannel),
  enabled: Type.Boolean(),
  builtin: Type.Boolean({ description: 'One of the default rules every installation starts with (docs/operations.md).' }),
  silencedUntil: Type.Union([Timestamp, Type.Null()], { description: 'Until then, changes of state are recorded (silenced) and nothing is sent.' }),
  silenceReason: Type.Union([Type.String(), Type.Null()]),
  state: AlertState,
  stateSince: Type.Union([Timestamp, Type.Null()], { description: 'When the rule entered its state (pending: when the condition was first seen).' }),
  lastValue: Type.Union([Type.Number(), Type.Null()], { description: 'The value at the last change of state.' }),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type AlertRule = Static<typeof AlertRule>;

export const AlertRuleParams = Type.Object({ id: AlertRuleId });
export const AlertRuleListQuery = Type.Object({ limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) }, { additionalProperties: false });
export type AlertRuleListQuery = Static<typeof AlertRuleListQuery>;
export const AlertRulePage = Page(AlertRule);
export type AlertRulePage = Static<typeof AlertRulePage>;

export const AlertSilenceInput = Type.Object(
  {
    until: Timestamp,
    reason: Type.Optional(Type.String({ maxLength: 1000, description: 'Why, for the record.' })),
  },
  { additionalProperties: false, description: 'Silence the rule until `until` (later than now).' },
);
export type AlertSilenceInput = Static<typeof AlertSilenceInput>;

export const AlertHistoryEntry = Type.Object({
  id: AlertHistoryId,
  ruleId: AlertRuleId,
  ruleName: Type.String(),
  kind: AlertKind,
  state: Type.Enum(['firing', 'resolved']),
  value: Type.Union([Type.Number(), Type.Null()]),
  threshold: Type.Number(),
  severity: AlertSeverity,
  scope: AlertScope,
  at: Timestamp,
  silenced: Type.Boolean({ description: 'The rule was silenced: nothing was sent.' }),
  notifications: Type.Integer({ description: 'Notifications enqueued (one per channel; 0 when silenced).' }),
});
export type AlertHistoryEntry = Static<typeof AlertHistoryEntry>;

export const AlertHistoryQuery = Type.Object(
  { rule: Type.Optional(AlertRuleId), limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) },
  { additionalProperties: false },
);
export type AlertHistoryQuery = Static<typeof AlertHistoryQuery>;
export const AlertHistoryPage = Page(AlertHistoryEntry);
export type AlertHistoryPage = Static<typeof AlertHistoryPage>;

export const FiringAlert = Type.Object({
  ruleId: AlertRuleId,
  name: Type.String(),
  kind: AlertKind,
  severity: AlertSeverity,
  scope: AlertScope,
  since: Timestamp,
  value: Type.Union([Type.Number(), Type.Null()], { description: 'The value when it fired.' }),
  threshold: Type.Number(),
  silencedUntil: Type.Union([Timestamp, Type.Null()]),
});
export type FiringAlert = Static<typeof FiringAlert>;
export const FiringAlerts = Type.Object({ items: Type.Array(FiringAlert) });
export type FiringAlerts = Static<typeof FiringAlerts>;
