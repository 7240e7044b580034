/**
 * The alerts conformance suite: rules and their refusals, the state machine (pending, firing
 * after forMs, resolved) with its history and notification tasks, silences, two engines
 * evaluating at once, and each kind's value on a fabricated situation; run unchanged against
 * each driver (alerts.pglite.test.ts, alerts.postgres.test.ts). Time is a ManualClock: a test
 * moves it and runs the evaluation pass (`Alerts.evaluate`) itself.
 */
import { describe, expect, it } from 'vitest';
import {
  ALERTS_QUEUE, AlreadyExistsError, Alerts, Engine, InvalidInputError, ManualClock, type AlertRuleInput, type Database, type DriverName,
} from '@taskflow/core';
import { useTestDatabases } from '../support/db.ts';
import { fabricate, insertHistory } from '../support/history.ts';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOOK = { type: 'webhook', url: 'http://127.0.0.1:9/hook', secret: 'a-secret-of-24-characters' } as const;

export function describeAlertConformance(driver: DriverName): void {
  const dbs = useTestDatabases(driver);

  async function setup(start = T0, db?: Database) {
    db ??= await dbs.fresh();
    // The seeded default rules would change state too: the suite measures its own rules only.
    await db.query(`DELETE FROM alert_rules WHERE builtin`);
    const clock = new ManualClock(start);
    const engine = new Engine({ db, clock });
    const alerts = new Alerts(engine);
    const rule = (input: Partial<AlertRuleInput> = {}) =>
      alerts.createRule({ name: 'backlog', kind: 'queue_depth', threshold: 2, forMs: MINUTE, scope: { queue: 'q' }, ...input } as AlertRuleInput);
    const enqueue = (n: number, queue = 'q') => engine.enqueue(Array.from({ length: n }, () => ({ type: 't', queue })));
    const notifications = async () =>
      (await db.query(`SELECT payload FROM tasks WHERE queue = $1 ORDER BY id`, [ALERTS_QUEUE])).rows.map((r) => r.payload);
    return { db, clock, engine, alerts, rule, enqueue, notifications };
  }

  describe(`alert conformance (${driver})`, () => {
    describe('rules', () => {
      it('stores a rule with its defaults and never returns a state it did not reach', async () => {
        const { alerts, rule } = await setup();
        const r = await rule({ channels: [HOOK] });
        expect(r).toMatchObject({
          name: 'backlog', kind: 'queue_depth', threshold: 2, windowMs: null, forMs: MINUTE, severity: 'warning', scope: { queue: 'q' },
          enabled: true, builtin: false, silencedUntil: null, state: 'inactive', stateSince: null, channels: [HOOK],
        });
        expect(await alerts.getRule(r.id)).toEqual(r);
        await expect(rule()).rejects.toBeInstanceOf(AlreadyExistsError);
      });

      it.each([
        [{ kind: 'nope' }, 'kind'],
        [{ threshold: undefined }, 'threshold'],
        [{ kind: 'failure_rate', threshold: 0.1 }, 'windowMs'],
        [{ kind: 'failure_rate', threshold: 5, windowMs: MINUTE }, 'threshold'],
        [{ windowMs: MINUTE }, 'windowMs'],
        [{ kind: 'workers_online_below', scope: { type: 'x' } }, 'scope/type'],
        [{ channels: [{ ...HOOK, url: 'ftp://x' }] }, 'channels/0/url'],
        [{ channels: [HOOK, { type: 'email', to: ['not an address'] }] }, 'channels/1/to/0'],
      ] as const)('refuses %o naming %s, storing nothing', async (input, field) => {
        const { alerts, rule } = await setup();
        const err = await rule(input as Partial<AlertRuleInput>).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(InvalidInputError);
        expect((err as InvalidInputError).field).toBe(field);
        expect(await alerts.listRules({ limit: 10 })).toEqual([]);
      });

      it('keeps a webhook secret a change leaves out, and starts a changed condition afresh', async () => {
        const { alerts, rule, enqueue } = await setup();
        const r = await rule({ channels: [HOOK], forMs: 0 });
        await enqueue(3);
        await alerts.evaluate();
        expect((await alerts.getRule(r.id)).state).toBe('firing');
        const renamed = await alerts.updateRule(r.id, { severity: 'critical', channels: [{ type: 'webhook', url: HOOK.url }] });
        expect(renamed).toMatchObject({ severity: 'critical', state: 'firing', channels: [HOOK] });
        const changed = await alerts.updateRule(r.id, { threshold: 10 });
        expect(changed).toMatchObject({ threshold: 10, state: 'inactive' });
        await expect(alerts.updateRule(r.id, { channels: [{ type: 'webhook', url: 'http://elsewhere/' }] })).rejects.toMatchObject({ field: 'channels/0/secret' });
      });
    });

    describe('state machine', () => {
      it('goes pending, fires after forMs, resolves; records and notifies each change once', async () => {
        const { clock, engine, alerts, rule, enqueue, notifications } = await setup();
        const r = await rule({ channels: [HOOK, { type: 'email', to: ['ops@example.com'] }] });
        await enqueue(3);
        expect(await alerts.evaluate()).toMatchObject({ transitions: 1, recorded: 0 });
        expect(await alerts.getRule(r.id)).toMatchObject({ state: 'pending', stateSince: T0 });
        clock.advance(MINUTE - 1);
        expect(await alerts.evaluate()).toMatchObject({ transitions: 0 });
        clock.advance(1);
        expect(await alerts.evaluate()).toMatchObject({ transitions: 1, recorded: 1, notifications: 2 });
        expect(await alerts.listFiring()).toMatchObject([{ id: r.id, state: 'firing', lastValue: 3 }]);
        await alerts.evaluate();
        const fired = await alerts.listHistory({ limit: 10 });
        expect(fired).toMatchObject([{ ruleId: r.id, ruleName: 'backlog', state: 'firing', value: 3, threshold: 2, silenced: false, notifications: 2 }]);
        expect(await notifications()).toEqual([
          { ruleId: r.id, historyId: fired[0]!.id, channel: 0 }, { ruleId: r.id, historyId: fired[0]!.id, channel: 1 },
        ]);
        // Two of three leave the ready set: the condition clears.
        const ready = await engine.listTasks({ queue: 'q', limit: 2 });
        for (const t of ready) await engine.cancelTask(t.id);
        clock.advance(SECOND);
        expect(await alerts.evaluate()).toMatchObject({ recorded: 1, notifications: 2 });
        const history = await alerts.listHistory({ ruleId: r.id, limit: 10 });
        expect(history.map((h) => [h.state, h.value])).toEqual([['resolved', 1], ['firing', 3]]);
        expect(await notifications()).toHaveLength(4);
        expect(JSON.stringify(await notifications())).not.toContain(HOOK.secret);
        expect(await alerts.listFiring()).toEqual([]);
      });

      it('records nothing when the condition clears before forMs', async () => {
        const { clock, engine, alerts, rule, enqueue, notifications } = await setup();
        const r = await rule({ channels: [HOOK] });
        const made = await enqueue(3);
        await alerts.evaluate();
        await engine.cancelTask(made[0]!.ref.id);
        clock.advance(MINUTE);
        await alerts.evaluate();
        expect(await alerts.getRule(r.id)).toMatchObject({ state: 'inactive', stateSince: null });
        expect(await alerts.listHistory({ limit: 10 })).toEqual([]);
        expect(await notifications()).toEqual([]);
      });

      it('a silenced rule changes state and is recorded as silenced, sending nothing', async () => {
        const { clock, engine, alerts, rule, enqueue, notifications } = await setup();
        const r = await rule({ forMs: 0, channels: [HOOK] });
        await alerts.silenceRule(r.id, new Date(T0.getTime() + 10 * MINUTE), 'maintenance');
        const made = await enqueue(3);
        await alerts.evaluate();
        for (const m of made) await engine.cancelTask(m.ref.id);
        clock.advance(MINUTE);
        await alerts.evaluate();
        const history = await alerts.listHistory({ ruleId: r.id, limit: 10 });
        expect(history.map((h) => [h.state, h.silenced, h.notifications])).toEqual([['resolved', true, 0], ['firing', true, 0]]);
        expect(await notifications()).toEqual([]);
        // Past the silence, changes notify again.
        clock.advance(10 * MINUTE);
        await enqueue(3);
        await alerts.evaluate();
        expect((await alerts.listHistory({ ruleId: r.id, limit: 1 }))[0]).toMatchObject({ state: 'firing', silenced: false, notifications: 1 });
        expect(await notifications()).toHaveLength(1);
      });

      it('a rule disabled while firing resolves', async () => {
        const { alerts, rule, enqueue } = await setup();
        const r = await rule({ forMs: 0 });
        await enqueue(3);
        await alerts.evaluate();
        await alerts.updateRule(r.id, { enabled: false });
        await alerts.evaluate();
        expect(await alerts.getRule(r.id)).toMatchObject({ state: 'inactive', enabled: false });
        expect((await alerts.listHistory({ limit: 10 })).map((h) => h.state)).toEqual(['resolved', 'firing']);
      });

      it('two engines evaluating each pass together: one change, one history row, one notification each', async () => {
        const { db, clock, alerts, rule, enqueue, engine, notifications } = await setup();
        const other = new Alerts(new Engine({ db, clock }));
        const r = await rule({ channels: [HOOK] });
        await enqueue(3);
        for (let pass = 0; pass < 20; pass++) {
          if (pass === 10) for (const t of await engine.listTasks({ queue: 'q', limit: 2 })) await engine.cancelTask(t.id);
          clock.advance(10 * SECOND);
          await Promise.all([alerts.evaluate(), other.evaluate()]);
        }
        expect((await alerts.listHistory({ ruleId: r.id, limit: 10 })).map((h) => h.state)).toEqual(['resolved', 'firing']);
        expect(await notifications()).toHaveLength(2);
        expect((await alerts.getRule(r.id)).state).toBe('inactive');
      });
    });

    describe('one pass per interval across the nodes', () => {
      it('two engines in one interval: one evaluates each rule, the other nothing', async () => {
        const { db, clock, alerts, rule, enqueue } = await setup();
        const other = new Alerts(new Engine({ db, clock }));
        const a = await rule({ forMs: 0 });
        const b = await rule({ name: 'latency', kind: 'oldest_ready_age', threshold: 1, forMs: 0 });
        await enqueue(3);
        clock.advance(SECOND);
        const passes = await Promise.all([alerts.evaluateDue(MINUTE), other.evaluateDue(MINUTE)]);
        expect(passes.map((p) => p.evaluated).sort()).toEqual([0, 2]);
        expect(passes.map((p) => p.transitions).sort()).toEqual([0, 2]);
        expect([(await alerts.getRule(a.id)).state, (await alerts.getRule(b.id)).state]).toEqual(['firing', 'firing']);
        // Within the interval (the database's time), no node evaluates them again; a new rule is due at once.
        clock.advance(10 * MINUTE);
        const c = await rule({ name: 'new', forMs: 0 });
        const again = await Promise.all([alerts.evaluateDue(MINUTE), other.evaluateDue(MINUTE)]);
        expect(again.map((p) => p.evaluated).sort()).toEqual([0, 1]);
        expect((await alerts.getRule(c.id)).state).toBe('firing');
        // A forced pass still evaluates every rule, and changes nothing twice.
        expect(await other.evaluate()).toMatchObject({ evaluated: 3, transitions: 0 });
      });

      it('rules a node claimed before it died wait for the next interval, then another node evaluates them', async () => {
        const { db, clock, alerts, rule, enqueue } = await setup();
        const other = new Alerts(new Engine({ db, clock }));
        const r = await rule({ forMs: 0 });
        await enqueue(3);
        // The winner's claim (alertRulesClaim's stamp), committed; the node dies before evaluating.
        await db.query(`UPDATE alert_rules SET evaluated_at = now()`);
        expect(await other.evaluateDue(MINUTE)).toMatchObject({ evaluated: 0 });
        expect((await alerts.getRule(r.id)).state).toBe('inactive');
        // The next interval (the stamp fabricated a minute older): the rule is due again.
        await db.query(`UPDATE alert_rules SET evaluated_at = evaluated_at - interval '1 minute'`);
        expect(await other.evaluateDue(MINUTE)).toMatchObject({ evaluated: 1, transitions: 1, recorded: 1 });
        expect((await alerts.getRule(r.id)).state).toBe('firing');
        expect((await alerts.listHistory({ ruleId: r.id, limit: 10 })).map((h) => h.state)).toEqual(['firing']);
      });
    });

    describe('values', () => {
      /** The value a rule of `input` records when it fires at once (threshold below any value). */
      async function valueOf(alerts: Alerts, input: Partial<AlertRuleInput>, pass = () => alerts.evaluate()): Promise<number | null> {
        const r = await alerts.createRule({ name: `v${Math.random()}`, kind: 'queue_depth', threshold: -1, forMs: 0, ...input } as AlertRuleInput);
        await pass();
        const got = await alerts.getRule(r.id);
        await alerts.deleteRule(r.id);
        return got.state === 'firing' ? got.lastValue : null;
      }

      it('queue_depth and oldest_ready_age read the ready set of the scope', async () => {
        const { clock, engine, alerts, enqueue } = await setup();
        await enqueue(2, 'q');
        clock.advance(90 * SECOND);
        await enqueue(3, 'other');
        await engine.enqueue([{ type: 'later', queue: 'q', delayMs: MINUTE }]);
        expect(await valueOf(alerts, { scope: { queue: 'q' } })).toBe(2);
        expect(await valueOf(alerts, {})).toBe(5);
        expect(await valueOf(alerts, { kind: 'oldest_ready_age', scope: { queue: 'q' } })).toBe(90_000);
        expect(await valueOf(alerts, { kind: 'oldest_ready_age', scope: { queue: 'other' } })).toBe(0);
      });

      it('queue_depth and oldest_ready_age from a fresh snapshot equal the counted ones', async () => {
        const { clock, engine, alerts, enqueue } = await setup();
        await enqueue(2, 'q');
        clock.advance(90 * SECOND);
        await enqueue(3, 'other');
        await engine.enqueue([{ type: 'later', queue: 'q', delayMs: MINUTE }, { type: 'x', queue: 'q', priority: 5 }]);
        expect(await engine.refreshStats(MINUTE)).toBe(true);
        clock.advance(SECOND); // a pass after the snapshot's instant
        const fromSnapshot = () => alerts.evaluate({ snapshotMaxAgeMs: MINUTE });
        const rules: Partial<AlertRuleInput>[] = [
          {}, { scope: { queue: 'q' } }, { scope: { queue: 'none' } },
          { kind: 'oldest_ready_age' }, { kind: 'oldest_ready_age', scope: { queue: 'q' } }, { kind: 'oldest_ready_age', scope: { queue: 'other' } },
          { kind: 'oldest_ready_age', scope: { queue: 'none' } },
        ];
        const counted = [];
        for (const input of rules) counted.push(await valueOf(alerts, input));
        expect(counted).toEqual([6, 3, 0, 91_000, 91_000, SECOND, 0]);
        for (const [i, input] of rules.entries()) expect(await valueOf(alerts, input, fromSnapshot)).toBeCloseTo(counted[i]!, 6);
        // The snapshot is what was read: tasks enqueued since are not in it...
        await enqueue(4, 'q');
        expect(await valueOf(alerts, { scope: { queue: 'q' } }, fromSnapshot)).toBe(3);
        // ...until it is older than allowed: refreshed then, at the pass's own instant, which is counted.
        clock.advance(MINUTE);
        expect(await valueOf(alerts, { scope: { queue: 'q' } }, fromSnapshot)).toBe(7);
        expect((await engine.readStats())!.takenAt * 1000).toBe(clock.now().getTime());
      });

      it('queue_depth scoped by type counts up to threshold + 1', async () => {
        const { alerts, enqueue } = await setup();
        await enqueue(5);
        expect(await valueOf(alerts, { scope: { type: 't' }, threshold: 2 })).toBe(3);
        expect(await valueOf(alerts, { scope: { type: 't', queue: 'q' }, threshold: 0.5 })).toBe(1);
        expect(await valueOf(alerts, { scope: { type: 't' }, threshold: 5 })).toBeNull();
        expect(await valueOf(alerts, { scope: { type: 't' }, threshold: 4.5 })).toBe(5);
        expect(await valueOf(alerts, { scope: { type: 't' }, threshold: 1e300 })).toBeNull();
      });

      it('failure_rate, dead_letter_growth and no_completions count the window of a fabricated history', async () => {
        const { db, clock, alerts } = await setup();
        const tasks = fabricate(300, T0.getTime(), 30 * MINUTE, 7);
        await insertHistory(db, tasks, T0.getTime());
        const end = T0.getTime() + 40 * MINUTE;
        clock.set(new Date(end));
        const win = 20 * MINUTE;
        const inWin = (t: number) => t > end - win && t <= end;
        const of = tasks.filter((t) => t.queue === 'emails');
        const failed = of.flatMap((t) => t.attempts).filter((a) => a.outcome !== 'succeeded' && inWin(a.finishedAt)).length;
        const succeeded = of.filter((t) => t.state === 'succeeded' && inWin(t.finishedAt)).length;
        const dead = of.filter((t) => t.state === 'dead' && inWin(t.finishedAt)).length;
        expect(failed).toBeGreaterThan(0);
        expect(await valueOf(alerts, { kind: 'failure_rate', threshold: 0, windowMs: win, scope: { queue: 'emails' } })).toBeCloseTo(failed / (failed + succeeded), 12);
        // Fewer ended attempts than minAttempts: the rate does not count.
        const rate = { kind: 'failure_rate', threshold: 0, windowMs: win, scope: { queue: 'emails' } } as const;
        expect(await valueOf(alerts, { ...rate, minAttempts: failed + succeeded })).not.toBeNull();
        expect(await valueOf(alerts, { ...rate, minAttempts: failed + succeeded + 1 })).toBeNull();
        expect(await valueOf(alerts, { kind: 'dead_letter_growth', windowMs: win, scope: { queue: 'emails' } })).toBe(dead);
        // no_completions fires below its threshold only while work waits in the scope.
        expect(await valueOf(alerts, { kind: 'no_completions', windowMs: win, threshold: 1e9, scope: { queue: 'emails' } })).toBeNull();
        await db.query(`INSERT INTO tasks (queue, type, state, run_at, max_attempts, backoff, timeout_ms)
                        VALUES ('emails', 'send', 'queued', $1, 3, '{"type":"fixed","delayMs":0}', 60000)`, [new Date(end)]);
        expect(await valueOf(alerts, { kind: 'no_completions', windowMs: win, threshold: 1e9, scope: { queue: 'emails' } })).toBe(succeeded);
      });

      it('workers_online_below counts live workers serving the queue, while it has ready tasks', async () => {
        const { clock, engine, alerts, enqueue } = await setup();
        const rule = { kind: 'workers_online_below', threshold: 1e9, scope: { queue: 'q' } } as const;
        await engine.registerWorker({ name: 'a', queues: [{ name: 'q', weight: 1 }], concurrency: 1 });
        expect(await valueOf(alerts, rule)).toBeNull(); // no ready task: nothing to fire about
        await enqueue(1);
        await engine.registerWorker({ name: 'b', queues: [{ name: 'q', weight: 1 }, { name: 'z', weight: 2 }], concurrency: 1 });
        await engine.registerWorker({ name: 'c', queues: [{ name: 'z', weight: 1 }], concurrency: 1 });
        expect(await valueOf(alerts, rule)).toBe(2);
        clock.advance(16 * SECOND); // past the worker TTL without a heartbeat
        expect(await valueOf(alerts, rule)).toBe(0);
      });

      it('schedule_missed_fire counts skipped misfires in the window and overdue schedules', async () => {
        const { clock, engine, alerts } = await setup();
        const s = await engine.createSchedule({ name: 's', cron: '0 * * * * *', template: { type: 't', queue: 'cron' } });
        const missed = { kind: 'schedule_missed_fire', threshold: -1, windowMs: 10 * MINUTE, scope: { schedule: s.id } } as const;
        expect(await valueOf(alerts, missed)).toBe(0);
        clock.advance(5 * MINUTE); // every node down: the first fire is 4 minutes overdue
        expect(await valueOf(alerts, missed)).toBe(1);
        await engine.fireDueSchedules(); // skip policy: recorded as a skipped misfire, next fire on time
        expect(await valueOf(alerts, missed)).toBe(1);
        clock.advance(11 * MINUTE);
        await engine.fireDueSchedules();
        expect(await valueOf(alerts, { ...missed, scope: {} })).toBe(1);
      });
    });
  });
}
