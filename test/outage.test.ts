/**
 * A database outage under load: a Taskflow node on a private PostgreSQL cluster, a producer
 * submitting steadily (SDK client, retries on, an idempotency key made up for every submit)
 * and two SDK workers draining, while the cluster is restarted fast, restarted immediate (a
 * crash and recovery), and stopped for 5 s. Every HTTP answer is counted by a proxy in front
 * of the node. What must hold:
 *
 * - no answer is a 500; every error answer is 503 with Retry-After;
 * - every task the producer got acknowledged ends succeeded;
 * - a task runs more than once only where its lease was lost (an attempt ended `lease_expired`
 *   or `worker_lost`) or where the crash undid its claim (claims do not wait for the WAL flush,
 *   docs/protocol.md "When the database crashes": the same attempt runs again); both counted;
 * - the node's log has no line over 2 KB, no SQL text, no client-object dump.
 *
 * `npm test` runs one short cycle; `npm run outage` runs the long version (several cycles of
 * each outage, minutes), TASKFLOW_TEST_OUTAGE_CYCLES=<n> to choose.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskflowClient, Worker, type TaskHandler } from '@taskflow/sdk';
import { createLogger } from '@taskflow/server';
import { startProxy, startTestService, type TestProxy, type TestService } from '@taskflow/server/test-support';
import { startPrivateCluster, type PrivateCluster } from './support/privateCluster.ts';

const CYCLES = Number(process.env.TASKFLOW_TEST_OUTAGE_CYCLES ?? 1);
/** This helper's port range is 55440-55449. */
const PORT = 55440;
const QUEUE = 'outage';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The node's log lines, as written. */
function logCapture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(line);
      done();
    },
  });
  return { lines, logger: createLogger('info', stream) };
}

describe('a database outage under load (private PostgreSQL cluster)', () => {
  let cluster: PrivateCluster;
  let tf: TestService;
  let proxy: TestProxy;
  const log = logCapture();
  const workers: Worker[] = [];
  /** Every answer of the node: `status retry-after`. */
  const answers: { status: number; retryAfter: string | undefined; path: string }[] = [];

  beforeAll(async () => {
    cluster = await startPrivateCluster({ port: PORT, prefix: '/tmp/h24-outage-' });
    tf = await startTestService('postgres', {
      // A worker TTL longer than the outages with their restarts (slow on a busy machine): a
      // worker that cannot heartbeat through the outage is not taken for lost (409 worker_lost).
      databaseUrl: cluster.url, logLevel: 'info', workerTtlMs: 60_000, rescueIntervalMs: 200, rescueStartDelayMs: 0, connectionTimeoutMs: 1000,
    }, { logger: log.logger });
    proxy = await startProxy(tf.url, {
      onAnswer(req, answer) {
        const ra = answer.headers['retry-after'];
        answers.push({ status: answer.status, retryAfter: Array.isArray(ra) ? ra[0] : ra, path: `${req.method} ${req.path.replace(/[0-9a-f-]{36}/, ':id')}` });
        return 'pass';
      },
    });
  }, 180_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop(0)));
    await proxy?.close();
    await tf?.service.stop();
    await cluster?.destroy();
  });

  async function waitReady(): Promise<void> {
    const deadline = Date.now() + 60_000;
    while ((await fetch(`${tf.url}/readyz`)).status !== 200) {
      if (Date.now() > deadline) throw new Error('the node did not become ready again');
      await sleep(100);
    }
  }

  it('answers 503 with Retry-After (never 500), loses no acknowledged task, reruns only after a lost lease or an undone claim; its log is readable', async () => {
    const runs = new Map<string, number[]>(); // task id → the attempt of each run
    const handlers: Record<string, TaskHandler> = {
      async work(_payload, ctx) {
        runs.set(ctx.id, [...(runs.get(ctx.id) ?? []), ctx.attempt]);
        await sleep(5);
        return { ok: true };
      },
    };
    const quiet = { info() {}, warn() {}, error() {} };
    for (let i = 0; i < 2; i++) {
      const w = new Worker({ url: proxy.url, apiKey: tf.adminKey, queues: [QUEUE], handlers, concurrency: 4, waitMs: 1000, handleSignals: false, logger: quiet });
      workers.push(w);
      await w.start();
    }
    const producer = new TaskflowClient({
      url: proxy.url, apiKey: tf.adminKey, idempotencyKeys: 'all', retry: { maxAttempts: 50, maxElapsedMs: 60_000, maxDelayMs: 1000 },
    });
    const acknowledged = new Set<string>();
    const producerErrors: string[] = [];
    let producing = true;
    const produce = (async () => {
      for (let n = 0; producing; n++) {
        await Promise.all(Array.from({ length: 4 }, () => producer.enqueue({ type: 'work', queue: QUEUE, payload: { n } })
          .then((t) => acknowledged.add(t.id), (err: unknown) => producerErrors.push(String(err)))));
        await sleep(20);
      }
    })();

    const outages: string[] = [];
    for (let c = 0; c < CYCLES; c++) {
      await sleep(1000);
      await cluster.restart('fast');
      outages.push('restart -m fast');
      await waitReady();
      await sleep(1000);
      await cluster.restart('immediate');
      outages.push('restart -m immediate');
      await waitReady();
      await sleep(1000);
      await cluster.stop('fast');
      await sleep(5000);
      await cluster.start();
      outages.push('stopped 5 s');
      await waitReady();
    }
    await sleep(1000);
    producing = false;
    await produce;

    // Every acknowledged task ends succeeded.
    const deadline = Date.now() + 120_000;
    let left = [...acknowledged];
    const unfinished = async () => {
      const still: string[] = [];
      for (const id of left) if (!runs.has(id) || (await tf.admin.getTask(id)).state !== 'succeeded') still.push(id);
      return still;
    };
    left = await unfinished();
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(500);
      left = await unfinished();
    }
    const states = await Promise.all(left.map(async (id) => `${id}: ${(await tf.admin.getTask(id)).state}`));
    expect(states).toEqual([]);

    // Reruns: each explained by a lost lease or by a claim the crash undid.
    const rerun = [...runs].filter(([, attempts]) => attempts.length > 1);
    let afterLeaseLoss = 0;
    let claimUndone = 0;
    const unexplained: string[] = [];
    const reruns: string[] = [];
    for (const [id, attempts] of rerun) {
      const task = await tf.admin.getTask(id);
      reruns.push(`${id} ran at attempts ${attempts.join(',')}; attempts ${task.attempts.map((a) => `${a.attempt}:${a.outcome}`).join(',')}`);
      if (task.attempts.some((a) => a.outcome === 'lease_expired' || a.outcome === 'worker_lost')) afterLeaseLoss++;
      else if (new Set(attempts).size < attempts.length) claimUndone++;
      else unexplained.push(`${id}: runs with attempts ${attempts.join(',')}, outcomes ${task.attempts.map((a) => a.outcome).join(',')}`);
    }
    expect(unexplained).toEqual([]);

    const byStatus = new Map<number, number>();
    for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
    const errors = answers.filter((a) => a.status >= 400);
    console.info(
      `outage test: ${outages.join(', ')} × ${CYCLES}; ${answers.length} answers by status ${JSON.stringify(Object.fromEntries(byStatus))}; ` +
        `${acknowledged.size} tasks acknowledged, all succeeded; ${producerErrors.length} submits given up; ` +
        `${rerun.length} ran more than once (${afterLeaseLoss} after a lost lease, ${claimUndone} whose claim the crash undid); ` +
        `${log.lines.length} log lines, longest ${Math.max(...log.lines.map((l) => l.length))} characters`,
    );
    if (reruns.length > 0) console.info(`reruns:\n${reruns.join('\n')}`);
    expect(byStatus.get(500) ?? 0).toBe(0);
    expect(errors.filter((a) => a.status !== 503 || !/^\d+$/.test(a.retryAfter ?? '')).map((a) => `${a.path} ${a.status} ${a.retryAfter}`)).toEqual([]);
    expect(acknowledged.size).toBeGreaterThan(0);

    // The node's log: readable lines only.
    expect(log.lines.filter((l) => l.length > 2048).map((l) => l.slice(0, 300))).toEqual([]);
    expect(log.lines.filter((l) => /SELECT|INSERT INTO|UPDATE |"client"|_connectionCallback/.test(l)).map((l) => l.slice(0, 300))).toEqual([]);
    expect(log.lines.some((l) => /database unavailable: answering 503/.test(l))).toBe(true);
  }, 600_000);
});
