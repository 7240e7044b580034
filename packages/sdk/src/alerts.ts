/**
 * The built-in alerts' routes (admin scope; history and the firing list also read scope), as
 * `client.alerts`: rules, silences, history and the firing list (docs/operations.md, "Alerts").
 */
import type * as C from '@taskflow/contracts';
import type { TaskflowClient } from './client.ts';

export class AlertsClient {
  private readonly client: TaskflowClient;

  constructor(client: TaskflowClient) {
    this.client = client;
  }

  /** A 400 names the field of a bad kind, window, scope or channel; 409 for a name taken. */
  createRule(input: C.AlertRuleInput): Promise<C.AlertRule> {
    return this.client.call('createAlertRule', { body: input });
  }
  listRules(query: C.AlertRuleListQuery = {}): Promise<C.AlertRulePage> {
    return this.client.call('listAlertRules', { query });
  }
  getRule(id: string): Promise<C.AlertRule> {
    return this.client.call('getAlertRule', { params: { id } });
  }
  /** A webhook channel given without its secret keeps the stored one (same index, same URL). */
  updateRule(id: string, patch: C.AlertRulePatch): Promise<C.AlertRule> {
    return this.client.call('updateAlertRule', { params: { id }, body: patch });
  }
  deleteRule(id: string): Promise<C.AlertRule> {
    return this.client.call('deleteAlertRule', { params: { id } });
  }
  /** Until `until`, changes of state are recorded (silenced) and nothing is sent. */
  silenceRule(id: string, until: Date | string, reason?: string): Promise<C.AlertRule> {
    const at = typeof until === 'string' ? until : until.toISOString();
    return this.client.call('silenceAlertRule', { params: { id }, body: reason === undefined ? { until: at } : { until: at, reason } });
  }
  unsilenceRule(id: string): Promise<C.AlertRule> {
    return this.client.call('unsilenceAlertRule', { params: { id } });
  }
  /** Fired and resolved changes, newest first; `rule` filters to one rule. */
  history(query: C.AlertHistoryQuery = {}): Promise<C.AlertHistoryPage> {
    return this.client.call('listAlertHistory', { query });
  }
  /** The rules firing now. */
  firing(): Promise<C.FiringAlerts> {
    return this.client.call('listFiringAlerts', {});
  }
}
