/** What a notification says: the webhook's JSON body, and the email's content. */
import type { AlertHistoryEntry, AlertScope } from '@taskflow/core';

export interface AlertNotice {
  /** The rule's name. */
  rule: string;
  ruleId: string;
  state: 'firing' | 'resolved';
  value: number | null;
  threshold: number;
  severity: string;
  scope: AlertScope;
  /** RFC 3339: when the change was made. */
  at: string;
  historyId: string;
}

export function noticeOf(h: AlertHistoryEntry): AlertNotice {
  return {
    rule: h.ruleName, ruleId: h.ruleId, state: h.state, value: h.value, threshold: h.threshold, severity: h.severity, scope: h.scope,
    at: h.at.toISOString(), historyId: h.id,
  };
}
