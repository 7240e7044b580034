/**
 * The protocol as another language reads it: examples/python/worker.py, written from
 * docs/protocol.md alone (Python's standard library, no SDK), runs as a child process against
 * a live service, behind a real HTTP proxy that makes it meet what the protocol says a worker
 * must handle: `409 worker_lost` (its heartbeats hung up until the service marks it lost),
 * `409 worker_stopped` (deregistered behind its back), and `503 database_unavailable` with
 * `Retry-After` on the claims carrying its results. Each is checked from the service's side:
 * the same or a new registration, every task done once with the expected result, nothing
 * lost. SIGTERM deregisters it. A machine without python3 fails this test, as it would fail
 * without PostgreSQL: nothing is skipped.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskflowClient } from '@taskflow/sdk';
import { startProxy, startTestService, type ProxiedRequest, type TestProxy, type TestService } from '@taskflow/server/test-support';
import { killAll, run, type Proc } from './support/processes.ts';

const WORKER = fileURLToPath(new URL('../examples/python/worker.py', import.meta.url));
const QUEUE = 'python';

/** python3, or a failure that says how to get it. */
function python3(): string {
  const probe = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(`this test runs examples/python/worker.py and needs python3 (3.8 or later) on the PATH: ${probe.error?.message ?? probe.stderr}. Install it (apt-get install python3).`);
  }
  return 'python3';
}

interface Event {
  e: string;
  worker?: string;
  id?: string;
  attempt?: number;
  code?: string;
  status?: string;
  unreported?: number;
  released?: number | null;
}

describe('a worker written from docs/protocol.md alone (Python)', () => {
  let tf: TestService;
  let proxy: TestProxy;
  let producer: TaskflowClient;
  let worker: Proc;
  const events: Event[] = [];
  const waiters: { match: (e: Event) => boolean; resolve: (e: Event) => void }[] = [];
  /** The first event from now on that `match` accepts. */
  const next = (match: (e: Event) => boolean) => new Promise<Event>((resolve) => waiters.push({ match, resolve }));

  beforeAll(async () => {
    const py = python3();
    tf = await startTestService('pglite', { workerTtlMs: 1500, rescueIntervalMs: 100 });
    proxy = await startProxy(tf.url);
    producer = await tf.clientWith(['producer']);
    const key = (await tf.admin.createApiKey({ name: 'python worker', scopes: ['worker'] })).secret;
    const registered = next((e) => e.e === 'registered');
    worker = run(py, [WORKER], { TASKFLOW_URL: proxy.url, TASKFLOW_API_KEY: key, TASKFLOW_QUEUE: QUEUE, TASKFLOW_WAIT_MS: '500', PYTHONUNBUFFERED: '1' });
    worker.onLine((line) => {
      const e = JSON.parse(line) as Event;
      events.push(e);
      for (const w of waiters.filter((x) => x.match(e))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    });
    await Promise.race([registered, worker.exited.then(() => { throw new Error(`the Python worker exited: ${worker.stderr()}`); })]);
  });
  afterAll(async () => {
    await killAll();
    await producer?.close();
    await proxy?.close();
    await tf?.stop();
  });

  const workerId = () => events.filter((e) => e.e === 'registered').at(-1)!.worker!;
  const routeOf = (req: ProxiedRequest) => /^\/api\/v1\/workers\/([0-9a-f-]{36})\/(claim|heartbeat|results)$/.exec(req.path);
  const codeOf = (body: Buffer) => {
    try {
      return (JSON.parse(body.toString()) as { code?: string }).code;
    } catch {
      return undefined;
    }
  };

  /** Submits text.upper tasks and waits until each is finished; returns them. */
  async function drainSome(texts: string[]) {
    const ids = (await producer.enqueueMany(texts.map((text) => ({ type: 'text.upper', queue: QUEUE, payload: { text } })))).items.map((i) => i.task.id);
    const tasks = [];
    for (const id of ids) {
      for (;;) {
        const t = await producer.getTask(id);
        if (t.state === 'succeeded' || t.state === 'dead') {
          tasks.push(t);
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return tasks;
  }

  it('runs tasks, its results riding on its claims', async () => {
    const tasks = await drainSome(['hello', 'world', 'taskflow']);
    expect(tasks.map((t) => [t.state, t.result, t.attempt, t.workerId])).toEqual([
      ['succeeded', { upper: 'HELLO' }, 1, workerId()], ['succeeded', { upper: 'WORLD' }, 1, workerId()], ['succeeded', { upper: 'TASKFLOW' }, 1, workerId()],
    ]);
    const bad = (await producer.enqueue({ type: 'text.upper', queue: QUEUE, payload: { txt: 'oops' } })).id;
    for (;;) {
      const t = await producer.getTask(bad);
      if (t.state === 'dead') {
        expect(t).toMatchObject({ deadReason: 'unrecoverable', lastError: { message: 'payload.text is missing' } });
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(proxy.log.some((e) => routeOf(e.req)?.[2] === 'claim' && JSON.parse(e.req.body.toString()).results?.length > 0)).toBe(true);
  });

  it('meets 409 worker_lost, heartbeats, and goes on under the same id', async () => {
    const id = workerId();
    // Its heartbeats are hung up until the service answers one of its claims 409 worker_lost.
    let blocked = true;
    let lostAnswers = 0;
    proxy.hooks = {
      onRequest: (req) => (blocked && routeOf(req)?.[2] === 'heartbeat' ? { kind: 'hangUp' } : { kind: 'forward' }),
      onAnswer: (req, answer) => {
        if (routeOf(req)?.[2] === 'claim' && codeOf(answer.body) === 'worker_lost') {
          lostAnswers++;
          blocked = false;
        }
        return 'pass';
      },
    };
    expect(await next((e) => e.e === 'recovered')).toMatchObject({ code: 'worker_lost', worker: id });
    proxy.hooks = {};
    expect(lostAnswers).toBeGreaterThan(0);
    expect((await tf.admin.getWorker(id)).state).toBe('active');
    const tasks = await drainSome(['after', 'lost']);
    expect(tasks.map((t) => [t.state, t.result, t.workerId])).toEqual([['succeeded', { upper: 'AFTER' }, id], ['succeeded', { upper: 'LOST' }, id]]);
  });

  it('meets 409 worker_stopped when deregistered behind its back, and registers again', async () => {
    const old = workerId();
    const registered = next((e) => e.e === 'registered');
    const recovered = next((e) => e.e === 'recovered');
    expect(await tf.admin.deregisterWorker(old)).toEqual({ released: 0 });
    const fresh = (await registered).worker!;
    expect(await recovered).toMatchObject({ code: 'worker_stopped', worker: fresh });
    expect(fresh).not.toBe(old);
    expect((await tf.admin.getWorker(old)).state).toBe('stopped');
    expect((await tf.admin.getWorker(fresh)).state).toBe('active');
    const tasks = await drainSome(['new', 'id']);
    expect(tasks.map((t) => [t.state, t.result, t.workerId])).toEqual([['succeeded', { upper: 'NEW' }, fresh], ['succeeded', { upper: 'ID' }, fresh]]);
  });

  it('keeps its results through 503 database_unavailable, waits out Retry-After, and reports them: nothing lost, nothing run twice', async () => {
    // The next two claims that carry results are refused as if the database were down.
    let refusals = 2;
    proxy.hooks = {
      onRequest: (req) => {
        if (refusals > 0 && routeOf(req)?.[2] === 'claim' && JSON.parse(req.body.toString()).results?.length > 0) {
          refusals--;
          return {
            kind: 'answer', status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': '1' },
            body: JSON.stringify({ type: 'urn:taskflow:problem:database_unavailable', title: 'Database unavailable', status: 503, detail: 'from the test proxy', code: 'database_unavailable' }),
          };
        }
        return { kind: 'forward' };
      },
    };
    const from = proxy.log.length;
    const tasks = await drainSome(['kept', 'through', '503']);
    expect(tasks.map((t) => [t.state, t.result, t.attempt])).toEqual([
      ['succeeded', { upper: 'KEPT' }, 1], ['succeeded', { upper: 'THROUGH' }, 1], ['succeeded', { upper: '503' }, 1],
    ]);
    const claims = proxy.log.slice(from).filter((e) => routeOf(e.req)?.[2] === 'claim' && JSON.parse(e.req.body.toString()).results?.length > 0);
    expect(claims.slice(0, 3).map((e) => e.outcome)).toEqual(['answered', 'answered', 'forwarded']);
    expect(claims[1]!.at - claims[0]!.at).toBeGreaterThanOrEqual(1000); // Retry-After: 1
    // The results refused went again, each with its attempt, with the next claim.
    const sent = claims.slice(0, 3).map((e) => JSON.parse(e.req.body.toString()).results.map((r: { id: string; attempt: number }) => `${r.id}:${r.attempt}`));
    expect(sent[0]!.length).toBeGreaterThan(0);
    expect(sent[1]).toEqual(expect.arrayContaining(sent[0]!));
    expect(sent[2]).toEqual(expect.arrayContaining(sent[1]!));
    expect(events.filter((e) => e.e === 'start' && tasks.some((t) => t.id === e.id)).length).toBe(3);
  });

  it('deregisters on SIGTERM', async () => {
    const id = workerId();
    const stopped = next((e) => e.e === 'stopped');
    worker.child.kill('SIGTERM');
    expect(await stopped).toMatchObject({ unreported: 0, released: 0 });
    expect((await worker.exited).code).toBe(0);
    expect((await tf.admin.getWorker(id)).state).toBe('stopped');
    // Every task of the queue ended as expected: nothing left behind.
    const left = (await producer.listTasks({ queue: QUEUE, limit: 100 })).items.filter((t) => t.state !== 'succeeded' && t.state !== 'dead');
    expect(left).toEqual([]);
  });
});
