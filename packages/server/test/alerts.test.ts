/**
 * The built-in alerts over HTTP, with the real parts: two nodes on one PostgreSQL schema both
 * evaluating (their duties, and 20 passes each called at once), a ManualClock driving forMs, a
 * real HTTP receiver checking each POST's HMAC signature, a receiver that fails first (and
 * the alert metrics it leaves), a silence, and the 400s of bad rules.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { Alerts, ManualClock } from '@taskflow/core';
import { freshSchema, dropSchema } from '@taskflow/core/test-support';
import { TaskflowApiError, type AlertRuleInput, type TaskflowClient } from '@taskflow/sdk';
import { startTestService, type TestService } from './support/service.ts';
import { startReceiver, type Receiver } from './support/receiver.ts';
import { DELIVERY_HEADER, SIGNATURE_HEADER, verifyWebhook } from '../src/alerts/webhook.ts';
import { parseExposition, valueOf } from './exposition.ts';

const SECRET = 'whsec-a-secret-of-32-characters!';
const T0 = new Date('2030-01-01T00:00:00.000Z');
const MINUTE = 60_000;

const started: (TestService | Receiver)[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => (('stop' in s) ? s.stop() : s.close())));
});

/** Two nodes on one schema, one clock; the seeded default rules removed so only the test's rules change state. */
async function twoNodes(clock: ManualClock, overrides = {}) {
  const schema = freshSchema('tfa');
  onTestFinished(() => dropSchema(schema));
  const opts = { alertsIntervalMs: 50, schema, ...overrides };
  const a = await startTestService('postgres', opts, { clock });
  started.push(a);
  await a.service.db.query(`DELETE FROM alert_rules WHERE builtin`);
  const b = await startTestService('postgres', { ...opts, bootstrapApiKey: a.adminKey }, { clock });
  started.push(b);
  return [a, b] as const;
}

async function receiver(statuses: number[] = []) {
  const r = await startReceiver(statuses);
  started.push(r);
  return r;
}

const backlog = (url: string, extra: Partial<AlertRuleInput> = {}): AlertRuleInput => ({
  name: 'backlog', kind: 'queue_depth', threshold: 2, forMs: MINUTE, scope: { queue: 'q' },
  channels: [{ type: 'webhook', url, secret: SECRET }], ...extra,
});

async function fill(client: TaskflowClient, n: number) {
  return Promise.all(Array.from({ length: n }, () => client.enqueue({ type: 't', queue: 'q' })));
}

describe('built-in alerts across two nodes', () => {
  it('pending, firing after forMs, resolved: one signed POST per change, one history row each', async () => {
    const clock = new ManualClock(T0);
    const [a, b] = await twoNodes(clock);
    const hook = await receiver();
    const rule = await a.admin.alerts.createRule(backlog(hook.url));
    expect(rule.channels).toEqual([{ type: 'webhook', url: hook.url, secretSet: true }]);
    expect(JSON.stringify(await b.admin.alerts.getRule(rule.id))).not.toContain(SECRET);
    const tasks = await fill(a.admin, 3);
    await vi.waitFor(async () => expect((await b.admin.alerts.getRule(rule.id)).state).toBe('pending'), { timeout: 10_000 });
    expect(hook.received).toHaveLength(0);

    clock.advance(MINUTE);
    await vi.waitFor(() => expect(hook.received).toHaveLength(1), { timeout: 10_000 });
    expect((await a.admin.alerts.firing()).items).toMatchObject([{ ruleId: rule.id, name: 'backlog', value: 3, threshold: 2 }]);
    expect((await b.admin.analyticsHealth()).alerts.firing).toMatchObject([{ ruleId: rule.id }]);

    // Both nodes evaluate the same rule 20 more times at once, beside their duties: nothing new.
    const direct = [new Alerts(a.service.engine), new Alerts(b.service.engine)];
    for (let i = 0; i < 20; i++) await Promise.all(direct.map((d) => d.evaluate()));
    expect((await a.admin.alerts.history({ rule: rule.id })).items.map((h) => h.state)).toEqual(['firing']);

    await a.admin.cancelTask(tasks[0]!.id); // 2 ready: no longer above the threshold
    await vi.waitFor(() => expect(hook.received).toHaveLength(2), { timeout: 10_000 });
    for (let i = 0; i < 20; i++) await Promise.all(direct.map((d) => d.evaluate()));

    const history = (await b.admin.alerts.history({ rule: rule.id })).items;
    expect(history.map((h) => [h.state, h.value, h.notifications])).toEqual([['resolved', 2, 1], ['firing', 3, 1]]);
    // Every notification task has succeeded: each POST above was its one delivery.
    await vi.waitFor(async () => {
      const sent = await a.service.db.query(`SELECT state FROM tasks WHERE queue = 'taskflow.alerts'`);
      expect(sent.rows.map((r) => r.state)).toEqual(['succeeded', 'succeeded']);
    }, { timeout: 10_000 });
    expect(hook.received).toHaveLength(2);
    const now = Math.floor(Date.now() / 1000);
    const bodies = hook.received.map((r) => {
      expect(verifyWebhook(SECRET, r.body, String(r.headers[SIGNATURE_HEADER]), now)).toBe(true);
      expect(verifyWebhook('another-secret-entirely', r.body, String(r.headers[SIGNATURE_HEADER]), now)).toBe(false);
      return JSON.parse(r.body) as Record<string, unknown>;
    });
    expect(new Set(hook.received.map((r) => r.headers[DELIVERY_HEADER])).size).toBe(2);
    expect(bodies).toMatchObject([
      { rule: 'backlog', ruleId: rule.id, state: 'firing', value: 3, threshold: 2, severity: 'warning', scope: { queue: 'q' }, historyId: history[1]!.id, at: new Date(T0.getTime() + MINUTE).toISOString() },
      { rule: 'backlog', state: 'resolved', value: 2, historyId: history[0]!.id },
    ]);
  });

  it('delivers on a retry when the receiver answers 500 first', async () => {
    const clock = new ManualClock(T0);
    const [a, b] = await twoNodes(clock);
    const hook = await receiver([500]);
    await a.admin.alerts.createRule(backlog(hook.url, { forMs: 0 }));
    await fill(a.admin, 3);
    await vi.waitFor(() => expect(hook.received).toHaveLength(1), { timeout: 10_000 });
    const task = await vi.waitFor(async () => {
      const { rows } = await a.service.db.query(`SELECT id, state, attempt FROM tasks WHERE queue = 'taskflow.alerts'`);
      expect(rows).toMatchObject([{ state: 'retrying', attempt: 1 }]);
      return rows[0]!;
    }, { timeout: 10_000 });
    clock.advance(MINUTE); // past the first backoff (5 s)
    await vi.waitFor(() => expect(hook.received).toHaveLength(2), { timeout: 10_000 });
    await vi.waitFor(async () => expect((await a.admin.getTask(String(task.id))).state).toBe('succeeded'), { timeout: 10_000 });
    expect(hook.received[1]!.headers[DELIVERY_HEADER]).toBe(hook.received[0]!.headers[DELIVERY_HEADER]);
    expect(hook.received[1]!.body).toBe(hook.received[0]!.body);
    // The metrics: the rule firing (on every node), one failed and one sent webhook in all.
    const expositions = await Promise.all([a, b].map(async (n) => (await fetch(`${n.url}/metrics`)).text()));
    const samples = expositions.map(parseExposition);
    for (const m of samples) expect(valueOf(m, 'taskflow_alerts_firing', { severity: 'warning' })).toBe(1);
    const sent = (outcome: string) => samples.reduce((n, m) => n + valueOf(m, 'taskflow_alert_notifications_total', { channel: 'webhook', outcome }), 0);
    expect([sent('failed'), sent('sent')]).toEqual([1, 1]);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: expositions[0], encoding: 'utf8' });
    expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
    expect(check.status).toBe(0);
  });

  it('a silenced rule records its changes, marked silenced, and sends nothing', async () => {
    const clock = new ManualClock(T0);
    const [a, b] = await twoNodes(clock);
    const hook = await receiver();
    const rule = await a.admin.alerts.createRule(backlog(hook.url, { forMs: 0 }));
    const silenced = await a.admin.alerts.silenceRule(rule.id, new Date(T0.getTime() + 60 * MINUTE), 'deploying');
    expect(silenced).toMatchObject({ silencedUntil: new Date(T0.getTime() + 60 * MINUTE).toISOString(), silenceReason: 'deploying' });
    const tasks = await fill(a.admin, 3);
    await vi.waitFor(async () => expect((await b.admin.alerts.getRule(rule.id)).state).toBe('firing'), { timeout: 10_000 });
    for (const t of tasks) await a.admin.cancelTask(t.id);
    await vi.waitFor(async () => expect((await b.admin.alerts.history({ rule: rule.id })).items).toHaveLength(2), { timeout: 10_000 });
    const history = (await a.admin.alerts.history({ rule: rule.id })).items;
    expect(history.map((h) => [h.state, h.silenced, h.notifications])).toEqual([['resolved', true, 0], ['firing', true, 0]]);
    const { rows } = await a.service.db.query(`SELECT count(*)::integer AS n FROM tasks WHERE queue = 'taskflow.alerts'`);
    expect(rows[0]!.n).toBe(0);
    expect(hook.received).toEqual([]);
    expect((await a.admin.alerts.unsilenceRule(rule.id)).silencedUntil).toBeNull();
  });
});

describe('built-in alerts on one node', () => {
  it('a notification waiting for its retry survives a restart of the node', async () => {
    const clock = new ManualClock(T0);
    const node = await startTestService('postgres', { alertsIntervalMs: 50 }, { clock });
    started.push(node);
    await node.service.db.query(`DELETE FROM alert_rules WHERE builtin`);
    const hook = await receiver([500]);
    await node.admin.alerts.createRule(backlog(hook.url, { forMs: 0 }));
    await fill(node.admin, 3);
    await vi.waitFor(() => expect(hook.received).toHaveLength(1), { timeout: 10_000 });
    await vi.waitFor(async () => {
      const { rows } = await node.service.db.query(`SELECT state FROM tasks WHERE queue = 'taskflow.alerts'`);
      expect(rows).toEqual([{ state: 'retrying' }]);
    }, { timeout: 10_000 });
    // The node goes away with the notification owed; a new one on the same database sends it.
    await node.restart(async () => {
      clock.advance(MINUTE);
    });
    await vi.waitFor(() => expect(hook.received).toHaveLength(2), { timeout: 15_000 });
    expect(JSON.parse(hook.received[1]!.body)).toMatchObject({ rule: 'backlog', state: 'firing' });
    expect((await node.admin.alerts.history()).items.map((h) => h.state)).toEqual(['firing']);
  });

});

describe('built-in alerts embedded, on PGlite', () => {
  let node: TestService;
  beforeAll(async () => {
    node = await startTestService('pglite', { alertsIntervalMs: 50 });
  });
  afterAll(() => node?.stop());

  it('evaluates and notifies with no PostgreSQL', async () => {
    const hook = await receiver();
    const rule = await node.admin.alerts.createRule(backlog(hook.url, { forMs: 0, threshold: 0 }));
    await node.admin.enqueue({ type: 't', queue: 'q' });
    await vi.waitFor(() => expect(hook.received).toHaveLength(1), { timeout: 15_000 });
    expect(verifyWebhook(SECRET, hook.received[0]!.body, String(hook.received[0]!.headers[SIGNATURE_HEADER]), Math.floor(Date.now() / 1000))).toBe(true);
    expect((await node.admin.alerts.firing()).items.map((f) => f.ruleId)).toContain(rule.id);
  });
});

describe('alert rules: bad input', () => {
  let node: TestService;
  beforeAll(async () => {
    node = await startTestService('postgres');
  });
  afterAll(() => node?.stop());

  it.each([
    ['an unknown kind', { kind: 'disk_full' }, '/body/kind'],
    ['a missing threshold', { threshold: undefined }, '/body/threshold'],
    ['a webhook URL that is not http', { channels: [{ type: 'webhook', url: 'not a url', secret: SECRET }] }, '/body/channels/0/url'],
    ['a webhook without a secret', { channels: [{ type: 'webhook', url: 'http://127.0.0.1/x' }] }, '/body/channels/0/secret'],
    ['an email without recipients', { channels: [{ type: 'email', to: [] }] }, '/body/channels/0/to'],
    ['an unknown field', { colour: 'red' }, '/body/colour'],
    ['a window on a kind without one', { windowMs: 60_000 }, '/body/windowMs'],
    ['a missing window', { kind: 'failure_rate', threshold: 0.1 }, '/body/windowMs'],
    ['a scope the kind does not take', { scope: { schedule: '1' } }, '/body/scope/schedule'],
    ['a negative forMs', { forMs: -1 }, '/body/forMs'],
    ['a bad severity', { severity: 'page' }, '/body/severity'],
  ])('refuses %s (%o) with a 400 naming %s, storing nothing', async (_what, change, field) => {
    const body = { ...backlog('http://127.0.0.1:9/hook'), ...(change as object) };
    const err = await node.admin.alerts.createRule(body as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskflowApiError);
    expect((err as TaskflowApiError).status).toBe(400);
    expect((err as TaskflowApiError).problem?.errors?.map((e) => e.field)).toContain(field);
    expect((await node.admin.alerts.listRules()).items.filter((r) => !r.builtin)).toEqual([]);
  });

  it('answers 404 for an unknown rule, 409 for a name taken, 400 for a silence in the past; deletes', async () => {
    const rule = await node.admin.alerts.createRule(backlog('http://127.0.0.1:9/hook'));
    await expect(node.admin.alerts.getRule('999999')).rejects.toMatchObject({ status: 404 });
    await expect(node.admin.alerts.createRule(backlog('http://127.0.0.1:9/hook'))).rejects.toMatchObject({ status: 409 });
    const past = await node.admin.alerts.silenceRule(rule.id, new Date(Date.now() - MINUTE)).catch((e: unknown) => e);
    expect((past as TaskflowApiError).problem?.errors?.[0]?.field).toBe('/body/until');
    const changed = await node.admin.alerts.updateRule(rule.id, { threshold: 5, channels: [{ type: 'webhook', url: 'http://127.0.0.1:9/hook' }] });
    expect(changed).toMatchObject({ threshold: 5, channels: [{ secretSet: true }] });
    await expect(node.admin.alerts.updateRule(rule.id, { kind: 'failure_rate' })).rejects.toMatchObject({ status: 400 });
    expect((await node.admin.alerts.getRule(rule.id)).kind).toBe('queue_depth');
    expect((await node.admin.alerts.deleteRule(rule.id)).name).toBe('backlog');
    await expect(node.admin.alerts.getRule(rule.id)).rejects.toMatchObject({ status: 404 });
  });

  it('lists the seeded default rules, with no channels', async () => {
    const rules = (await node.admin.alerts.listRules()).items;
    expect(rules.map((r) => r.name)).toEqual([
      'TaskflowQueueBacklogHigh', 'TaskflowQueueLatencyHigh', 'TaskflowTaskFailureRateHigh', 'TaskflowTasksDeadLettered',
      'TaskflowWorkersLow', 'TaskflowNoCompletions', 'TaskflowScheduleMissedFire',
    ]);
    expect(rules.every((r) => r.builtin && r.channels.length === 0)).toBe(true);
  });
});
