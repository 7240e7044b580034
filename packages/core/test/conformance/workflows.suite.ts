/**
 * Conformance of dependencies, workflows and batches: every transition they add (blocked →
 * queued on the parents' success, blocked → cancelled on a parent's death or cancel, the
 * cancel_all policy, workflow cancel and retry, a batch's completion), run unchanged on each
 * driver. Time is a ManualClock.
 */
import { describe, expect, it } from 'vitest';
import {
  Engine, InvalidGraphError, ManualClock, ResultTooLargeError, type ClaimedTask, type DriverName, type EngineOptions,
} from '@taskflow/core';
import { useTestDatabases } from '../support/db.ts';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const Q = [{ name: 'q', weight: 1 }];

export function describeWorkflowConformance(driver: DriverName): void {
  const dbs = useTestDatabases(driver, {});

  async function setup(options: Partial<EngineOptions> = {}) {
    const db = await dbs.fresh();
    const clock = new ManualClock(T0);
    const engine = new Engine({ db, clock, options: { defaultBackoff: { type: 'fixed', delayMs: 1000 }, ...options } });
    const worker = (await engine.registerWorker({ name: 'w', queues: Q, concurrency: 10 })).id;
    const claim = (max = 10) => engine.claim(worker, Q, max);
    const succeed = (t: ClaimedTask, result: unknown = null) =>
      engine.settle(worker, [{ id: t.id, attempt: t.attempt, status: 'succeeded', result }]);
    const kill = (t: ClaimedTask) =>
      engine.settle(worker, [{ id: t.id, attempt: t.attempt, status: 'failed', error: { message: 'boom' }, retryable: false }]);
    const state = async (id: string) => (await engine.getTask(id)).state;
    return { db, clock, engine, worker, claim, succeed, kill, state };
  }

  const diamond = { name: 'diamond', tasks: [
    { ref: 'A', type: 't', queue: 'q' },
    { ref: 'B', type: 't', queue: 'q', dependsOn: ['A'] },
    { ref: 'C', type: 't', queue: 'q', dependsOn: ['A'] },
    { ref: 'D', type: 't', queue: 'q', dependsOn: ['B', 'C'] },
  ] };

  describe(`workflow conformance (${driver})`, () => {
    it('runs a diamond: D once, after B and C, with both their results', async () => {
      const { engine, claim, succeed, worker } = await setup();
      const { workflow, tasks } = await engine.submitWorkflow(diamond);
      expect(tasks.map((t) => [t.ref, t.state])).toEqual([['A', 'queued'], ['B', 'blocked'], ['C', 'blocked'], ['D', 'blocked']]);
      expect(workflow).toMatchObject({ state: 'running', counts: { queued: 1, blocked: 3 }, taskCount: 4, failurePolicy: 'cancel_dependents' });
      const [a, ...none] = await claim();
      expect(none).toEqual([]);
      expect(a!.parentsJson).toBeUndefined();
      await succeed(a!, { a: 1 });
      const bc = await claim();
      expect(bc.map((t) => t.id).sort()).toEqual([tasks[1]!.id, tasks[2]!.id].sort());
      for (const t of bc) expect(JSON.parse(t.parentsJson!)).toEqual({ A: { a: 1 } });
      const b = bc.find((t) => t.id === tasks[1]!.id)!;
      const c = bc.find((t) => t.id === tasks[2]!.id)!;
      await succeed(b, 'from B');
      expect(await claim()).toEqual([]); // D still waits for C
      // C's success and the next claim in one statement: D is not claimable in that statement
      // (it became ready in it), but in the next claim.
      const { tasks: withC } = await engine.settleAndClaim(worker, [{ id: c.id, attempt: c.attempt, status: 'succeeded', result: ['C'] }], Q, 10);
      const d = withC.length ? withC : await claim();
      expect(d.map((t) => t.id)).toEqual([tasks[3]!.id]);
      expect(JSON.parse(d[0]!.parentsJson!)).toEqual({ B: 'from B', C: ['C'] });
      await succeed(d[0]!);
      expect(await claim()).toEqual([]);
      expect(await engine.getWorkflow(workflow.id)).toMatchObject({ state: 'succeeded', counts: { succeeded: 4 } });
    });

    it('fans out to 1,000 and in again: the join runs once, with every result', async () => {
      const { engine, claim, worker } = await setup();
      const width = 1000;
      const mids = Array.from({ length: width }, (_, i) => ({ ref: `m${i}`, type: 't', queue: 'q', dependsOn: ['root'] }));
      const { workflow, tasks } = await engine.submitWorkflow({ name: 'fan', tasks: [
        { ref: 'root', type: 't', queue: 'q' }, ...mids, { ref: 'join', type: 't', queue: 'q', dependsOn: mids.map((m) => m.ref) },
      ] });
      const joinId = tasks.at(-1)!.id;
      let held = await claim(250);
      const joins: ClaimedTask[] = [];
      let ran = 0;
      while (held.length > 0) {
        ran += held.length;
        joins.push(...held.filter((t) => t.id === joinId));
        const reports = held.map((t) => ({ id: t.id, attempt: t.attempt, status: 'succeeded' as const, result: t.id }));
        held = (await engine.settleAndClaim(worker, reports, Q, 250)).tasks;
        if (held.length === 0) held = await claim(250);
      }
      expect(ran).toBe(width + 2);
      expect(joins).toHaveLength(1);
      const parents = JSON.parse(joins[0]!.parentsJson!);
      expect(Object.keys(parents)).toHaveLength(width);
      expect(parents.m7).toBe(tasks[8]!.id);
      expect(await engine.getWorkflow(workflow.id)).toMatchObject({ state: 'succeeded', counts: { succeeded: width + 2 } });
    });

    it('cancel_dependents: B dead cancels D, C still runs; the workflow fails', async () => {
      const { engine, claim, succeed, kill, state } = await setup();
      const { workflow, tasks } = await engine.submitWorkflow(diamond);
      const [a] = await claim();
      await succeed(a!);
      const bc = await claim();
      const b = bc.find((t) => t.id === tasks[1]!.id)!;
      const c = bc.find((t) => t.id === tasks[2]!.id)!;
      await kill(b);
      expect(await state(tasks[1]!.id)).toBe('dead');
      expect(await state(tasks[3]!.id)).toBe('cancelled');
      expect(await engine.getWorkflow(workflow.id)).toMatchObject({ state: 'running' });
      await succeed(c);
      expect(await state(tasks[2]!.id)).toBe('succeeded');
      expect(await state(tasks[3]!.id)).toBe('cancelled');
      expect(await engine.getWorkflow(workflow.id)).toMatchObject({ state: 'failed', counts: { succeeded: 2, dead: 1, cancelled: 1 } });
    });

    it('cancel_dependents reaches every descendant, through several levels', async () => {
      const { engine, claim, kill, state } = await setup();
      const { tasks } = await engine.submitWorkflow({ name: 'chain', tasks: [
        { ref: 'a', type: 't', queue: 'q' }, { ref: 'b', type: 't', queue: 'q', dependsOn: ['a'] },
        { ref: 'c', type: 't', queue: 'q', dependsOn: ['b'] }, { ref: 'd', type: 't', queue: 'q', dependsOn: ['c', 'e'] },
        { ref: 'e', type: 't', queue: 'q' },
      ] });
      const held = await claim();
      await kill(held.find((t) => t.id === tasks[0]!.id)!);
      expect(await Promise.all(tasks.map((t) => state(t.id)))).toEqual(['dead', 'cancelled', 'cancelled', 'cancelled', 'running']);
    });

    it('cancel_all: a dead task cancels every unfinished task; a running one is asked to stop', async () => {
      const { engine, claim, kill, succeed } = await setup();
      const { workflow, tasks } = await engine.submitWorkflow({ name: 'all', failurePolicy: 'cancel_all', tasks: [
        { ref: 'x', type: 't', queue: 'q' }, { ref: 'y', type: 't', queue: 'q' },
        { ref: 'z', type: 't', queue: 'q', dependsOn: ['y'] }, { ref: 'later', type: 't', queue: 'q', delayMs: 60_000 },
      ] });
      const held = await claim();
      const x = held.find((t) => t.id === tasks[0]!.id)!;
      const y = held.find((t) => t.id === tasks[1]!.id)!;
      await kill(x);
      const after = await Promise.all(tasks.map((t) => engine.getTask(t.id)));
      expect(after.map((t) => [t.state, t.cancelRequested])).toEqual([
        ['dead', false], ['running', true], ['cancelled', false], ['cancelled', false],
      ]);
      await succeed(y); // the work was done: a success still counts
      expect(await engine.getWorkflow(workflow.id)).toMatchObject({ state: 'failed', counts: { dead: 1, succeeded: 1, cancelled: 2 } });
    });

    it('an expired lease that kills a parent cancels its dependents (rescue)', async () => {
      const { engine, claim, clock, state } = await setup();
      const { tasks } = await engine.submitWorkflow({ name: 'lease', tasks: [
        { ref: 'p', type: 't', queue: 'q', maxAttempts: 1, timeoutMs: 1000 }, { ref: 'c', type: 't', queue: 'q', dependsOn: ['p'] },
      ] });
      await claim();
      clock.advance(1000);
      expect(await engine.rescueExpired()).toBe(1);
      expect([await state(tasks[0]!.id), await state(tasks[1]!.id)]).toEqual(['dead', 'cancelled']);
    });

    it('cancelling a waiting task cancels its dependents', async () => {
      const { engine, state } = await setup();
      const { tasks } = await engine.submitWorkflow(diamond);
      await engine.cancelTask(tasks[1]!.id); // B, blocked
      expect(await Promise.all(tasks.map((t) => state(t.id)))).toEqual(['queued', 'cancelled', 'blocked', 'cancelled']);
      // A retry of a task whose parents are still pending puts it back to waiting, not queued.
      expect((await engine.retryTask(tasks[1]!.id)).state).toBe('blocked');
    });

    it('cancels a whole workflow, and retries a failed one from its dead task', async () => {
      const { engine, claim, succeed, kill, state } = await setup();
      const { workflow, tasks } = await engine.submitWorkflow(diamond);
      await expect(engine.retryWorkflow(workflow.id)).rejects.toThrow(/is running/);
      const [a] = await claim();
      await succeed(a!, 'a');
      const bc = await claim();
      await kill(bc.find((t) => t.id === tasks[1]!.id)!);
      await succeed(bc.find((t) => t.id === tasks[2]!.id)!, 'c');
      expect(await engine.getWorkflow(workflow.id)).toMatchObject({ state: 'failed' });
      const retried = await engine.retryWorkflow(workflow.id);
      expect(retried).toMatchObject({ state: 'running', counts: { succeeded: 2, queued: 1, blocked: 1 } });
      expect(await state(tasks[3]!.id)).toBe('blocked');
      const [b] = await claim();
      expect(b!.id).toBe(tasks[1]!.id);
      expect(b!.attemptsLeft).toBe(4); // a fresh budget
      await succeed(b!, 'b');
      const [d] = await claim();
      expect(JSON.parse(d!.parentsJson!)).toEqual({ B: 'b', C: 'c' });
      await succeed(d!);
      expect(await engine.getWorkflow(workflow.id)).toMatchObject({ state: 'succeeded' });

      const other = await engine.submitWorkflow(diamond);
      const [a2] = await claim();
      const cancelled = await engine.cancelWorkflow(other.workflow.id);
      expect(cancelled).toMatchObject({ state: 'running', counts: { running: 1, cancelled: 3 } });
      expect((await engine.getTask(a2!.id)).cancelRequested).toBe(true);
      await kill(a2!);
      expect(await engine.getWorkflow(other.workflow.id)).toMatchObject({ state: 'cancelled', counts: { cancelled: 4 } });
      expect((await engine.listWorkflows({ limit: 10 })).map((w) => w.id)).toEqual([other.workflow.id, workflow.id]);
    });

    it('refuses a cycle, unknown and duplicate references, naming them, and stores nothing', async () => {
      const { engine, db } = await setup();
      const refused = async (tasks: { ref: string; type: string; dependsOn?: string[] }[]) => {
        const err = await engine.submitWorkflow({ name: 'bad', tasks }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(InvalidGraphError);
        return (err as InvalidGraphError).problems;
      };
      expect(await refused([
        { ref: 'a', type: 't', dependsOn: ['c'] }, { ref: 'b', type: 't', dependsOn: ['a'] }, { ref: 'c', type: 't', dependsOn: ['b'] },
        { ref: 'd', type: 't', dependsOn: ['a'] },
      ])).toEqual([{ field: expect.stringMatching(/^tasks\/[0-2]\/dependsOn$/), message: expect.stringMatching(/cycle: "(a|b|c)" → "(a|b|c)" → "(a|b|c)" → "\1"/) }]);
      expect(await refused([{ ref: 'a', type: 't', dependsOn: ['a'] }])).toEqual([{ field: 'tasks/0/dependsOn/0', message: expect.stringMatching(/"a" depends on itself/) }]);
      expect(await refused([{ ref: 'a', type: 't' }, { ref: 'b', type: 't', dependsOn: ['a', 'nope', 'zilch'] }])).toEqual([
        { field: 'tasks/1/dependsOn/1', message: expect.stringMatching(/"nope"/) },
        { field: 'tasks/1/dependsOn/2', message: expect.stringMatching(/"zilch"/) },
      ]);
      expect(await refused([{ ref: 'a', type: 't' }, { ref: 'a', type: 't' }])).toEqual([{ field: 'tasks/1/ref', message: expect.stringMatching(/"a" of the task at index 0/) }]);
      const { rows } = await db.query(`SELECT (SELECT count(*) FROM tasks)::int AS tasks, (SELECT count(*) FROM workflows)::int AS workflows,
                                              (SELECT count(*) FROM task_dependencies)::int AS edges`);
      expect(rows[0]).toEqual({ tasks: 0, workflows: 0, edges: 0 });
    });

    it('depends on existing tasks by id: waits for success, takes the result, is cancelled by a death', async () => {
      const { engine, claim, succeed, kill, state, db } = await setup();
      const [p1, p2, done] = await engine.enqueue([{ type: 't', queue: 'q' }, { type: 't', queue: 'q' }, { type: 't', queue: 'other' }]);
      const [held1, held2] = await claim();
      const otherQueue = [{ name: 'other', weight: 1 }];
      const ow = (await engine.registerWorker({ name: 'o', queues: otherQueue, concurrency: 1 })).id;
      const [other] = await engine.claim(ow, otherQueue, 1);
      await engine.settle(ow, [{ id: other!.id, attempt: other!.attempt, status: 'succeeded', result: 'old' }]);
      const [child, orphan] = await engine.enqueue([
        { type: 't', queue: 'q', dependsOn: [p1!.task.id, done!.task.id] },
        { type: 't', queue: 'q', dependsOn: [p2!.task.id] },
      ]);
      expect(child!.task.state).toBe('blocked');
      await succeed(held1!, 'new');
      const [c] = await claim();
      expect(c!.id).toBe(child!.task.id);
      expect(JSON.parse(c!.parentsJson!)).toEqual({ [p1!.task.id]: 'new', [done!.task.id]: 'old' });
      await kill(held2!);
      expect(await state(orphan!.task.id)).toBe('cancelled');
      // A parent already finished: ready (or cancelled) at once.
      const [now, never] = await engine.enqueue([{ type: 't', queue: 'q', dependsOn: [p1!.task.id] }, { type: 't', queue: 'q', dependsOn: [p2!.task.id] }]);
      expect([now!.task.state, never!.task.state]).toEqual(['queued', 'cancelled']);
      const err = await engine.enqueue([{ type: 't', dependsOn: ['999999', 'x'] }]).catch((e: unknown) => e);
      expect((err as InvalidGraphError).problems).toEqual([
        { field: 'dependsOn/1', message: 'is not a task id: "x"' }, { field: 'dependsOn/0', message: 'names task 999999, which does not exist' },
      ]);
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM tasks`);
      expect(rows[0]!.n).toBe(7);
    });

    it('the maintenance re-count releases a task a node left blocked mid-submit', async () => {
      const { engine, claim, succeed, clock, db, state } = await setup();
      const [p] = await engine.enqueue([{ type: 't', queue: 'q' }]);
      const [held] = await claim();
      const [child] = await engine.enqueue([{ type: 't', queue: 'q', dependsOn: [p!.task.id] }]);
      await succeed(held!);
      // Fabricate the state a node dying between the submit and its re-count leaves: the
      // parent's success missed the child.
      await db.query(`UPDATE tasks SET state = 'blocked', pending_parents = 1 WHERE id = $1`, [child!.task.id]);
      expect(await engine.recountBlocked()).toBe(0); // too young: its own submit may still be counting
      clock.advance(10_001);
      expect(await engine.recountBlocked()).toBe(1);
      expect(await state(child!.task.id)).toBe('queued');
    });

    it('a batch queues its completion task once every member finished, with the counts', async () => {
      const { engine, claim, succeed, kill, state } = await setup();
      const { workflow, tasks } = await engine.submitBatch({
        name: 'b', tasks: [{ type: 't', queue: 'q' }, { type: 't', queue: 'q' }, { type: 't', queue: 'q', delayMs: 60_000 }],
        completion: { type: 'done', queue: 'q', payload: { note: 1 } },
      });
      expect(workflow).toMatchObject({ kind: 'batch', taskCount: 4, completionTaskId: tasks[3]!.id, counts: { queued: 2, scheduled: 1, blocked: 1 } });
      const [m1, m2] = await claim();
      await succeed(m1!);
      await kill(m2!);
      expect(await state(tasks[3]!.id)).toBe('blocked');
      await engine.cancelTask(tasks[2]!.id);
      const [done] = await claim();
      expect(done!.id).toBe(tasks[3]!.id);
      expect(done!.parentsJson).toBeUndefined();
      expect(JSON.parse(done!.payloadJson!)).toEqual({ batch: { id: Number(workflow.id), total: 3, succeeded: 1, dead: 1, cancelled: 1 }, payload: { note: 1 } });
      await succeed(done!);
      expect(await engine.getWorkflow(workflow.id)).toMatchObject({ state: 'failed', counts: { succeeded: 2, dead: 1, cancelled: 1 } });

      const other = await engine.submitBatch({ name: 'c', tasks: [{ type: 't', queue: 'q' }], completion: { type: 'done', queue: 'q' } });
      expect(await engine.cancelWorkflow(other.workflow.id)).toMatchObject({ state: 'cancelled', counts: { cancelled: 2 } });
      await expect(engine.retryWorkflow(other.workflow.id)).rejects.toThrow(/is a batch/);
    });

    it('refuses a result too large for the children at settle, and takes it from a task without any', async () => {
      const { engine, claim, succeed, state } = await setup();
      const { tasks } = await engine.submitWorkflow({ name: 'big', tasks: [
        { ref: 'p', type: 't', queue: 'q' }, { ref: 'c', type: 't', queue: 'q', dependsOn: ['p'] }, { ref: 'alone', type: 't', queue: 'q' },
      ] });
      const held = await claim();
      const big = 'x'.repeat(70_000);
      const p = held.find((t) => t.id === tasks[0]!.id)!;
      await expect(succeed(p, big)).rejects.toBeInstanceOf(ResultTooLargeError);
      expect(await state(p.id)).toBe('running');
      await succeed(held.find((t) => t.id === tasks[2]!.id)!, big);
      expect(await state(tasks[2]!.id)).toBe('succeeded');
    });
  });
}
