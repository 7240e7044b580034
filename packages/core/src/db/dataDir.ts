/**
 * The embedded data directory on disk: created if missing, refused with a clear error if it
 * cannot be used. Its lock is dataDirLock.ts.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TaskflowError } from '../errors.ts';

export type DataDirProblem = 'not_a_directory' | 'cannot_create' | 'not_writable' | 'cannot_open';

/** The data directory cannot be used: it is a file, cannot be created or written, or PGlite cannot open it. */
export class DataDirError extends TaskflowError {
  readonly path: string;
  readonly problem: DataDirProblem;
  constructor(path: string, problem: DataDirProblem, message: string, options?: ErrorOptions) {
    super('data_dir_unusable', message, options);
    this.path = path;
    this.problem = problem;
  }
}

/**
 * Creates `path` and its missing parents. Node's `mkdirSync(path, { recursive: true })` never
 * returns when a parent exists but the child still gives ENOENT (a path under /proc): it steps
 * back to the parent, which exists, and forward again, forever, at full CPU. Here a child that
 * gives ENOENT once its parent exists is an error.
 */
export function ensureDirectory(path: string): void {
  const dir = resolve(path);
  try {
    mkdirSync(dir);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (!isDirectory(dir)) throw new DataDirError(dir, 'not_a_directory', `${dir} exists and is not a directory`);
      return;
    }
    if (code !== 'ENOENT' || dirname(dir) === dir) throw cannotCreate(dir, err);
  }
  ensureDirectory(dirname(dir));
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && isDirectory(dir)) return;
    throw cannotCreate(dir, err);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function cannotCreate(dir: string, err: unknown): DataDirError {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOTDIR') {
    return new DataDirError(dir, 'not_a_directory', `${dir} cannot be created: a part of its path is a file, not a directory`, { cause: err });
  }
  return new DataDirError(dir, 'cannot_create', `${dir} cannot be created (${e.code ?? e.message})`, { cause: err });
}
