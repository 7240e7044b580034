/**
 * Built-in alert rules (docs/operations.md, "Alerts"): what a rule is, its evaluation state
 * and its history. Rules live in `alert_rules` (migration 0011).
 */

/** What a rule measures. See `ALERT_KINDS` for the unit and the comparison of each. */
export type AlertKind =
  | 'queue_depth'
  | 'oldest_ready_age'
  | 'failure_rate'
  | 'dead_letter_growth'
  | 'workers_online_below'
  | 'no_completions'
  | 'schedule_missed_fire';

export interface AlertKindSpec {
  /** `above`: fires while value > threshold; `below`: while value < threshold and work waits. */
  compare: 'above' | 'below';
  /** Whether the rule looks back over `windowMs` (required for these, refused for the others). */
  windowed: boolean;
  /** The scope fields the kind accepts. */
  scopes: readonly ('queue' | 'type' | 'schedule')[];
  unit: string;
}

export const ALERT_KINDS: Readonly<Record<AlertKind, AlertKindSpec>> = {
  queue_depth: { compare: 'above', windowed: false, scopes: ['queue', 'type'], unit: 'ready (queued) tasks' },
  oldest_ready_age: { compare: 'above', windowed: false, scopes: ['queue', 'type'], unit: 'ms the oldest ready task has waited' },
  failure_rate: { compare: 'above', windowed: true, scopes: ['queue', 'type'], unit: 'failed attempts / ended attempts over the window (0..1)' },
  dead_letter_growth: { compare: 'above', windowed: true, scopes: ['queue', 'type'], unit: 'tasks that entered the dead-letter queue over the window' },
  workers_online_below: { compare: 'below', windowed: false, scopes: ['queue'], unit: 'live workers serving the queue' },
  no_completions: { compare: 'below', windowed: true, scopes: ['queue', 'type'], unit: 'tasks that succeeded over the window' },
  schedule_missed_fire: { compare: 'above', windowed: true, scopes: ['schedule'], unit: 'missed fires over the window, and overdue schedules' },
};

export type AlertSeverity = 'info' | 'warning' | 'critical';
export type AlertState = 'inactive' | 'pending' | 'firing';

/** A webhook channel: a signed JSON POST (docs/operations.md, "Webhook signature"). */
export interface WebhookChannel {
  type: 'webhook';
  url: string;
  /** The HMAC-SHA256 key. Write-only: never returned by reads. */
  secret: string;
}

export interface EmailChannel {
  type: 'email';
  to: string[];
}

export type AlertChannel = WebhookChannel | EmailChannel;

/** A channel as reads show it: the secret replaced by whether one is set. */
export type AlertChannelView = { type: 'webhook'; url: string; secretSet: boolean } | EmailChannel;

export interface AlertScope {
  queue?: string;
  type?: string;
  /** schedule_missed_fire: one schedule's id; absent: every schedule. */
  schedule?: string;
}

export interface AlertRuleInput {
  name: string;
  kind: AlertKind;
  threshold: number;
  /** Required for the windowed kinds, refused for the others, ms. */
  windowMs?: number | null;
  /** failure_rate only: the fewest ended attempts in the window for the rate to count. @defaultValue 1 */
  minAttempts?: number;
  /** How long the condition must hold before pending becomes firing, ms. @defaultValue 0 */
  forMs?: number;
  /** @defaultValue 'warning' */
  severity?: AlertSeverity;
  /** @defaultValue {} (every queue, type or schedule) */
  scope?: AlertScope;
  /** @defaultValue [] (visible in firing and history only) */
  channels?: AlertChannel[];
  /** @defaultValue true */
  enabled?: boolean;
}

/**
 * A change: the fields given replace the current ones. A webhook channel given without its
 * secret keeps the secret of the channel at the same index with the same URL.
 */
export type AlertRulePatch = Partial<Omit<AlertRuleInput, 'channels'>> & {
  channels?: (AlertChannel | (Omit<WebhookChannel, 'secret'> & { secret?: string }))[];
};

export interface AlertRule {
  id: string;
  name: string;
  kind: AlertKind;
  threshold: number;
  windowMs: number | null;
  minAttempts: number;
  forMs: number;
  severity: AlertSeverity;
  scope: AlertScope;
  /** With secrets: for the notifier only. `viewOf` removes them. */
  channels: AlertChannel[];
  enabled: boolean;
  /** Seeded by the migration (a default rule). */
  builtin: boolean;
  silencedUntil: Date | null;
  silenceReason: string | null;
  state: AlertState;
  /** When the rule entered its state (pending: when the condition was first seen). */
  stateSince: Date | null;
  /** The value of the last change of state. */
  lastValue: number | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface AlertHistoryEntry {
  id: string;
  ruleId: string;
  ruleName: string;
  kind: AlertKind;
  state: 'firing' | 'resolved';
  value: number | null;
  threshold: number;
  severity: AlertSeverity;
  scope: AlertScope;
  at: Date;
  /** The rule was silenced: nothing was sent. */
  silenced: boolean;
  /** Notification tasks enqueued for it (one per channel). */
  notifications: number;
}

/** What one evaluation pass did. */
export interface AlertPassResult {
  /** Rules evaluated. */
  evaluated: number;
  /** Changes of state this node won (pending included). */
  transitions: number;
  /** History rows this node wrote (fired, resolved). */
  recorded: number;
  /** Notification tasks this node enqueued. */
  notifications: number;
  /** Changes another node made first: this node wrote nothing for them. */
  lost: number;
  /** Rules whose evaluation failed (logged; tried again in the next pass). */
  failed: number;
}

/** The internal queue and task type of notifications (the server's notifier consumes them). */
export const ALERTS_QUEUE = 'taskflow.alerts';
export const ALERT_NOTIFY_TYPE = 'alert.notify';

/** A notification task's payload: no secret, the notifier reads the rule. */
export interface AlertNotifyPayload {
  ruleId: string;
  historyId: string;
  /** Index into the rule's channels. */
  channel: number;
}
