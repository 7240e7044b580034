/**
 * What a test file may leave open, found and named for the leak check (leakCheck.ts):
 * - what keeps the process alive, as Node counts it (`process.getActiveResourcesInfo()`:
 *   sockets, servers, child processes, pending requests, ref'd timers), with the handles
 *   described by endpoint or command line and the timers by where they were created;
 * - what holds memory or a database without any handle: PGlite instances and SDK Workers,
 *   counted as they are created (see leakCheck.ts for how).
 */
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** How many of each kind of resource keeps the process alive. */
export type ResourceCounts = Map<string, number>;

export function resourceCounts(): ResourceCounts {
  const counts: ResourceCounts = new Map();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** The ref'd handles' owners (sockets, servers, child processes): what the counts do not name. */
export function activeHandles(): object[] {
  // Undocumented but long-standing (why-is-node-running and others rely on it); the counts
  // above, from the documented API, decide whether something leaked, this only names it.
  const get = (process as unknown as { _getActiveHandles?: () => object[] })._getActiveHandles;
  return get ? get.call(process) : [];
}

const WELL_KNOWN_PORTS: Record<number, string> = { 5432: 'PostgreSQL', 6379: 'Redis' };

export function describeHandle(handle: object): string {
  const h = handle as Record<string, any>;
  const type = (h.constructor as { name?: string } | undefined)?.name ?? 'handle';
  if (type === 'ChildProcess') return `a child process (pid ${h.pid}: ${(h.spawnargs as string[]).join(' ')})`;
  if (typeof h.address === 'function' && typeof h.listen === 'function') return `a server listening on ${serverAddress(h as Parameters<typeof serverAddress>[0])}`;
  if (type === 'Socket' || type === 'TLSSocket') {
    if (h.server) return `a connection accepted by the server on ${serverAddress(h.server)}`;
    if (h.remotePort) {
      const known = WELL_KNOWN_PORTS[h.remotePort as number];
      return `a connection to ${h.remoteAddress}:${h.remotePort}${known ? ` (${known})` : ''}`;
    }
    return 'a pipe (the stdio of a child process, or an IPC channel)';
  }
  return `a ${type}`;
}

function serverAddress(server: { address(): { address: string; port: number } | string | null }): string {
  const addr = server.address();
  return addr === null ? '(no address)' : typeof addr === 'string' ? addr : `${addr.address}:${addr.port}`;
}

// ---------------------------------------------------------------- timers

/** Timers made through the global setTimeout/setInterval since `trackTimers`, with their origin. */
const timers = new Map<NodeJS.Timeout, { kind: string; ms: number; site: { stack?: string } }>();

/**
 * Wraps the global setTimeout and setInterval so a timer left pending can be named by where it
 * was made. Vitest keeps its own references to the real ones, so its timers are not seen here.
 */
export function trackTimers(): void {
  for (const kind of ['setTimeout', 'setInterval'] as const) {
    const original = globalThis[kind] as (...args: unknown[]) => NodeJS.Timeout;
    if ((original as { tracked?: boolean }).tracked) continue;
    const tracked = function (this: unknown, ...args: unknown[]): NodeJS.Timeout {
      const timer = original.apply(this, args);
      const site: { stack?: string } = {};
      Error.captureStackTrace(site, tracked); // formatted only if read: cheap until a leak
      if (timers.size >= 10_000) forgetFinishedTimers();
      timers.set(timer, { kind, ms: Number(args[1] ?? 0), site });
      return timer;
    };
    // Keeps util.promisify(setTimeout) and the like working.
    Object.defineProperties(tracked, Object.getOwnPropertyDescriptors(original));
    Object.defineProperty(tracked, 'tracked', { value: true });
    (globalThis as Record<typeof kind, unknown>)[kind] = tracked;
  }
}

/** A timer is pending until it fires (setTimeout) or is cleared; `_destroyed` is Node's own mark. */
const pending = (t: NodeJS.Timeout) => !(t as unknown as { _destroyed?: boolean })._destroyed;

function forgetFinishedTimers(): void {
  for (const t of timers.keys()) if (!pending(t)) timers.delete(t);
}

/** Pending timers that keep the process alive (unref'd ones do not): what each is, and its stack. */
export function pendingTimers(): { what: string; stack: string }[] {
  forgetFinishedTimers();
  return [...timers]
    .filter(([t]) => t.hasRef())
    .map(([, { kind, ms, site }]) => ({ what: `${kind}(…, ${ms}) made ${origin(site.stack)}`, stack: site.stack ?? '' }));
}

/** The first three frames of a stack, Node's internals left out, with paths relative to the repository. */
export function origin(stack: string | undefined): string {
  const frames = (stack ?? '').split('\n').slice(1).map((l) => l.trim()).filter((l) => l.startsWith('at ') && !l.includes('node:internal'));
  return frames.slice(0, 3).map((f) => f.replace('file://', '').replace(REPO, '')).join(' ← ') || '(no stack)';
}

// ---------------------------------------------------------------- objects without handles

/** Objects that hold something until they are closed: what they are, and whether they still are open. */
export const openObjects = new Map<object, { what: () => string; isOpen: () => boolean }>();

export function stillOpenObjects(): string[] {
  for (const [obj, { isOpen }] of openObjects) if (!isOpen()) openObjects.delete(obj);
  return [...openObjects.values()].map(({ what }) => what());
}
