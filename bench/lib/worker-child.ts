/**
 * A worker process of the benchmark, for any system. The harness forks it, sends `init`
 * (system and its options), then `start`, `expect`, `report`, `stats` and `exit`.
 *
 * Each handler call counts the start of its task by (phase, index) carried in the payload,
 * and for tasks that carry an enqueue timestamp `t` records Date.now() - t: the enqueue to
 * start latency, both ends read from the same machine clock (`tu`: the same in fractional ms).
 * The first task of an expected phase sends `first` (its start, in fractional ms of the machine
 * clock): the drain's clock starts there.
 */
import type { BenchPayload, WorkerHandle } from './types.ts';

const counts = new Map<string, number[]>();
const latencies = new Map<string, number[]>();
const expectations = new Map<string, number>();
const started = new Map<string, number>();
let worker: WorkerHandle | undefined;

function onTask(payload: BenchPayload): void {
  const now = Date.now();
  const phase = payload.p;
  let arr = counts.get(phase);
  if (!arr) counts.set(phase, (arr = []));
  arr[payload.i] = (arr[payload.i] ?? 0) + 1;
  if (typeof payload.t === 'number' || typeof payload.tu === 'number') {
    let lat = latencies.get(phase);
    if (!lat) latencies.set(phase, (lat = []));
    lat.push(typeof payload.tu === 'number' ? performance.timeOrigin + performance.now() - payload.tu : now - payload.t!);
  }
  const n = (started.get(phase) ?? 0) + 1;
  started.set(phase, n);
  if (n === 1 && expectations.has(phase)) process.send!({ ev: 'first', phase, at: performance.timeOrigin + performance.now() });
  if (expectations.get(phase) === n) process.send!({ ev: 'reached', phase, at: now });
}

function reply(id: unknown, body: Record<string, unknown> = {}): void {
  process.send!({ id, ...body });
}

process.on('message', async (m: any) => {
  try {
    switch (m.cmd) {
      case 'init': {
        const mod = await import(`../systems/${m.system}.ts`);
        worker = await mod.makeWorker(m.options, onTask);
        reply(m.id, { ok: true });
        break;
      }
      case 'start':
        await worker!.start();
        reply(m.id, { ok: true, at: Date.now() });
        break;
      case 'expect':
        expectations.set(m.phase, m.count);
        if ((started.get(m.phase) ?? 0) >= m.count) process.send!({ ev: 'reached', phase: m.phase, at: Date.now() });
        reply(m.id, { ok: true });
        break;
      case 'report': {
        const phases: Record<string, { counts: number[]; latencies: number[] }> = {};
        for (const [phase, arr] of counts) phases[phase] = { counts: Array.from(arr, (v) => v ?? 0), latencies: latencies.get(phase) ?? [] };
        reply(m.id, { phases });
        break;
      }
      case 'stats':
        reply(m.id, { stats: worker?.stats?.() ?? null });
        break;
      case 'exit':
        await worker?.stop();
        reply(m.id, { ok: true });
        process.exit(0);
    }
  } catch (err) {
    process.send!({ id: m.id, error: String((err as Error)?.stack ?? err) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send!({ ev: 'hello' });
