/**
 * The data directory's lock (src/db/dataDirLock.ts), on real files: held, refused, stale and
 * taken over. The process-level behaviour (a second `taskflow start`, a SIGKILL) is in
 * test/dataDirLock.test.ts at the root.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataDirLockedError, lockDataDir, type LockHolder } from '../src/index.ts';

const root = mkdtempSync(join(tmpdir(), 'taskflow-lock-'));
const freshDir = () => mkdtempSync(join(root, 'dir-'));

afterAll(() => rmSync(root, { recursive: true, force: true }));

function writeLock(dir: string, holder: Partial<LockHolder> | string): void {
  const text = typeof holder === 'string' ? holder : JSON.stringify({ host: hostname(), startedAt: '2026-01-01T00:00:00.000Z', token: 'abc', ...holder });
  writeFileSync(join(dir, 'taskflow.lock'), text);
}

function lockFile(dir: string): LockHolder {
  return JSON.parse(readFileSync(join(dir, 'taskflow.lock'), 'utf8')) as LockHolder;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

/** Linux: the start time of `pid` as /proc/<pid>/stat gives it. */
function processStart(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

function refusal(fn: () => unknown): DataDirLockedError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DataDirLockedError) return err;
    throw err;
  }
  throw new Error('expected a DataDirLockedError');
}

describe('the data directory lock', () => {
  it('names this process in the lock file, refuses a second open in the same process, and is free once released', () => {
    const dir = freshDir();
    const lock = lockDataDir(dir);
    expect(lockFile(dir)).toMatchObject({ pid: process.pid, host: hostname(), token: lock.holder.token });
    const err = refusal(() => lockDataDir(dir));
    expect(err.reason).toBe('held');
    expect(err.message).toContain('already open in this process');
    lock.release();
    expect(existsSync(join(dir, 'taskflow.lock'))).toBe(false);
    lockDataDir(dir).release();
  });

  it('refuses a lock held by a live process of this host, naming its pid, host and start time', () => {
    const dir = freshDir();
    const ppid = process.ppid;
    writeLock(dir, { pid: ppid, startedAt: '2026-12-01T10:00:00.000Z', bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), processStart: processStart(ppid) });
    const err = refusal(() => lockDataDir(dir));
    expect(err.reason).toBe('held');
    expect(err.message).toContain(`pid ${ppid} on host ${hostname()}, started 2026-12-01T10:00:00.000Z`);
    expect(lockFile(dir).pid).toBe(ppid); // untouched
  });

  it('takes over the lock of a process that is gone', async () => {
    const dir = freshDir();
    const pid = await deadPid();
    writeLock(dir, { pid });
    const lock = lockDataDir(dir);
    expect(lock.tookOverFrom?.pid).toBe(pid);
    expect(lockFile(dir)).toMatchObject({ pid: process.pid, token: lock.holder.token });
    expect(existsSync(join(dir, 'taskflow.lock.takeover'))).toBe(false);
    lock.release();
  });

  it('takes over a lock whose pid is alive but is another process (a reused pid, another boot)', () => {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const reused = freshDir();
    writeLock(reused, { pid: process.ppid, bootId, processStart: '1' });
    const a = lockDataDir(reused);
    expect(a.tookOverFrom?.pid).toBe(process.ppid);
    a.release();
    const rebooted = freshDir();
    writeLock(rebooted, { pid: process.ppid, bootId: 'another-boot', processStart: processStart(process.ppid) });
    const b = lockDataDir(rebooted);
    expect(b.tookOverFrom?.pid).toBe(process.ppid);
    b.release();
  });

  it('takes over the lock of an earlier run of this pid (a container restarted as pid 1)', () => {
    const dir = freshDir();
    writeLock(dir, { pid: process.pid, token: 'an-earlier-run' });
    const lock = lockDataDir(dir);
    expect(lock.tookOverFrom?.token).toBe('an-earlier-run');
    lock.release();
  });

  it('refuses, with the file to remove, a lock from another host and a lock it cannot read', async () => {
    const other = freshDir();
    writeLock(other, { pid: await deadPid(), host: 'another-host' });
    const e1 = refusal(() => lockDataDir(other));
    expect(e1.reason).toBe('other_host');
    expect(e1.message).toContain('another-host');
    expect(e1.message).toContain(`remove ${join(other, 'taskflow.lock')}`);

    const garbled = freshDir();
    writeLock(garbled, 'not json');
    const e2 = refusal(() => lockDataDir(garbled));
    expect(e2.reason).toBe('unreadable');
    expect(e2.message).toContain(join(garbled, 'taskflow.lock'));
  });

  it('refuses when a takeover was interrupted (its guard left by a process that is gone)', async () => {
    const dir = freshDir();
    const pid = await deadPid();
    writeLock(dir, { pid });
    writeFileSync(join(dir, 'taskflow.lock.takeover'), JSON.stringify({ pid, host: hostname(), startedAt: 'x', token: 'g' }));
    const err = refusal(() => lockDataDir(dir));
    expect(err.reason).toBe('takeover_pending');
    expect(err.message).toContain(join(dir, 'taskflow.lock.takeover'));
  });

  it('release leaves a lock that is no longer this holder\'s', () => {
    const dir = freshDir();
    const lock = lockDataDir(dir);
    writeLock(dir, { pid: process.ppid, token: 'someone-else' });
    lock.release();
    expect(lockFile(dir).token).toBe('someone-else');
  });
});
