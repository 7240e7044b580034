/**
 * How an error is written to the log: pino's `err` serializer for the server (every request's,
 * every background loop's and every driver's error goes through it). A person reads the
 * message, the SQLSTATE and the name of the statement that failed; never the objects a driver
 * hangs on its errors (node-postgres's pool puts the whole client, with the text of every
 * prepared statement, on `err.client`), never SQL text or the values bound to it, and no line
 * over 2 KB.
 */
import { statementOf } from './errors.ts';

/** A logged error: the fields a person needs, each bounded. */
export interface LoggedError {
  type: string;
  message: string;
  /** The stable code of a Taskflow error, or a SQLSTATE, or a driver's code (ECONNREFUSED). */
  code?: string;
  /** The named statement (`tf_task_claim`) that failed. */
  statement?: string;
  /** PostgreSQL's severity, detail and hint, for a database error. */
  severity?: string;
  detail?: string;
  hint?: string;
  stack?: string;
  cause?: LoggedError;
}

const MAX_MESSAGE = 300;
const MAX_STACK_LINES = 5;
const MAX_CAUSES = 2;

function bounded(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}

/** The stack's frames without its first line (the message, written once already), a few of them. */
function frames(stack: string): string | undefined {
  const lines = stack.split('\n').filter((l) => /^\s+at /.test(l));
  if (lines.length === 0) return undefined;
  return lines.slice(0, MAX_STACK_LINES).map((l) => bounded(l.trim(), 120)).join('\n');
}

/**
 * An error as the log shows it, at most about 1.5 KB. Availability errors (which happen by the
 * hundred in an outage and say everything in their message) carry no stack; a bug's error does.
 */
export function errorLog(err: unknown, depth = 0): LoggedError {
  if (!(err instanceof Error)) {
    const text = typeof err === 'string' ? err : safeJson(err);
    return { type: typeof err, message: bounded(text, MAX_MESSAGE) };
  }
  const e = err as Error & { code?: unknown; severity?: unknown; detail?: unknown; hint?: unknown; sqlState?: unknown };
  const out: LoggedError = { type: e.name || e.constructor?.name || 'Error', message: bounded(e.message ?? '', MAX_MESSAGE) };
  const code = typeof e.sqlState === 'string' ? e.sqlState : typeof e.code === 'string' ? e.code : undefined;
  if (code !== undefined) out.code = bounded(code, 60);
  const statement = statementOf(err);
  if (statement !== undefined) out.statement = statement;
  if (typeof e.severity === 'string') out.severity = e.severity;
  if (typeof e.detail === 'string') out.detail = bounded(e.detail, 200);
  if (typeof e.hint === 'string') out.hint = bounded(e.hint, 200);
  // The stack of the error logged, not of its causes: it says where; the causes say why.
  const quiet = e.name === 'DatabaseUnavailableError' || depth > 0;
  if (!quiet && typeof e.stack === 'string') {
    const stack = frames(e.stack);
    if (stack) out.stack = stack;
  }
  if (e.cause !== undefined && depth < MAX_CAUSES) out.cause = errorLog(e.cause, depth + 1);
  return out;
}

function safeJson(value: unknown): string {
  try {
    return String(JSON.stringify(value));
  } catch {
    return String(value);
  }
}
