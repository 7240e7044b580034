/**
 * The leak check, a setup file of every test project (vitest.shared.ts). A test file fails when,
 * its own afterAll hooks done and pending closes given GRACE_MS to finish, it leaves open:
 * - what keeps a process alive, as Node counts it: a PostgreSQL pool's or client's connection,
 *   a Redis connection, an HTTP server (a Fastify app, a Taskflow service), a child process, a
 *   pending timer or interval, a signal listener (a Worker's handleSignals);
 * - what holds memory or a database without a handle Node would count: a PGlite instance, a
 *   started SDK Worker. Their modules are wrapped as they are loaded (vi.mock with the real
 *   module, one method wrapped) to count what is made and not closed.
 *
 * Vitest runs each file in a process of its own and ends it after, so a leak never shows in a
 * test run; it shows in production, where a pool or a worker left open holds a process up or
 * a connection slot taken. graphile-worker's suite fails the same way (DESIGN.md, house style).
 *
 * Not counted, on purpose: timers and sockets that are unref'd. They do not keep a process
 * alive, which is why the engine's background loops (Loop, Maintenance, the wake hub's
 * presence, a Worker's heartbeat) unref theirs: a duty never holds a process up by itself. The
 * services and pools that own those loops are counted, so a loop left running still shows.
 * Nor is an HTTP client's idle keep-alive socket (undici unrefs it; a client left unclosed
 * loses it when the server it spoke to closes). Only PGlite.create and Worker#start are
 * wrapped: a PGlite made with `new PGlite()` would not be seen (nothing here makes one so).
 * A timer made through `node:timers` rather than the global functions is counted but not
 * named. KNOWN_LEAKS lists the allowances, each with its reason.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, vi } from 'vitest';
import type { Worker } from '@taskflow/sdk';
import { activeHandles, describeHandle, pendingTimers, resourceCounts, stillOpenObjects, trackTimers } from './openResources.ts';

/** How long closes begun in the file's hooks get to finish (a socket closes on a later turn). */
const GRACE_MS = 2_000;

vi.mock('@electric-sql/pglite', async (importOriginal) => {
  const mod = await importOriginal<typeof import('@electric-sql/pglite')>();
  const { openObjects } = await import('./openResources.ts');
  const create = mod.PGlite.create as ((...args: unknown[]) => Promise<InstanceType<typeof mod.PGlite>>) & { tracked?: boolean };
  if (!create.tracked) {
    const tracked = async function (this: unknown, ...args: unknown[]) {
      const db = await create.apply(this, args);
      openObjects.set(db, { what: () => `a PGlite instance (${db.dataDir ?? 'memory://'}), not closed`, isOpen: () => !db.closed });
      return db;
    };
    mod.PGlite.create = Object.assign(tracked, { tracked: true }) as unknown as typeof mod.PGlite.create;
  }
  return mod;
});

vi.mock('@taskflow/sdk', async (importOriginal) => {
  const mod = await importOriginal<typeof import('@taskflow/sdk')>();
  const { openObjects } = await import('./openResources.ts');
  const start = mod.Worker.prototype.start as Worker['start'] & { tracked?: boolean };
  if (!start.tracked) {
    const tracked = async function (this: Worker) {
      let stopped = false;
      this.once('stopped', () => (stopped = true));
      openObjects.set(this, { what: () => `an SDK Worker (${this.workerId ?? 'registering'}), started and not stopped`, isOpen: () => !stopped });
      try {
        await start.call(this);
      } catch (err) {
        openObjects.delete(this); // never started: nothing to stop
        throw err;
      }
    };
    mod.Worker.prototype.start = Object.assign(tracked, { tracked: true });
  }
  return mod;
});

/** Timers not counted as leaks, by their creation stack; each needs a comment saying why. */
const KNOWN_LEAKS: ((stack: string) => boolean)[] = [];

trackTimers();

const signalListeners = () => process.listenerCount('SIGTERM') + process.listenerCount('SIGINT');
const baseline = { counts: resourceCounts(), handles: new Set(activeHandles()), signals: signalListeners() };

/** What is open now that was not when the file started; empty when nothing leaked. */
function leaks(): string[] {
  const timers = pendingTimers();
  const known = timers.filter((t) => KNOWN_LEAKS.some((isKnown) => isKnown(t.stack)));
  const found = [
    ...activeHandles().filter((h) => !baseline.handles.has(h)).map(describeHandle),
    ...timers.filter((t) => !known.includes(t)).map((t) => t.what),
    ...stillOpenObjects(),
  ];
  const signals = signalListeners() - baseline.signals;
  if (signals > 0) found.push(`${signals} SIGTERM/SIGINT listener(s) (a Worker with handleSignals, not stopped?)`);
  const counts = resourceCounts();
  if (known.length > 0) counts.set('Timeout', (counts.get('Timeout') ?? 0) - known.length);
  const excess = [...counts].map(([type, n]) => [type, n - (baseline.counts.get(type) ?? 0)] as const).filter(([, n]) => n > 0);
  // Node's count is the authority; the list above names what it can. Anything counted and not
  // named (a request still pending, a timer made through node:timers) is reported by type.
  if (excess.length > 0 && found.length === 0) found.push(`unnamed: ${excess.map(([type, n]) => `${n} × ${type}`).join(', ')}`);
  return found;
}

afterAll(async () => {
  const deadline = Date.now() + GRACE_MS;
  let found = leaks();
  while (found.length > 0 && Date.now() < deadline) {
    await sleep(25, undefined, { ref: false });
    found = leaks();
  }
  if (found.length > 0) {
    const counted = [...new Set(found)].map((what) => {
      const n = found.filter((f) => f === what).length;
      return n > 1 ? `${n} × ${what}` : what;
    });
    throw new Error(
      `leak check: this test file left open, after its afterAll hooks and ${GRACE_MS} ms:\n  - ${counted.join('\n  - ')}\n` +
        'Close each in an afterAll or a finally (close(), end(), stop(), killAll()); see test/harness/leakCheck.ts.',
    );
  }
}, GRACE_MS + 10_000);
