/** Background duties survive their own errors, can be hurried, and stop cleanly; wake-ups are not lost. */
import { describe, expect, it } from 'vitest';
import { Loop, WakeHub, Coalescer, weightedOrder, type Logger } from '@taskflow/core';

function recordingLogger() {
  const errors: { obj: any; msg?: string }[] = [];
  const logger: Logger = { debug() {}, info() {}, warn() {}, error: (obj, msg) => void errors.push({ obj, msg }) };
  return { logger, errors };
}

describe('Loop', () => {
  it('logs a failing pass and runs again', async () => {
    const { logger, errors } = recordingLogger();
    let calls = 0;
    let third!: () => void;
    const reached = new Promise<void>((resolve) => (third = resolve));
    const loop = new Loop({
      name: 'flaky', intervalMs: 5, logger,
      run: async () => {
        calls++;
        if (calls === 1) throw new Error('boom');
        if (calls === 3) third();
      },
    });
    loop.start();
    await reached;
    await loop.stop();
    expect(errors).toHaveLength(1);
    expect(errors[0]!.obj.err.message).toBe('boom');
    expect(errors[0]!.msg).toMatch(/flaky failed; retrying/);
  });

  it('runs again at once when asked to, despite a long interval, and not after stop', async () => {
    const { logger } = recordingLogger();
    let calls = 0;
    let second!: () => void;
    const again = new Promise<void>((resolve) => (second = resolve));
    const loop = new Loop({ name: 'slow', intervalMs: 60_000, logger, run: async () => { if (++calls === 2) second(); } });
    loop.start();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 5));
    loop.soon(0);
    await again;
    await loop.stop();
    loop.soon(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toBe(2);
  });
});

describe('WakeHub', () => {
  it('keeps a wake-up that lands between subscribing and waiting', async () => {
    const { logger } = recordingLogger();
    const hub = new WakeHub(undefined, logger);
    const sub = hub.subscribe(['a', 'b']);
    hub.publish(['b']); // e.g. a task enqueued while the claim was looking
    expect(await sub.wait(60_000)).toBe(true);
    sub.close();
    expect(hub.waiting('a')).toBe(0);
  });

  it('hands a wake-up to one waiter, the one waiting longest', async () => {
    const hub = new WakeHub(undefined, recordingLogger().logger);
    const first = hub.subscribe(['a', 'b']);
    const second = hub.subscribe(['a']);
    const third = hub.subscribe(['b']);
    hub.publish(['a']);
    expect([first.woken, second.woken, third.woken]).toEqual([true, false, false]);
    // The woken waiter waits on none of its queues any more: the next wake-up of b is the third's.
    expect(hub.waiting('a')).toBe(1);
    hub.publish(['b']);
    expect([second.woken, third.woken]).toEqual([false, true]);
    expect(await second.wait(10)).toBe(false);
    hub.publish(['a', 'b']); // one wake-up per queue: a has the second, b has nobody
    expect(await second.wait(60_000)).toBe(true);
    expect(hub.waiting('a') + hub.waiting('b')).toBe(0);
    for (const s of [first, second, third]) s.close();
  });

  it('wakes every waiter when it stops', async () => {
    const hub = new WakeHub(undefined, recordingLogger().logger);
    const subs = [hub.subscribe(['a']), hub.subscribe(['a', 'b']), hub.subscribe(['c'])];
    await hub.stop();
    expect(subs.map((s) => s.woken)).toEqual([true, true, true]);
  });

  it('times out, and ignores other queues', async () => {
    const hub = new WakeHub(undefined, recordingLogger().logger);
    const sub = hub.subscribe(['a']);
    hub.publish(['other']);
    expect(await sub.wait(10)).toBe(false);
    const ctl = new AbortController();
    const waiting = sub.wait(60_000, ctl.signal);
    ctl.abort();
    expect(await waiting).toBe(false);
    sub.close();
  });
});

describe('Coalescer', () => {
  it('sends one message at a time and never drops the last queues of a burst', async () => {
    const sent: string[][] = [];
    let release!: () => void;
    const coalescer = new Coalescer(async (queues) => {
      sent.push(queues);
      if (sent.length === 1) await new Promise<void>((r) => (release = r));
    }, () => undefined);
    coalescer.add(['a']);
    coalescer.add(['b']);
    coalescer.add(['c', 'b']);
    expect(sent).toEqual([['a']]);
    release();
    await new Promise((r) => setTimeout(r, 5));
    expect(sent).toEqual([['a'], ['b', 'c']]);
  });
});

describe('weightedOrder', () => {
  it('puts each queue first in proportion to its weight', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const first = { a: 0, b: 0 };
    for (let i = 0; i < 20_000; i++) first[weightedOrder([{ name: 'a', weight: 1 }, { name: 'b', weight: 3 }], random)[0]!.name as 'a' | 'b']++;
    expect(first.b / 20_000).toBeGreaterThan(0.72);
    expect(first.b / 20_000).toBeLessThan(0.78);
  });
});
