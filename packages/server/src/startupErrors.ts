/**
 * The one place a failure of a `taskflow` command becomes what the user reads: one line that
 * says what failed and which setting or flag to check, and an exit code per class of failure
 * (docs/operations.md, "Exit codes"). The stack is for `--verbose` (or LOG_LEVEL=debug);
 * only a failure no class describes, a bug, prints it always.
 */
import { DatabaseUnavailableError, DataDirError, DataDirLockedError, SchemaTooNewError, sqlState } from '@taskflow/core';
import type { TaskflowApiError, TaskflowNetworkError } from '@taskflow/sdk';
import { ConfigError } from './config.ts';

/** Exit codes of the `taskflow` command, one per class of failure. */
export const EXIT = {
  ok: 0,
  /** Anything no class below describes: a bug. The stack is printed. */
  unexpected: 1,
  /** An invalid variable or flag, or a missing one. */
  config: 2,
  /** PostgreSQL (or, for `worker`, the service) could not be reached. */
  unreachable: 3,
  /** PostgreSQL refused the role, password or database; the service refused the API key. */
  refused: 4,
  /** The HTTP port cannot be listened on (in use, not permitted, no such address). */
  listen: 5,
  /** The data directory is a file, cannot be created or written, or PGlite cannot open it. */
  dataDir: 6,
  /** Another live process holds the data directory (or its lock cannot be judged). */
  dataDirLocked: 7,
  /** The database was migrated by a newer build. */
  schemaTooNew: 8,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** What the command knows when it fails: enough to name the setting at fault. */
export interface FailureContext {
  command?: string;
  databaseUrl?: string;
  host?: string;
  port?: number;
  /** `worker`: the service's URL. */
  url?: string;
  /** `worker`: the SDK's error classes, once it is loaded (`start` does not load the SDK). */
  sdk?: { TaskflowApiError: typeof TaskflowApiError; TaskflowNetworkError: typeof TaskflowNetworkError };
}

export interface Explained {
  exitCode: ExitCode;
  /** One line, without the `taskflow: ` prefix. */
  message: string;
  /** The stack is worth printing whatever the verbosity (an unexpected failure). */
  showStack: boolean;
}

const DATABASE_URL = 'check DATABASE_URL (or --database-url)';
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);

/** Turns a failure into its line and exit code. */
export function explainFailure(err: unknown, ctx: FailureContext = {}): Explained {
  const known = (exitCode: ExitCode, message: string): Explained => ({ exitCode, message, showStack: false });
  if (err instanceof ConfigError) return known(EXIT.config, err.message);
  if (err instanceof DataDirLockedError) {
    const fix = err.reason === 'held' ? 'stop that process, or use another TASKFLOW_DATA_DIR (or --data-dir)' : 'check TASKFLOW_DATA_DIR (or --data-dir)';
    return known(EXIT.dataDirLocked, `${err.message}; ${fix}`);
  }
  if (err instanceof DataDirError) return known(EXIT.dataDir, `the data directory cannot be used: ${err.message}; check TASKFLOW_DATA_DIR (or --data-dir)`);
  if (err instanceof SchemaTooNewError) return known(EXIT.schemaTooNew, err.message);
  const listen = listenFailure(err, ctx);
  if (listen) return known(EXIT.listen, listen);
  if (ctx.sdk) {
    const service = serviceFailure(err, ctx);
    if (service) return service;
  }
  if (ctx.databaseUrl) {
    const db = databaseFailure(err, ctx.databaseUrl);
    if (db) return db;
  }
  const e = err as Error;
  return { exitCode: EXIT.unexpected, message: `unexpected error: ${e?.stack ? `${e.name}: ${e.message}` : String(err)}`, showStack: true };
}

/** The server's socket: EADDRINUSE, EACCES (a port below 1024), EADDRNOTAVAIL, a host name that does not resolve. */
function listenFailure(err: unknown, ctx: FailureContext): string | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
  const where = `${ctx.host ?? e.address}:${ctx.port ?? e.port}`;
  if (e?.syscall === 'listen' || e?.code === 'EADDRINUSE') {
    switch (e.code) {
      case 'EADDRINUSE':
        return `port ${ctx.port ?? e.port} on ${ctx.host ?? e.address} is already in use (another process listens on it): stop that process or choose another port with PORT (or --port)`;
      case 'EACCES':
        return `not permitted to listen on ${where} (ports below 1024 need privileges): choose another port with PORT (or --port)`;
      case 'EADDRNOTAVAIL':
        return `cannot listen on ${where}: no network interface of this machine has that address; check HOST (or --host)`;
      default:
        return `cannot listen on ${where} (${e.code ?? e.message}): check HOST and PORT (or --host and --port)`;
    }
  }
  if (ctx.host && e?.syscall === 'getaddrinfo' && e.hostname === ctx.host) {
    return `cannot listen on ${where}: the host name ${ctx.host} does not resolve (${e.code}); check HOST (or --host)`;
  }
  return undefined;
}

/** PostgreSQL at start: unreachable, or refusing the role, password or database. */
function databaseFailure(failure: unknown, databaseUrl: string): Explained | undefined {
  // The drivers wrap what makes the database unavailable; the driver's own error says why.
  const err = failure instanceof DatabaseUnavailableError && failure.cause !== undefined ? failure.cause : failure;
  const at = describeUrl(databaseUrl);
  const e = err as NodeJS.ErrnoException & { message?: string };
  const code = e?.code;
  const state = sqlState(err);
  const one = (exitCode: ExitCode, message: string): Explained => ({ exitCode, message, showStack: false });
  if (code && NETWORK_CODES.has(code)) {
    return one(EXIT.unreachable, `cannot reach PostgreSQL at ${at.server} (${code}${code === 'ECONNREFUSED' ? ': nothing listens there' : ''}): is it running? ${DATABASE_URL}`);
  }
  if (!state && /Connection terminated|timeout expired/i.test(e?.message ?? '')) {
    return one(EXIT.unreachable, `PostgreSQL at ${at.server} closed the connection while connecting (${e.message}): ${DATABASE_URL}`);
  }
  if (!state) return undefined;
  if (state === '28000' || state === '28P01') {
    return one(EXIT.refused, `PostgreSQL at ${at.server} refused role "${at.user}": ${e.message}; ${DATABASE_URL}`);
  }
  if (state === '3D000') return one(EXIT.refused, `PostgreSQL at ${at.server} has no database "${at.database}": ${e.message}; ${DATABASE_URL}`);
  if (state === '42501') {
    return one(EXIT.refused, `PostgreSQL refused role "${at.user}" a right Taskflow needs to set up its schema (${e.message}); grant it, or ${DATABASE_URL}`);
  }
  if (state === '53300' || state === '57P03') {
    return one(EXIT.unreachable, `PostgreSQL at ${at.server} accepts no connection now (${e.message}): ${DATABASE_URL}, and its max_connections against DATABASE_POOL_SIZE`);
  }
  return undefined;
}

/** `taskflow worker`: the service unreachable, or refusing the API key. */
function serviceFailure(err: unknown, ctx: FailureContext): Explained | undefined {
  const { TaskflowApiError, TaskflowNetworkError } = ctx.sdk!;
  const url = ctx.url ?? 'the service';
  if (err instanceof TaskflowNetworkError) {
    return { exitCode: EXIT.unreachable, message: `cannot reach the Taskflow service at ${url} (${err.message}): is it running? check TASKFLOW_URL (or --url)`, showStack: false };
  }
  if (err instanceof TaskflowApiError) {
    if (err.status === 401) {
      return { exitCode: EXIT.refused, message: `the service at ${url} refused the API key (${err.message}): check TASKFLOW_API_KEY (or --api-key)`, showStack: false };
    }
    if (err.status === 403) {
      return { exitCode: EXIT.refused, message: `the API key has no worker scope (${err.message}): use a key with scope "worker" in TASKFLOW_API_KEY (or --api-key)`, showStack: false };
    }
    return { exitCode: EXIT.unreachable, message: `the service at ${url} answered ${err.status} (${err.message}): is TASKFLOW_URL (or --url) a Taskflow service?`, showStack: false };
  }
  return undefined;
}

/** The parts of a connection string worth naming, never its password. */
function describeUrl(databaseUrl: string): { server: string; user: string; database: string } {
  try {
    const u = new URL(databaseUrl);
    const host = u.hostname || 'localhost';
    return {
      server: `${host}:${u.port || '5432'}`,
      user: decodeURIComponent(u.username) || '(default)',
      database: decodeURIComponent(u.pathname.slice(1)) || decodeURIComponent(u.username) || '(default)',
    };
  } catch {
    return { server: '(unparsable DATABASE_URL)', user: '?', database: '?' };
  }
}

/** The stack of `err` and of its causes, for --verbose. */
export function fullStack(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    parts.push(depth === 0 ? String((e as Error).stack ?? e) : `caused by: ${String((e as Error).stack ?? e)}`);
    e = (e as { cause?: unknown }).cause;
  }
  return parts.join('\n');
}
