/**
 * The SDK worker comes back when the service says it is not active, against a real service
 * (PGlite) through a real HTTP proxy that holds back its heartbeats until the service marks it
 * lost: after `worker_lost` it heartbeats and goes on under the same id; when it is also
 * deregistered before that heartbeat arrives (`worker_lost`, then `worker_stopped`), it
 * registers again, and its heartbeats go on under the new id.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Worker, type ClaimedTask, type TaskHandler } from '@taskflow/sdk';
import { startProxy, startTestService, type ProxiedRequest, type TestProxy, type TestService } from '@taskflow/server/test-support';

const quiet = { info() {}, warn() {}, error() {} };

/** The worker id and the route name of a worker request (`/api/v1/workers/<id>/claim` → [id, 'claim']). */
function workerRoute(req: ProxiedRequest): [string, string] | undefined {
  const m = /^\/api\/v1\/workers\/([0-9a-f-]{36})\/(claim|heartbeat|results)/.exec(req.path);
  return m ? [m[1]!, m[2]!] : undefined;
}

const codeOf = (body: Buffer) => {
  try {
    return (JSON.parse(body.toString()) as { code?: string }).code;
  } catch {
    return undefined;
  }
};

describe('SDK worker recovery', () => {
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

  function worker(queue: string, handlers: Record<string, TaskHandler>) {
    const w = new Worker({ url: proxy.url, apiKey: tf.adminKey, queues: [queue], handlers, concurrency: 2, waitMs: 300, handleSignals: false, logger: quiet });
    workers.push(w);
    return w;
  }
  const doneBy = (w: Worker, id: string) =>
    new Promise<string>((resolve) => {
      const on = (task: ClaimedTask) => {
        if (task.id !== id) return;
        w.off('taskDone', on);
        resolve(w.workerId!);
      };
      w.on('taskDone', on);
    });
  async function stateOf(id: string, want: string) {
    while ((await tf.admin.getWorker(id)).state !== want) await new Promise((r) => setTimeout(r, 20));
  }
  /** Resolves once `n` heartbeats of worker `id` have been answered 200 through the proxy. */
  async function heartbeatsOf(id: string, n: number) {
    const count = () => proxy.log.filter((e) => e.status === 200 && workerRoute(e.req)?.join() === `${id},heartbeat`).length;
    while (count() < n) await new Promise((r) => setTimeout(r, 20));
  }

  it('after worker_lost, heartbeats and goes on under the same id', async () => {
    const queue = 'rec.lost';
    const w = worker(queue, { async ok() { return 'ok'; } });
    let blocked = true;
    let metLost!: () => void;
    const lost = new Promise<void>((resolve) => (metLost = resolve));
    proxy.hooks = {
      onRequest: (req) => (blocked && workerRoute(req)?.join() === `${w.workerId},heartbeat` ? { kind: 'hangUp' } : { kind: 'forward' }),
      onAnswer: (req, answer) => {
        if (workerRoute(req)?.join() === `${w.workerId},claim` && codeOf(answer.body) === 'worker_lost') {
          blocked = false;
          metLost();
        }
        return 'pass';
      },
    };
    const registrations: string[] = [];
    w.on('registered', (id) => registrations.push(id));
    await w.start();
    const id = w.workerId!;
    await lost; // the service marked it lost and told a claim so
    await stateOf(id, 'active'); // its heartbeat brought it back
    const task = await tf.admin.enqueue({ type: 'ok', queue });
    expect(await doneBy(w, task.id)).toBe(id);
    expect(registrations).toEqual([id]);
    await w.stop(0);
    expect((await tf.admin.getTask(task.id)).state).toBe('succeeded');
  });

  it('after worker_lost and then worker_stopped (deregistered before its heartbeat came), registers again and heartbeats on', async () => {
    const queue = 'rec.lost-stopped';
    const w = worker(queue, { async ok() { return 'ok'; } });
    // block: every heartbeat is hung up, so the service marks the worker lost.
    // one: the claim met worker_lost and the worker was deregistered; the next heartbeat, the
    //      recovery's, goes through (and meets worker_stopped); the timer's are still hung up.
    // open: the worker registered again.
    let phase: 'block' | 'one' | 'open' = 'block';
    let recoveryBeat: string | undefined;
    proxy.hooks = {
      onRequest: (req) => {
        if (phase === 'one' && req.method === 'POST' && req.path === '/api/v1/workers') phase = 'open';
        if (workerRoute(req)?.join() !== `${w.workerId},heartbeat` || phase === 'open') return { kind: 'forward' };
        if (phase === 'one' && recoveryBeat === undefined) {
          recoveryBeat = 'sent';
          return { kind: 'forward' };
        }
        return { kind: 'hangUp' };
      },
      onAnswer: async (req, answer) => {
        const route = workerRoute(req);
        if (route?.[1] === 'claim' && route[0] === w.workerId && codeOf(answer.body) === 'worker_lost' && phase === 'block') {
          await tf.admin.deregisterWorker(route[0]);
          phase = 'one';
        }
        if (route?.[1] === 'heartbeat' && recoveryBeat === 'sent') recoveryBeat = codeOf(answer.body);
        return 'pass' as const;
      },
    };
    await w.start();
    const first = w.workerId!;
    const again = new Promise<string>((resolve) => w.once('registered', resolve));
    const second = await again;
    expect(recoveryBeat).toBe('worker_stopped');
    expect(second).not.toBe(first);
    expect((await tf.admin.getWorker(first)).state).toBe('stopped');
    await heartbeatsOf(second, 2); // heartbeats did not stop
    const task = await tf.admin.enqueue({ type: 'ok', queue });
    expect(await doneBy(w, task.id)).toBe(second);
    await w.stop(0); // reports what it finished
    expect((await tf.admin.getTask(task.id)).state).toBe('succeeded');
  });
});
