/**
 * The SDK worker keeps the results it could not report, with their fencing tokens, and
 * reports them when the service takes them again, against real services: one stopped and
 * started again on the same port and database (PostgreSQL), and one behind a real HTTP proxy
 * that answers its claims and results `503 database_unavailable` for longer than the tasks'
 * leases (PGlite). Nothing runs twice: every task succeeds with its first attempt. A worker
 * stopped while the service is away waits for it a bounded time, then stops, saying how many
 * results it could not report.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Worker, type ClaimedTask, type TaskHandler, type WorkerLogger } from '@taskflow/sdk';
import { startProxy, startTestService, type ProxiedRequest, type TestProxy, type TestService } from '@taskflow/server/test-support';

/** A logger that keeps every line, and resolves `next(re)` at the first line matching `re` from now on. */
function recordingLogger() {
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  const add = (level: string) => (obj: object, msg?: string) => {
    const line = `${level} ${msg ?? ''} ${JSON.stringify(obj)}`;
    lines.push(line);
    for (const w of waiters.filter((x) => x.re.test(line))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(line);
    }
  };
  const logger: WorkerLogger = { info: add('info'), warn: add('warn'), error: add('error') };
  return { logger, lines, next: (re: RegExp) => new Promise<string>((resolve) => waiters.push({ re, resolve })) };
}

/** Handlers that wait until `release()`, counting how often each task ran. */
function gated() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const runs = new Map<string, number>();
  const handlers: Record<string, TaskHandler> = {
    async slow(_payload, ctx) {
      runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1);
      await gate;
      return { done: ctx.id };
    },
  };
  return { handlers, runs, release: () => release() };
}

/** Resolves once the worker has finished (run, not necessarily reported) every task of `ids`. */
function finished(w: Worker, ids: string[]): Promise<void> {
  const left = new Set(ids);
  return new Promise((resolve) => {
    const on = (task: ClaimedTask) => {
      left.delete(task.id);
      if (left.size === 0) {
        w.off('taskDone', on);
        resolve();
      }
    };
    w.on('taskDone', on);
  });
}
function started(w: Worker, n: number): Promise<void> {
  let seen = 0;
  return new Promise((resolve) => {
    const on = () => {
      if (++seen < n) return;
      w.off('taskStart', on);
      resolve();
    };
    w.on('taskStart', on);
  });
}

describe('SDK worker across a restart of the service (PostgreSQL)', () => {
  let tf: TestService;
  const workers: Worker[] = [];
  beforeAll(async () => {
    // The rescuer's first pass after a start waits one worker TTL, as in production.
    tf = await startTestService('postgres', { workerTtlMs: 3000, rescueIntervalMs: 100, rescueStartDelayMs: 3000 });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop(0)));
    await tf?.stop();
  });

  function worker(queue: string, handlers: Record<string, TaskHandler>, logger: WorkerLogger, opts: Partial<ConstructorParameters<typeof Worker>[0]> = {}) {
    const w = new Worker({ url: tf.url, apiKey: tf.adminKey, queues: [queue], handlers, concurrency: 4, waitMs: 1000, handleSignals: false, logger, ...opts });
    workers.push(w);
    return w;
  }

  it('keeps the results of tasks that finish while the service is down, and reports them once it is back', async () => {
    const queue = 'outage.restart';
    const { handlers, runs, release } = gated();
    const log = recordingLogger();
    const w = worker(queue, handlers, log.logger);
    await w.start();
    const id = w.workerId;
    const ids = (await tf.admin.enqueueMany(Array.from({ length: 4 }, () => ({ type: 'slow', queue })))).items.map((i) => i.task.id);
    await started(w, 4);
    await tf.restart(async () => {
      const done = finished(w, ids);
      const kept = log.next(/claim failed|reporting results failed/);
      release();
      await done;
      await kept; // the worker met the outage with its results in hand
    });
    for (const taskId of ids) {
      for (;;) {
        const t = await tf.admin.getTask(taskId);
        if (t.state === 'succeeded') {
          expect(t).toMatchObject({ attempt: 1, result: { done: taskId }, workerId: id });
          expect(t.attempts.filter((a) => a.outcome !== 'succeeded')).toEqual([]);
          break;
        }
        expect(t.state).toBe('running');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    expect([...runs.values()]).toEqual([1, 1, 1, 1]);
    expect(w.workerId).toBe(id);
    await w.stop();
  });

  it('stopped while the service is down, waits for it a bounded time, then stops and says how many results it could not report', async () => {
    const queue = 'outage.stop';
    const { handlers, release } = gated();
    const log = recordingLogger();
    const w = worker(queue, handlers, log.logger, { shutdownReportMs: 300 });
    await w.start();
    const ids = (await tf.admin.enqueueMany(Array.from({ length: 3 }, () => ({ type: 'slow', queue })))).items.map((i) => i.task.id);
    await started(w, 3);
    await tf.restart(async () => {
      const done = finished(w, ids);
      release();
      await done;
      await w.stop(0);
    });
    expect(log.lines.filter((l) => l.startsWith('error'))).toEqual([
      expect.stringMatching(/^error 3 results not reported: the service did not take them in time and will run those tasks again \{"count":3/),
    ]);
    // Never reported: the service still counts them running, until their leases run out.
    expect((await Promise.all(ids.map((t) => tf.admin.getTask(t)))).map((t) => t.state)).toEqual(['running', 'running', 'running']);
  });
});

describe('SDK worker while the service answers 503 (PGlite, behind a proxy)', () => {
  let tf: TestService;
  let proxy: TestProxy;
  const workers: Worker[] = [];
  beforeAll(async () => {
    tf = await startTestService('pglite', { workerTtlMs: 1500, rescueIntervalMs: 100 });
    proxy = await startProxy(tf.url);
  });
  afterEach(() => {
    proxy.hooks = {};
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop(0)));
    await proxy?.close();
    await tf?.stop();
  });

  it('keeps the results and their tasks\' leases past the lease length, and reports them when it may: nothing runs twice', async () => {
    const queue = 'outage.503';
    const { handlers, runs, release } = gated();
    const log = recordingLogger();
    const w = new Worker({ url: proxy.url, apiKey: tf.adminKey, queues: [queue], handlers, concurrency: 3, waitMs: 500, handleSignals: false, logger: log.logger });
    workers.push(w);
    await w.start();
    // Leases of 1.5 s (three heartbeats): without renewal they run out while the results wait,
    // and the rescuer ends the attempts.
    const ids = (await tf.admin.enqueueMany(Array.from({ length: 3 }, () => ({ type: 'slow', queue, timeoutMs: 1500 })))).items.map((i) => i.task.id);
    await started(w, 3);
    let refusing = true;
    const refused = (req: ProxiedRequest) => refusing && /\/(claim|results)$/.test(req.path);
    proxy.hooks = {
      onRequest: (req) => refused(req)
        ? {
            kind: 'answer', status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': '0' },
            body: JSON.stringify({ type: 'urn:taskflow:problem:database_unavailable', title: 'Database unavailable', status: 503, detail: 'from the test proxy', code: 'database_unavailable' }),
          }
        : { kind: 'forward' },
    };
    const done = finished(w, ids);
    const kept = log.next(/claim failed|reporting results failed/);
    release();
    await done;
    await kept;
    const leasesAtFinish = await Promise.all(ids.map(async (t) => Date.parse((await tf.admin.getTask(t)).leaseExpiresAt!)));
    // Past every lease the claims gave (plus a few rescue passes), the tasks are still running: heartbeats renewed them.
    const deadline = Math.max(...leasesAtFinish) + 500;
    while (Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await Promise.all(ids.map((t) => tf.admin.getTask(t)))).map((t) => t.state)).toEqual(['running', 'running', 'running']);
    refusing = false;
    for (const taskId of ids) {
      for (;;) {
        const t = await tf.admin.getTask(taskId);
        if (t.state !== 'running') {
          expect(t).toMatchObject({ state: 'succeeded', attempt: 1, result: { done: taskId } });
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    expect([...runs.values()]).toEqual([1, 1, 1]);
    expect(proxy.log.filter((e) => e.outcome === 'answered').length).toBeGreaterThan(0);
    await w.stop();
  });
});
