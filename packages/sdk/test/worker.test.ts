/**
 * The SDK worker against a real service (PGlite): handlers and results, typed errors steering
 * retries, cancellation as an AbortSignal, lease renewal by heartbeats, graceful shutdown, and
 * recovery when the service forgets the worker. Waits are on events, never on sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RetryAfterError, TaskCancelledError, UnrecoverableError, Worker, WorkerShutdownError,
  type TaskContext, type TaskHandler, type TaskResult, type ClaimedTask,
} from '@taskflow/sdk';
import { expectEnqueued, runTaskOnce } from '@taskflow/sdk/testing';
import { startTestService, type TestService } from '@taskflow/server/test-support';

const quiet = { info() {}, warn() {}, error() {} };

/** Resolves with the signal's reason once it aborts. */
const aborted = (signal: AbortSignal) =>
  new Promise<unknown>((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }));

describe('SDK worker', () => {
  let tf: TestService;
  const workers: Worker[] = [];
  beforeAll(async () => {
    tf = await startTestService('pglite', { workerTtlMs: 1500, rescueIntervalMs: 100, maxPayloadBytes: 4096 });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop(0)));
    await tf.stop();
  });

  let queueSeq = 0;
  function worker(handlers: Record<string, TaskHandler>, opts: Partial<ConstructorParameters<typeof Worker>[0]> = {}) {
    const w = new Worker({
      url: tf.url, apiKey: tf.adminKey, queues: [opts.queues?.[0] ?? `q${queueSeq}`], handlers, concurrency: 4,
      waitMs: 5000, handleSignals: false, logger: quiet, ...opts,
    });
    workers.push(w);
    return record(w);
  }
  const nextQueue = () => `q${++queueSeq}`;

  /** Every start and report of every worker, by task id, recorded from the worker's creation. */
  const started = new Map<string, (() => void)[]>();
  const seenStart = new Set<string>();
  const reports = new Map<string, TaskResult>();
  const reportWaiters = new Map<string, ((r: TaskResult) => void)[]>();
  function record(w: Worker): Worker {
    w.on('taskStart', (task: ClaimedTask) => {
      seenStart.add(task.id);
      for (const f of started.get(task.id) ?? []) f();
    });
    w.on('taskDone', (task: ClaimedTask, report: TaskResult) => {
      reports.set(task.id, report);
      for (const f of reportWaiters.get(task.id) ?? []) f(report);
    });
    return w;
  }
  /** Resolves with the report of task `id` once a worker finished it (even if that was already). */
  function doneOf(_w: Worker, id: string): Promise<TaskResult> {
    const r = reports.get(id);
    if (r) return Promise.resolve(r);
    return new Promise((resolve) => reportWaiters.set(id, [...(reportWaiters.get(id) ?? []), resolve]));
  }
  function startOf(_w: Worker, id: string): Promise<void> {
    if (seenStart.has(id)) return Promise.resolve();
    return new Promise((resolve) => started.set(id, [...(started.get(id) ?? []), resolve]));
  }
  async function settled(id: string, states: string[] = ['succeeded', 'dead', 'cancelled', 'retrying', 'queued']) {
    for (;;) {
      const t = await tf.admin.getTask(id);
      if (states.includes(t.state)) return t;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('runs handlers and stores results and logs; bytes arrive as a Buffer', async () => {
    const queue = nextQueue();
    const w = worker({
      async greet(payload: { name: string }, ctx) {
        ctx.log(`greeting ${payload.name}`, 'info');
        return { hello: payload.name, attempt: ctx.attempt, created: ctx.createdAt.toISOString() };
      },
      async bytes(payload: Buffer, ctx) {
        return { length: payload.length, first: payload[0], contentType: ctx.contentType, created: ctx.createdAt.getTime() };
      },
    }, { queues: [queue] });
    await w.start();
    const a = await tf.admin.enqueue({ type: 'greet', queue, payload: { name: 'Ada' } });
    const b = await tf.admin.enqueue({ type: 'bytes', queue, payloadBase64: Buffer.from([7, 8, 9]).toString('base64'), contentType: 'application/x-raw' });
    await Promise.all([doneOf(w, a.id), doneOf(w, b.id)]);
    const ta = await settled(a.id, ['succeeded']);
    expect(ta.result).toEqual({ hello: 'Ada', attempt: 1, created: a.createdAt });
    expect(ta.attempts[0]!.logs).toEqual([expect.objectContaining({ level: 'info', message: 'greeting Ada' })]);
    expect((await settled(b.id, ['succeeded'])).result).toEqual({ length: 3, first: 7, contentType: 'application/x-raw', created: Date.parse(b.createdAt) });
  });

  it('steers retries with typed errors', async () => {
    const queue = nextQueue();
    const w = worker({
      async fatal() { throw new UnrecoverableError('bad input, never retry'); },
      async later() { throw new RetryAfterError(60_000, 'rate limited'); },
      async flaky() { throw new Error('transient'); },
      async weird() { throw 'a string'; },
      async notJson() { return { n: 10n }; },
    }, { queues: [queue] });
    await w.start();
    const ids = await Promise.all(['fatal', 'later', 'flaky', 'weird', 'notJson', 'unknown.type'].map(
      async (type) => (await tf.admin.enqueue({ type, queue, maxAttempts: 3, backoff: { type: 'fixed', delayMs: 30_000 } })).id,
    ));
    await Promise.all(ids.map((id) => doneOf(w, id)));
    const [fatal, later, flaky, weird, notJson, unknown] = await Promise.all(ids.map((id) => settled(id, ['dead', 'retrying'])));
    expect(fatal).toMatchObject({ state: 'dead', deadReason: 'unrecoverable', lastError: { message: 'bad input, never retry' } });
    expect(later!.state).toBe('retrying');
    expect(new Date(later!.runAt).getTime() - new Date(later!.attempts[0]!.finishedAt!).getTime()).toBe(60_000);
    expect(flaky).toMatchObject({ state: 'retrying', lastError: { message: 'transient' } });
    expect(flaky!.lastError!.stack).toContain('Error: transient');
    expect(weird!.lastError!.message).toBe('a string');
    expect(notJson).toMatchObject({ state: 'dead', deadReason: 'unrecoverable' });
    expect(unknown).toMatchObject({ state: 'dead', lastError: { message: expect.stringContaining('no handler for task type "unknown.type"') } });
  });

  it('aborts the handler\'s signal when its running task is cancelled', async () => {
    const queue = nextQueue();
    let reason: unknown;
    const w = worker({
      async wait(_p, ctx) {
        reason = await aborted(ctx.signal);
        throw reason;
      },
    }, { queues: [queue] });
    await w.start();
    const task = await tf.admin.enqueue({ type: 'wait', queue });
    await startOf(w, task.id);
    expect((await tf.admin.cancelTask(task.id)).cancelRequested).toBe(true);
    await doneOf(w, task.id); // the next heartbeat tells the worker; the handler gives up
    expect(reason).toBeInstanceOf(TaskCancelledError);
    expect((await settled(task.id, ['cancelled'])).attempts.map((a) => a.outcome)).toEqual(['cancelled']);
  });

  it('gives a handler that reads its signal only after the cancellation an aborted signal', async () => {
    // The signal is made on first read: a cancellation that came before must still show.
    const queue = nextQueue();
    let lateCtx!: TaskContext;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let probeReason: unknown;
    const w = worker({
      async late(_p, ctx) {
        lateCtx = ctx;
        await gate;
      },
      async probe(_p, ctx) {
        probeReason = await aborted(ctx.signal);
      },
    }, { queues: [queue] });
    await w.start();
    const late = await tf.admin.enqueue({ type: 'late', queue });
    const probe = await tf.admin.enqueue({ type: 'probe', queue });
    await Promise.all([startOf(w, late.id), startOf(w, probe.id)]);
    await tf.admin.cancelTask(late.id);
    await tf.admin.cancelTask(probe.id);
    // A heartbeat that cancels the probe lists the late task too (its cancellation came first).
    await doneOf(w, probe.id);
    expect(probeReason).toBeInstanceOf(TaskCancelledError);
    expect(lateCtx.signal.aborted).toBe(true);
    expect(lateCtx.signal.reason).toBeInstanceOf(TaskCancelledError);
    expect(lateCtx.signal).toBe(lateCtx.signal);
    expect(lateCtx.createdAt.getTime()).toBe(new Date(late.createdAt).getTime());
    release();
    await doneOf(w, late.id);
  });

  it('keeps a long task alive past its lease by heartbeats', async () => {
    const queue = nextQueue();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const w = worker({ async long() { await gate; return 'finished'; } }, { queues: [queue] });
    await w.start();
    const task = await tf.admin.enqueue({ type: 'long', queue, timeoutMs: 500 });
    await startOf(w, task.id);
    // Hold it until its lease has been renewed at least twice (heartbeats every ttl/3 = 500 ms).
    const claimedLease = new Date((await tf.admin.getTask(task.id)).leaseExpiresAt!).getTime();
    for (;;) {
      const t = await tf.admin.getTask(task.id);
      expect(t.state).toBe('running');
      if (new Date(t.leaseExpiresAt!).getTime() > claimedLease + 600) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    release();
    await doneOf(w, task.id);
    const done = await settled(task.id, ['succeeded']);
    expect(done).toMatchObject({ state: 'succeeded', result: 'finished', attempt: 1 });
  });

  it('stops gracefully: in-flight tasks finish and are reported, then it deregisters', async () => {
    const queue = nextQueue();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const w = worker({ async slow() { await gate; return 'ok'; } }, { queues: [queue] });
    await w.start();
    const task = await tf.admin.enqueue({ type: 'slow', queue });
    await startOf(w, task.id);
    const stopping = w.stop(10_000);
    setImmediate(release);
    await stopping;
    expect((await settled(task.id, ['succeeded'])).result).toBe('ok');
    expect((await tf.admin.getWorker(w.workerId!)).state).toBe('stopped');
  });

  it('past the grace period, aborts handlers and hands their tasks back at once', async () => {
    const queue = nextQueue();
    let reason: unknown;
    const w = worker({
      async stuck(_p, ctx) {
        reason = await aborted(ctx.signal);
        return 'too late';
      },
    }, { queues: [queue] });
    await w.start();
    const task = await tf.admin.enqueue({ type: 'stuck', queue, backoff: { type: 'fixed', delayMs: 0 } });
    await startOf(w, task.id);
    await w.stop(50);
    expect(reason).toBeInstanceOf(WorkerShutdownError);
    const t = await settled(task.id, ['queued']);
    expect(t.attempts.map((a) => a.outcome)).toEqual(['abandoned']);
    // It ran: the worker lists it as started when it deregisters, so the attempt counts.
    expect(t.attempt - t.attemptBase).toBe(1);
  });

  it('registers again when the service no longer knows it, and goes on working', async () => {
    const queue = nextQueue();
    const w = worker({ async ok() { return 1; } }, { queues: [queue], waitMs: 200 });
    await w.start();
    const first = w.workerId!;
    const reRegistered = new Promise<string>((resolve) => w.once('registered', resolve));
    await tf.admin.deregisterWorker(first);
    const second = await reRegistered;
    expect(second).not.toBe(first);
    const task = await tf.admin.enqueue({ type: 'ok', queue });
    await doneOf(w, task.id);
    expect((await settled(task.id, ['succeeded'])).workerId).toBe(second);
  });

  it('turns a result the service refuses (over the size limit) into a failure instead of losing it', async () => {
    const queue = nextQueue();
    const w = worker({ async big() { return 'x'.repeat(10_000); }, async small() { return 'ok'; } }, { queues: [queue] });
    await w.start();
    const [big, small] = await Promise.all([tf.admin.enqueue({ type: 'big', queue }), tf.admin.enqueue({ type: 'small', queue })]);
    const t = await settled(big.id, ['dead']);
    expect(t).toMatchObject({ deadReason: 'unrecoverable', lastError: { message: expect.stringContaining('the service refused this result') } });
    expect((await settled(small.id, ['succeeded'])).result).toBe('ok');
  });

  it('reports plain successes compactly beside full results in one batch, a refused one among them mapped back to its task', async () => {
    const queue = nextQueue();
    // Every handler waits until all six have started, so their results leave in one batch:
    // three plain successes (sent as "id:attempt" pairs), a value, a log, and a result over
    // the size limit (refused by its position among the full results only).
    let startedCount = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const arrive = async () => {
      if (++startedCount === 6) release();
      await gate;
    };
    const w = worker({
      async nothing() { await arrive(); },
      async nil() { await arrive(); return null; },
      async value() { await arrive(); return 7; },
      async logs(_p, ctx) { await arrive(); ctx.log('only a log'); },
      async big() { await arrive(); return 'x'.repeat(10_000); },
    }, { queues: [queue], concurrency: 6 });
    const types = ['nothing', 'value', 'big', 'nil', 'logs', 'nothing'];
    const tasks = (await tf.admin.enqueueMany(types.map((type) => ({ type, queue })))).items.map((i) => i.task);
    await w.start();
    const done = await Promise.all(tasks.map((t, i) => settled(t.id, [types[i] === 'big' ? 'dead' : 'succeeded'])));
    expect(done.map((t) => t.state)).toEqual(['succeeded', 'succeeded', 'dead', 'succeeded', 'succeeded', 'succeeded']);
    expect(done.map((t) => t.result)).toEqual([null, 7, null, null, null, null]);
    expect(done[2]).toMatchObject({ deadReason: 'unrecoverable', lastError: { message: expect.stringContaining('the service refused this result') } });
    expect(done[4]!.attempts[0]!.logs).toEqual([expect.objectContaining({ message: 'only a log' })]);
    expect(done.filter((_, i) => i !== 4 && i !== 2).map((t) => t.attempts[0]!.logs)).toEqual([null, null, null, null]);
  });

  it('prefetches beyond its slots, runs no more than its concurrency, and hands the buffer back on stop', async () => {
    const queue = nextQueue();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let runningNow = 0;
    let most = 0;
    const w = worker({
      async slow() {
        most = Math.max(most, ++runningNow);
        await gate;
        runningNow--;
        return 'ok';
      },
    }, { queues: [queue], concurrency: 2, prefetch: 4 });
    await w.start();
    const ids = (await tf.admin.enqueueMany(Array.from({ length: 8 }, () => ({ type: 'slow', queue, backoff: { type: 'fixed' as const, delayMs: 0 } })))).items.map((i) => i.task.id);
    // Six held by the service's count, and all six in the worker's hands, so that the two
    // running and the four buffered are known (a claim's answer still on its way when stop()
    // aborts the claim would be refunded at deregistration instead, stopClaim.test.ts).
    while ((await tf.admin.getWorker(w.workerId!)).running < 6 || w.running < 2 || w.prefetched < 4) await new Promise((r) => setTimeout(r, 20));
    expect(w.running).toBe(2);
    const stopping = w.stop(10_000);
    setImmediate(release);
    await stopping;
    expect(most).toBe(2);
    const tasks = await Promise.all(ids.map((id) => tf.admin.getTask(id)));
    const done = tasks.filter((t) => t.state === 'succeeded');
    expect(done).toHaveLength(2);
    const handedBack = tasks.filter((t) => t.attempts.some((a) => a.outcome === 'abandoned'));
    expect(handedBack).toHaveLength(4);
    expect(handedBack.every((t) => t.state === 'queued')).toBe(true);
    // Released unstarted: the attempt does not count against the budget.
    expect(handedBack.every((t) => t.attempt - t.attemptBase === 0)).toBe(true);
    expect(tasks.filter((t) => t.state === 'queued')).toHaveLength(6);
  });

  it('ships test helpers: runTaskOnce and expectEnqueued', async () => {
    expect(await runTaskOnce(async (p: { n: number }, ctx) => { ctx.log('x'); return p.n * 2; }, { n: 21 })).toEqual({ status: 'succeeded', result: 42, logs: ['x'] });
    expect(await runTaskOnce(async () => { throw new RetryAfterError(5000); }, null)).toMatchObject({ status: 'failed', retryable: true, retryAfterMs: 5000 });
    expect(await runTaskOnce(async () => { throw new UnrecoverableError('no'); }, null)).toMatchObject({ status: 'failed', retryable: false, error: { message: 'no' } });
    const queue = nextQueue();
    await tf.admin.enqueue({ type: 'email.send', queue, payload: { to: 'ada@example.com', subject: 'hi' } });
    const found = await expectEnqueued(tf.admin, { type: 'email.send', queue, payload: { to: 'ada@example.com' } });
    expect(found.queue).toBe(queue);
    await expect(expectEnqueued(tf.admin, { type: 'email.send', queue, payload: { to: 'bob@example.com' } })).rejects.toThrow(/none matching/);
  });
});
