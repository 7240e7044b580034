/**
 * The SDK worker's default, adaptive prefetch with real processes on PostgreSQL: four worker
 * processes share a backlog fairly (none idles while another holds much more than its share
 * unstarted), and a slow handler with a short lease never has a buffered task wait past its
 * lease (nothing expires, nothing runs twice).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker, type ClaimedTask } from '@taskflow/sdk';
import { startTestService, type TestService } from '@taskflow/server/test-support';
import { killAll, startWorkerProcess } from './support/processes.ts';

const quiet = { info() {}, warn() {}, error() {} };

interface State { t: number; running: number; prefetched: number; prefetch: number }

describe('adaptive prefetch (PostgreSQL, real worker processes)', () => {
  let tf: TestService;
  beforeAll(async () => {
    tf = await startTestService('postgres', { poolSize: 10 });
  });
  afterAll(async () => {
    await killAll();
    await tf?.stop();
  });

  it('shares a backlog of 1,000 between 4 workers: none idles while another holds more than twice its share unstarted', async () => {
    const TASKS = 1000;
    const WORKERS = 4;
    const CONCURRENCY = 5;
    const queue = 'fair';
    const key = (await tf.admin.createApiKey({ name: 'fair workers', scopes: ['worker'] })).secret;
    for (let i = 0; i < TASKS; i += 250) {
      await tf.admin.enqueueManyIds(Array.from({ length: 250 }, () => ({ type: 'sleep', queue, payload: { ms: 50 } })));
    }
    const states = new Map<string, State[]>();
    const starts: { t: number; id: string }[] = [];
    let done = 0;
    let allDone!: () => void;
    const finished = new Promise<void>((resolve) => (allDone = resolve));
    const workers = await Promise.all(Array.from({ length: WORKERS }, (_, i) =>
      startWorkerProcess({ TF_URL: tf.url, TF_KEY: key, TF_QUEUES: queue, TF_CONCURRENCY: String(CONCURRENCY), TF_NAME: `fair-${i}`, TF_STATE_MS: '10' })));
    for (const w of workers) {
      const mine: State[] = [];
      states.set(w.workerId, mine);
      w.proc.onLine((line) => {
        const ev = JSON.parse(line);
        if (ev.e === 'state') mine.push(ev);
        else if (ev.e === 'start') starts.push({ t: ev.t, id: ev.id });
        else if (ev.e === 'done' && ++done === TASKS) allDone();
      });
    }
    await finished;
    // Every task ran once.
    expect(new Set(starts.map((s) => s.id)).size).toBe(TASKS);
    expect(starts.length).toBe(TASKS);

    // At each sample of an idle worker (nothing running, nothing buffered), before the last
    // start: each other worker's latest sample (within 30 ms) holds at most twice its share of
    // the tasks not started yet (anywhere: in the queue or in a buffer), or its concurrency
    // (what it starts within one handler's run), whichever is more.
    const startTimes = starts.map((s) => s.t).sort((a, b) => a - b);
    const lastStart = startTimes.at(-1)!;
    const startedBy = (t: number) => {
      let lo = 0;
      let hi = startTimes.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (startTimes[mid]! <= t) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    const latest = (list: State[], t: number) => {
      let found: State | undefined;
      for (const s of list) if (s.t <= t && s.t > t - 30) found = s;
      return found;
    };
    const violations: string[] = [];
    let idleSamples = 0;
    let maxHeld = 0;
    for (const [id, list] of states) {
      for (const s of list) maxHeld = Math.max(maxHeld, s.prefetched);
      for (const s of list) {
        if (s.t >= lastStart || s.running > 0 || s.prefetched > 0) continue;
        idleSamples++;
        const share = (TASKS - startedBy(s.t)) / WORKERS;
        for (const [other, theirs] of states) {
          if (other === id) continue;
          const o = latest(theirs, s.t);
          if (o && o.prefetched > 2 * Math.max(share, CONCURRENCY)) violations.push(`${s.t}: ${id} idle, ${other} holds ${o.prefetched} unstarted (share ${share})`);
        }
      }
    }
    expect(violations).toEqual([]);
    // The samples covered the run (each worker sampled throughout).
    for (const list of states.values()) expect(list.length).toBeGreaterThan(20);
    expect(maxHeld).toBeLessThanOrEqual(TASKS);
    void idleSamples;
  }, 180_000);

  it('never keeps a prefetched task unstarted past its lease, with a slow handler and a short lease', async () => {
    const TASKS = 150;
    const LEASE_MS = 2000;
    const queue = 'lease';
    const received = new Map<string, number>();
    const started = new Map<string, number>();
    const runs = new Map<string, number>();
    const stale: string[] = [];
    let done = 0;
    let allDone!: () => void;
    const finished = new Promise<void>((resolve) => (allDone = resolve));
    const ids: string[] = [];
    for (let i = 0; i < TASKS; i += 50) {
      const out = await tf.admin.enqueueManyIds(Array.from({ length: 50 }, () => ({ type: 'slow', queue, timeoutMs: LEASE_MS })));
      ids.push(...out.ids);
    }
    const w = new Worker({
      url: tf.url, apiKey: tf.adminKey, queues: [queue], concurrency: 5, handleSignals: false, logger: quiet,
      handlers: {
        async slow() {
          await new Promise((resolve) => setTimeout(resolve, 200));
          return null;
        },
      },
    });
    w.on('taskStart', (task: ClaimedTask) => {
      started.set(task.id, Date.now());
      runs.set(task.id, (runs.get(task.id) ?? 0) + 1);
    });
    w.on('taskDone', () => {
      if (++done === TASKS) allDone();
    });
    w.on('stale', (s) => stale.push(...s));
    await w.start();
    await finished;
    await w.stop();
    // Claimed at (the service's clock, on this machine), started at (the worker's).
    for (const id of ids) received.set(id, new Date((await tf.admin.getTask(id)).startedAt!).getTime());
    const waits = ids.map((id) => started.get(id)! - received.get(id)!);
    expect(Math.max(...waits)).toBeLessThan(LEASE_MS);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(stale).toEqual([]);
    for (const id of ids) {
      const t = await tf.admin.getTask(id);
      expect(t.state).toBe('succeeded');
      expect(t.attempt).toBe(1);
    }
  }, 120_000);
});
