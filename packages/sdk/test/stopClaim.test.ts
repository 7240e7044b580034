/**
 * stop() while a claim's answer is on its way: the service has leased the tasks, the worker
 * aborts the request and never sees them. Those tasks must go back with their attempts
 * refunded, not end `abandoned` with an attempt used for a run that never happened.
 *
 * The race is made exact on the client's side, with nothing of the service touched: an undici
 * interceptor on the worker's own dispatcher calls stop() once the whole answer of a claim that
 * leased tasks has arrived, before the worker reads it. The service has then committed the
 * claim and written its answer in full (so it sees no hang-up to hand the tasks back on); the
 * worker's read is aborted, as when stop() comes a moment before the bytes.
 *
 * While handlers finish in the grace period, the stopping worker's heartbeats renew such a task
 * (it sends no `running` list then), so its lease does not run out before the deregistration.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, type Dispatcher } from 'undici';
import { TaskflowClient, Worker } from '@taskflow/sdk';
import { startTestService, type TestService } from '@taskflow/server/test-support';

const quiet = { info() {}, warn() {}, error() {} };

/**
 * A dispatcher that runs `onAnswer` when the answer of a claim that leased tasks has fully
 * arrived, before passing its end on to the caller; `onSent` once a claim request has left.
 */
function stopAtClaimAnswer(onAnswer: () => void, onSent: () => void): { dispatcher: Dispatcher; close: () => Promise<void> } {
  const agent = new Agent();
  const dispatcher = agent.compose((dispatch) => (opts, handler) => {
    if (!opts.path.endsWith('/claim')) return dispatch(opts, handler);
    let body = '';
    return dispatch(opts, {
      onRequestStart: (c, ctx) => handler.onRequestStart?.(c, ctx),
      onRequestUpgrade: (c, status, headers, socket) => handler.onRequestUpgrade?.(c, status, headers, socket),
      onRequestSent: () => {
        handler.onRequestSent?.();
        onSent();
      },
      onResponseStart: (c, status, headers, message) => handler.onResponseStart?.(c, status, headers, message),
      onResponseData: (c, chunk) => {
        body += chunk.toString();
        handler.onResponseData?.(c, chunk);
      },
      onResponseEnd: (c, trailers) => {
        if (body.startsWith('{"tasks":[{')) onAnswer(); // the service's claim answer, with tasks
        handler.onResponseEnd?.(c, trailers);
      },
      onResponseError: (c, err) => handler.onResponseError?.(c, err),
    });
  });
  return { dispatcher, close: () => agent.close() };
}

describe('SDK worker: stop() while a claim answer is on its way', () => {
  let tf: TestService;
  beforeAll(async () => {
    // A short TTL starts the rescuer soon (its first pass waits one TTL), and passes come often:
    // a lease left to run out is taken at once.
    tf = await startTestService('pglite', { workerTtlMs: 1500, rescueIntervalMs: 100 });
  });
  afterAll(async () => {
    await tf.stop();
  });

  /**
   * Starts a worker on `queue` whose first claim answer with tasks stops it before it reads
   * them; `onClaimSent` runs once its first claim has left. Resolves once it has stopped, with
   * the ids of the tasks it started.
   */
  async function stoppedAtAnswer(queue: string, opts: { waitMs: number; onClaimSent?: () => Promise<unknown> }): Promise<Set<string>> {
    let worker!: Worker;
    let stopping: Promise<void> | undefined;
    let sent!: () => void;
    const claimSent = new Promise<void>((resolve) => (sent = resolve));
    const net = stopAtClaimAnswer(() => {
      stopping ??= worker.stop(10_000);
    }, () => sent());
    const client = new TaskflowClient({ url: tf.url, apiKey: tf.adminKey, dispatcher: net.dispatcher });
    const started = new Set<string>();
    worker = new Worker({
      client, queues: [queue], concurrency: 2, prefetch: 0, pipeline: 1, waitMs: opts.waitMs,
      handleSignals: false, logger: quiet, handlers: { t: async () => 'ran' },
    });
    worker.on('taskStart', (task) => started.add(task.id));
    const stopped = new Promise<void>((resolve) => worker.once('stopped', resolve));
    await worker.start();
    if (opts.onClaimSent) {
      await claimSent;
      await opts.onClaimSent();
    }
    await stopped;
    await stopping;
    await client.close();
    await net.close();
    return started;
  }

  /** The tasks the stopped worker had leased: each queued again, nothing of its budget used. */
  async function expectRefunded(ids: string[], started: Set<string>) {
    const tasks = await Promise.all(ids.map((id) => tf.admin.getTask(id)));
    const leased = tasks.filter((t) => t.attempt > 0);
    // The claim answered with tasks (the worker asked for its two slots), and none of them ran.
    expect(leased).toHaveLength(2);
    expect(started.size).toBe(0);
    for (const t of leased) {
      expect(t).toMatchObject({ state: 'queued', workerId: null, attempt: 1, attemptBase: 1, leaseLosses: 0 });
      expect(t.attempts.map((a) => [a.outcome, a.error?.message])).toEqual([
        ['abandoned', 'handed back without running (the worker deregistered without having started it)'],
      ]);
    }
    // No task anywhere with an attempt used and no run.
    expect(tasks.every((t) => t.attempt - t.attemptBase === 0 && t.state === 'queued')).toBe(true);
  }

  it('on a backlog: the answer leased tasks the worker never saw, and they keep their attempts', async () => {
    const queue = 'stop.backlog';
    const ids = (await tf.admin.enqueueMany(Array.from({ length: 5 }, () => ({ type: 't', queue, maxAttempts: 1 })))).items.map((i) => i.task.id);
    const started = await stoppedAtAnswer(queue, { waitMs: 0 });
    await expectRefunded(ids, started);
    // Each task has its one attempt still to make: another worker runs them all.
    const next = new Worker({ url: tf.url, apiKey: tf.adminKey, queues: [queue], handleSignals: false, logger: quiet, handlers: { t: async () => 'ran' } });
    const done = new Set<string>();
    const all = new Promise<void>((resolve) => next.on('taskDone', (task, report) => {
      if (report.status === 'succeeded') done.add(task.id);
      if (done.size === ids.length) resolve();
    }));
    await next.start();
    await all;
    await next.stop();
  });

  it('long-polling: tasks that arrive while the claim waits, answered as it stops, keep their attempts', async () => {
    // Enqueued once the claim has left the worker, on an empty queue: the claim is most likely
    // waiting for work by then (if the tasks came first it answers at once, the same race).
    const queue = 'stop.waiting';
    let ids: string[] = [];
    const started = await stoppedAtAnswer(queue, {
      waitMs: 30_000,
      onClaimSent: async () => {
        ids = (await tf.admin.enqueueMany(Array.from({ length: 3 }, () => ({ type: 't', queue, maxAttempts: 1 })))).items.map((i) => i.task.id);
      },
    });
    await expectRefunded(ids, started);
  });

  it('while a handler finishes in the grace period, the aborted answer\'s task is renewed until the deregistration refunds it', async () => {
    const queue = 'stop.grace';
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let slowRunning!: () => void;
    const running = new Promise<void>((resolve) => (slowRunning = resolve));
    let armed = false;
    let stopping: Promise<void> | undefined;
    let answered!: () => void;
    const cutOff = new Promise<void>((resolve) => (answered = resolve));
    let worker!: Worker;
    const net = stopAtClaimAnswer(() => {
      if (!armed) return;
      stopping ??= worker.stop(30_000);
      answered();
    }, () => undefined);
    const client = new TaskflowClient({ url: tf.url, apiKey: tf.adminKey, dispatcher: net.dispatcher });
    const started = new Set<string>();
    worker = new Worker({
      client, queues: [queue], concurrency: 2, prefetch: 0, pipeline: 1, waitMs: 30_000, handleSignals: false, logger: quiet,
      handlers: {
        async slow() {
          slowRunning();
          await gate;
          return 'done';
        },
        t: async () => 'ran',
      },
    });
    worker.on('taskStart', (task) => started.add(task.id));
    const slow = await tf.admin.enqueue({ type: 'slow', queue, timeoutMs: 1000 });
    await worker.start();
    await running;
    // One slot is free: the worker's next claim waits for work. The task enqueued now comes in
    // its answer, which stop() cuts off; the slow handler keeps the worker in its grace period.
    armed = true;
    const leaked = await tf.admin.enqueue({ type: 't', queue, maxAttempts: 1, timeoutMs: 1000 });
    try {
      await cutOff;
      const first = await tf.admin.getTask(leaked.id);
      expect(first).toMatchObject({ state: 'running', workerId: worker.workerId });
      // Its lease is renewed by the stopping worker's heartbeats, or it runs out and the rescuer
      // takes it (an attempt used): wait for either.
      let now = first;
      while (now.state === 'running' && now.leaseExpiresAt! <= first.leaseExpiresAt!) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        now = await tf.admin.getTask(leaked.id);
      }
      expect(now.state).toBe('running');
    } finally {
      release();
      await stopping;
      await client.close();
      await net.close();
    }
    expect(await tf.admin.getTask(slow.id)).toMatchObject({ state: 'succeeded', result: 'done' });
    expect(started.has(leaked.id)).toBe(false);
    expect(await tf.admin.getTask(leaked.id)).toMatchObject({ state: 'queued', attempt: 1, attemptBase: 1, leaseLosses: 0 });
  });
});
