/**
 * The embedded data directory's lock: one process at a time opens it.
 *
 * Two PGlite instances writing one directory corrupt it (each keeps its own buffers and WAL
 * position: ids handed out twice, then a directory PGlite cannot open), and PGlite itself
 * takes no lock. So a process that opens the directory first creates `<dir>/taskflow.lock`,
 * atomically: the record (pid, host, start time) is written to a file of its own, then
 * hard-linked to the lock's name, which fails if the name exists. A lock file therefore exists
 * only complete, and only one process's link succeeds.
 *
 * A lock whose holder is gone (killed, crashed) is stale and taken over. The holder is gone when,
 * on this host, its pid is not alive, or is alive but is another process (on Linux: another boot,
 * or another start time of that pid, so a reused pid does not keep a dead lock alive). A lock
 * held from another host (a shared volume), or that cannot be read, is not judged: the start is
 * refused with the path to remove once the operator has checked. Taking over is guarded by a
 * second exclusive file (`taskflow.lock.takeover`), so that of two processes that find the same
 * stale lock, one removes it; a lock is only ever removed by its holder or by the guard's.
 *
 * No timer, no heartbeat: a process that blocks its event loop (a long statement in PGlite)
 * keeps its lock, where a lock judged stale by age (proper-lockfile's mtime) would be taken.
 */
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TaskflowError } from '../errors.ts';
import { DataDirError } from './dataDir.ts';

/** Who holds a data directory's lock, as its lock file says. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the holder started. */
  startedAt: string;
  /** Linux: the kernel's boot id and the process's start time in clock ticks since boot. */
  bootId?: string;
  processStart?: string;
  /** Unique per acquisition: a holder releases only its own lock. */
  token: string;
}

export type LockRefusal = 'held' | 'other_host' | 'unreadable' | 'takeover_pending';

/** Another process holds the data directory, or its lock cannot be judged. */
export class DataDirLockedError extends TaskflowError {
  readonly path: string;
  readonly lockPath: string;
  readonly reason: LockRefusal;
  readonly holder: LockHolder | undefined;
  constructor(path: string, lockPath: string, reason: LockRefusal, holder: LockHolder | undefined, message: string) {
    super('data_dir_locked', message);
    this.path = path;
    this.lockPath = lockPath;
    this.reason = reason;
    this.holder = holder;
  }
}

/** The record of this process, for a lock file. */
function selfRecord(): LockHolder {
  const linux = linuxIdentity(process.pid);
  return {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date(Date.now() - process.uptime() * 1000).toISOString(),
    ...(linux ?? {}),
    token: randomBytes(12).toString('hex'),
  };
}

/** Linux only: the boot id and the start time of `pid` (field 22 of /proc/<pid>/stat). */
function linuxIdentity(pid: number): { bootId: string; processStart: string } | undefined {
  try {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const processStart = fields[19];
    return processStart ? { bootId, processStart } : undefined;
  } catch {
    return undefined;
  }
}

/** Locks held by this process, by lock path: a second open of one directory in one process is refused too. */
const heldHere = new Map<string, string>();

function isAlive(holder: LockHolder): boolean {
  if (holder.pid === process.pid) return [...heldHere.values()].includes(holder.token);
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: a process of another user has that pid, and is alive.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (holder.bootId && holder.processStart) {
    const now = linuxIdentity(holder.pid);
    if (now && (now.bootId !== holder.bootId || now.processStart !== holder.processStart)) return false;
  }
  return true;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.startedAt === 'string' && typeof v.token === 'string') return v as LockHolder;
  } catch {
    // not JSON: unreadable
  }
  return undefined;
}

/** Creates `target` holding `record`, atomically: only if no file has that name, never half-written. */
function createExclusive(target: string, record: LockHolder): boolean {
  const tmp = `${target}.${record.pid}.${record.token}`;
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    writeSync(fd, `${JSON.stringify(record)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, target);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') return createInPlace(target, record);
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/**
 * For a file system without hard links: O_EXCL on the name itself. Still exclusive, but a
 * crash between the create and the write leaves an empty lock, which is refused as unreadable.
 */
function createInPlace(target: string, record: LockHolder): boolean {
  let fd: number;
  try {
    fd = openSync(target, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, `${JSON.stringify(record)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

function readHolder(path: string): { holder: LockHolder | undefined } | undefined {
  try {
    return { holder: parseHolder(readFileSync(path, 'utf8')) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // released meanwhile
    return { holder: undefined };
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function describeHolder(h: LockHolder): string {
  return `pid ${h.pid} on host ${h.host}, started ${h.startedAt}`;
}

export interface DataDirLock {
  readonly lockPath: string;
  readonly holder: LockHolder;
  /** Set when the lock was taken over from a holder that is gone. */
  readonly tookOverFrom: LockHolder | undefined;
  /** Removes the lock file if it is still this holder's. Idempotent. */
  release(): void;
}

/**
 * Takes the lock of data directory `dir` (which exists). Throws DataDirLockedError when another
 * live process holds it, or when its holder cannot be judged; takes it over when its holder is gone.
 */
export function lockDataDir(dir: string): DataDirLock {
  const lockPath = join(dir, 'taskflow.lock');
  const self = selfRecord();
  let tookOverFrom: LockHolder | undefined;
  for (let attempt = 0; ; attempt++) {
    let created: boolean;
    try {
      created = createExclusive(lockPath, self);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new DataDirError(dir, 'not_writable', `${dir} is not writable (${code ?? (err as Error).message})`, { cause: err });
    }
    if (created) break;
    const found = readHolder(lockPath);
    if (!found) continue; // released between our attempt and the read: try again
    const { holder } = found;
    if (!holder) {
      throw new DataDirLockedError(dir, lockPath, 'unreadable', undefined,
        `the data directory ${dir} has a lock file that cannot be read (${lockPath}); if no Taskflow process uses this directory, remove that file`);
    }
    if (holder.host !== self.host) {
      throw new DataDirLockedError(dir, lockPath, 'other_host', holder,
        `the data directory ${dir} is locked by ${describeHolder(holder)}, another host: if that process is no longer running, remove ${lockPath}`);
    }
    if (isAlive(holder)) {
      const who = holder.pid === process.pid ? 'is already open in this process' : `is in use by another Taskflow process: ${describeHolder(holder)}`;
      throw new DataDirLockedError(dir, lockPath, 'held', holder, `the data directory ${dir} ${who}`);
    }
    if (attempt >= 100) {
      throw new DataDirLockedError(dir, lockPath, 'takeover_pending', holder, `could not take over the stale lock ${lockPath} of ${describeHolder(holder)}`);
    }
    takeOver(dir, lockPath, holder, self);
    tookOverFrom = holder;
  }
  heldHere.set(lockPath, self.token);
  let released = false;
  return {
    lockPath,
    holder: self,
    tookOverFrom,
    release() {
      if (released) return;
      released = true;
      heldHere.delete(lockPath);
      const found = readHolder(lockPath);
      if (found?.holder?.token === self.token) unlinkSync(lockPath);
    },
  };
}

/**
 * Removes `stale`, the lock of a holder that is gone, under the takeover guard: only the guard's
 * holder removes a lock, and only after reading, under the guard, that it is still that stale
 * one. The caller then creates its own lock like any starter (and may lose that race, fairly).
 */
function takeOver(dir: string, lockPath: string, stale: LockHolder, self: LockHolder): void {
  const guardPath = `${lockPath}.takeover`;
  if (!createExclusive(guardPath, self)) {
    const guard = readHolder(guardPath);
    if (!guard) return; // another takeover just finished: the caller tries again
    if (guard.holder && guard.holder.host === self.host && isAlive(guard.holder)) {
      sleepSync(10); // a takeover takes microseconds: look again after it
      return;
    }
    throw new DataDirLockedError(dir, lockPath, 'takeover_pending', guard.holder,
      `a takeover of the stale lock of ${dir} was interrupted (${guardPath}); if no Taskflow process is starting on this directory, remove that file`);
  }
  try {
    const current = readHolder(lockPath);
    if (current?.holder?.token === stale.token) unlinkSync(lockPath);
  } finally {
    unlinkSync(guardPath);
  }
}
