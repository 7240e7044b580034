/**
 * Workflows and batches over HTTP, run by the SDK's Worker: a diamond whose join runs once,
 * after both branches, and sees both results through `ctx.parents`; a dead branch cancelling
 * its dependents while the independent one runs; a batch's completion task with the counts;
 * `dependsOn` by id in a plain submit; a 10,000-task fan-out accepted in one request; a result
 * too large for the children refused at settle. On PGlite. Waits are on worker events and
 * conditions with a deadline, never on sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskflowApiError, UnrecoverableError, Worker, type TaskContext, type TaskflowClient } from '@taskflow/sdk';
import { startTestService, type TestService } from './support/service.ts';

const quiet = { info() {}, warn() {}, error() {} };

/** Resolves once `check` answers true, polling; fails after `ms`. */
async function until(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met before the deadline');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('workflows over HTTP (pglite)', () => {
  let svc: TestService;
  let client: TaskflowClient;
  const workers: Worker[] = [];
  /** What each handler saw, in the order the handlers ran. */
  const ran: { type: string; payload: any; parents: Record<string, unknown> }[] = [];

  beforeAll(async () => {
    svc = await startTestService('pglite', { rescueIntervalMs: 100 });
    client = svc.admin;
    const handler = (payload: any, ctx: TaskContext) => {
      ran.push({ type: ctx.type, payload, parents: { ...ctx.parents } });
      if (ctx.type === 'fail') throw new UnrecoverableError('no');
      if (ctx.type === 'huge') return 'x'.repeat(70_000);
      return { from: payload?.name ?? ctx.type };
    };
    const w = new Worker({
      url: svc.url, apiKey: svc.adminKey, queues: ['wf'], concurrency: 4, waitMs: 2000, handleSignals: false, logger: quiet,
      handlers: { step: handler, fail: handler, done: handler, huge: handler },
    });
    workers.push(w);
    await w.start();
  }, 180_000); // PGlite starts slowly on a busy machine
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop(0)));
    await svc?.stop();
  });

  const finished = (id: string) => until(async () => (await client.getWorkflow(id)).state !== 'running');
  const step = (ref: string, dependsOn?: string[], type = 'step') => ({ ref, type, queue: 'wf', payload: { name: ref }, dependsOn });

  it('runs a diamond: D once, after B and C, seeing both results', async () => {
    const { workflow, tasks } = await client.createWorkflow({
      name: 'diamond', tasks: [step('A'), step('B', ['A']), step('C', ['A']), step('D', ['B', 'C'])],
    });
    expect(tasks.map((t) => t.state)).toEqual(['queued', 'blocked', 'blocked', 'blocked']);
    await finished(workflow.id);
    const mine = ran.filter((r) => ['A', 'B', 'C', 'D'].includes(r.payload?.name));
    expect(mine.map((r) => r.payload.name).filter((n) => n === 'D')).toEqual(['D']);
    expect(mine.at(-1)).toEqual({ type: 'step', payload: { name: 'D' }, parents: { B: { from: 'B' }, C: { from: 'C' } } });
    expect(mine[0]!.payload.name).toBe('A');
    const got = await client.getWorkflow(workflow.id);
    expect(got).toMatchObject({ state: 'succeeded', counts: { succeeded: 4 }, kind: 'workflow', failurePolicy: 'cancel_dependents' });
    const d = await client.getTask(tasks[3]!.id);
    expect(d).toMatchObject({ workflowId: workflow.id, workflowRef: 'D', result: { from: 'D' } });
    expect((await client.listWorkflows({ kind: 'workflow' })).items.map((w) => w.id)).toContain(workflow.id);
  });

  it('B dead cancels D; C, independent of B, still runs', async () => {
    const { workflow, tasks } = await client.createWorkflow({
      name: 'broken', tasks: [step('a'), step('b', ['a'], 'fail'), step('c', ['a']), step('d', ['b', 'c'])],
    });
    await finished(workflow.id);
    const states = await Promise.all(tasks.map(async (t) => (await client.getTask(t.id)).state));
    expect(states).toEqual(['succeeded', 'dead', 'succeeded', 'cancelled']);
    expect(await client.getWorkflow(workflow.id)).toMatchObject({ state: 'failed', counts: { succeeded: 2, dead: 1, cancelled: 1 } });
    const retried = await client.retryWorkflow(workflow.id);
    expect(retried.counts).toMatchObject({ succeeded: 2, blocked: 1 });
  });

  it('queues a batch\'s completion task once every member finished, with the counts', async () => {
    const { workflow, tasks } = await client.createBatch({
      name: 'mail-out',
      tasks: [{ type: 'step', queue: 'wf', payload: { name: 'm1' } }, { type: 'fail', queue: 'wf', payload: { name: 'm2' } }],
      completion: { type: 'done', queue: 'wf', payload: { report: 'to ops' } },
    });
    expect(tasks.map((t) => t.ref)).toEqual(['0', '1', 'completion']);
    await finished(workflow.id);
    const done = ran.find((r) => r.type === 'done' && r.payload?.batch?.id === Number(workflow.id));
    expect(done!.payload).toEqual({ batch: { id: Number(workflow.id), total: 2, succeeded: 1, dead: 1, cancelled: 0 }, payload: { report: 'to ops' } });
    expect(await client.getBatch(workflow.id)).toMatchObject({ kind: 'batch', state: 'failed', completionTaskId: tasks[2]!.id });
  });

  it('holds a task submitted with dependsOn until its parent succeeded', async () => {
    const parent = await client.enqueue({ type: 'step', queue: 'wf', payload: { name: 'parent' } });
    const child = await client.enqueue({ type: 'step', queue: 'wf', payload: { name: 'child' }, dependsOn: [parent.id] });
    await until(async () => (await client.getTask(child.id)).state === 'succeeded');
    const seen = ran.find((r) => r.payload?.name === 'child');
    expect(seen!.parents).toEqual({ [parent.id]: { from: 'parent' } });
  });

  it('accepts a workflow of 10,000 tasks in one request', async () => {
    const fan = Array.from({ length: 10_000 }, (_, i) => ({ ref: `f${i}`, type: 'never', queue: 'wf-big', dependsOn: ['root'] }));
    const { workflow, tasks } = await client.createWorkflow({ name: 'big', tasks: [{ ref: 'root', type: 'never', queue: 'wf-big' }, ...fan] });
    expect(tasks).toHaveLength(10_001);
    expect(workflow.counts).toEqual({ queued: 1, blocked: 10_000 });
    expect((await client.cancelWorkflow(workflow.id)).counts).toEqual({ cancelled: 10_001 });
  });

  it('refuses at settle, with a problem, a result too large to hand to the children', async () => {
    const { tasks } = await client.createWorkflow({ name: 'large', tasks: [
      { ref: 'p', type: 'big', queue: 'wf-large' }, { ref: 'c', type: 'big', queue: 'wf-large', dependsOn: ['p'] },
    ] });
    const w = await client.registerWorker({ name: 'raw', queues: ['wf-large'] });
    const { tasks: [held] } = await client.claim(w.id, { max: 1 });
    expect(held!.id).toBe(tasks[0]!.id);
    const err = await client.reportResult(w.id, held!.id, { attempt: held!.attempt, status: 'succeeded', result: 'x'.repeat(70_000) })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskflowApiError);
    expect((err as TaskflowApiError).problem).toMatchObject({ status: 413, code: 'result_too_large' });
    expect((err as TaskflowApiError).problem!.detail).toMatch(new RegExp(`^/body/result the result of task ${held!.id} .* at most 65536 bytes`));
    expect((err as TaskflowApiError).problem!.errors).toEqual([{ field: '/body/result', message: expect.any(String) }]);
    expect((await client.getTask(held!.id)).state).toBe('running');
  });

  it('the SDK worker reports a result refused as too large as a failure: the task is dead, its child cancelled', async () => {
    const { workflow, tasks } = await client.createWorkflow({ name: 'huge', tasks: [step('h', undefined, 'huge'), step('after', ['h'])] });
    await finished(workflow.id);
    const [h, after] = await Promise.all(tasks.map((t) => client.getTask(t.id)));
    expect(h).toMatchObject({ state: 'dead', deadReason: 'unrecoverable' });
    expect(h!.lastError!.message).toMatch(/result_too_large|at most 65536 bytes/);
    expect(after!.state).toBe('cancelled');
  });
});
