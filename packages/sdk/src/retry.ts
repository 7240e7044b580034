/**
 * When a client call tries again, and how long it waits first. A request is sent again only
 * when doing so cannot make a second task or change anything twice:
 *
 * - `unsent`: the failure says nothing happened at the service. The connection was refused or
 *   the name did not resolve (the request never left), or the service answered 429 (it refused
 *   the request before writing anything). Safe for any request.
 * - `idempotent`: also the failures after which the request may have been carried out: the
 *   connection dropped before the answer, a timeout, 502, 503 (`database_unavailable`: the
 *   database may have committed before the service lost it), 504. Safe only for a request
 *   whose repeat changes nothing: a read, or a submission whose every task carries an
 *   idempotency key (the repeat answers the first task).
 * - `none`: never (the worker's calls, which its loops retry themselves).
 *
 * Waits double from `baseDelayMs` up to `maxDelayMs`, each between half and all of that
 * (jitter, so that clients cut off together do not come back together); an answer's
 * `Retry-After` replaces the wait (plus up to `baseDelayMs` of jitter). A call gives up after
 * `maxAttempts` requests, or when the next wait would end past `maxElapsedMs` from its first
 * request.
 */
import { TaskflowApiError, TaskflowNetworkError } from './errors.ts';

export type RetryMode = 'none' | 'unsent' | 'idempotent';

/** How a client call retries. */
export interface RetryOptions {
  /** Most requests one call makes, the first included (1: never retry). @defaultValue 6 */
  maxAttempts?: number;
  /** Longest a call keeps trying, from its first request, ms; a wait that would end later is not begun. @defaultValue 30000 */
  maxElapsedMs?: number;
  /** The first wait, ms; each retry doubles it. @defaultValue 100 */
  baseDelayMs?: number;
  /** Longest wait between two requests when the service gave no `Retry-After`, ms. @defaultValue 5000 */
  maxDelayMs?: number;
}

export type RetryPolicy = Required<RetryOptions>;

export function retryPolicy(opts: RetryOptions | false | undefined): RetryPolicy {
  if (opts === false) return { maxAttempts: 1, maxElapsedMs: 0, baseDelayMs: 0, maxDelayMs: 0 };
  return {
    maxAttempts: Math.max(1, Math.floor(opts?.maxAttempts ?? 6)),
    maxElapsedMs: Math.max(0, opts?.maxElapsedMs ?? 30_000),
    baseDelayMs: Math.max(0, opts?.baseDelayMs ?? 100),
    maxDelayMs: Math.max(0, opts?.maxDelayMs ?? 5000),
  };
}

/** Failures after which nothing happened at the service, whatever the request. */
function nothingHappened(err: unknown): boolean {
  if (err instanceof TaskflowNetworkError) return !err.requestSent;
  return err instanceof TaskflowApiError && err.status === 429;
}

/** Failures after which the request may or may not have been carried out. */
function outcomeUnknown(err: unknown): boolean {
  if (err instanceof TaskflowNetworkError) return err.requestSent;
  return err instanceof TaskflowApiError && (err.status === 502 || err.status === 503 || err.status === 504);
}

/**
 * The wait before request `attempt + 1` of a call in `mode`, after `err`, `elapsedMs` into
 * it; or, as a string, why it does not try again (undefined: `err` is not one to retry).
 */
export function nextWait(policy: RetryPolicy, mode: RetryMode, err: unknown, attempt: number, elapsedMs: number): number | string | undefined {
  const retryable = nothingHappened(err) || (mode === 'idempotent' && outcomeUnknown(err));
  if (mode === 'none' || !retryable) {
    return mode === 'unsent' && outcomeUnknown(err)
      ? 'not retried: the service may have carried it out, and repeating it could make a second task (give every task an idempotencyKey to make it safe to retry)'
      : undefined;
  }
  if (attempt >= policy.maxAttempts) return `gave up after ${attempt} attempts in ${(elapsedMs / 1000).toFixed(1)} s`;
  const retryAfter = err instanceof TaskflowApiError ? err.retryAfterMs : undefined;
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const wait = retryAfter !== undefined ? retryAfter + Math.random() * policy.baseDelayMs : cap / 2 + (Math.random() * cap) / 2;
  if (elapsedMs + wait > policy.maxElapsedMs) {
    return `gave up after ${attempt} attempts in ${(elapsedMs / 1000).toFixed(1)} s${retryAfter !== undefined ? ` (the service asked for ${Math.ceil(retryAfter / 1000)} s more)` : ''}`;
  }
  return wait;
}

/** `Retry-After` as ms from now: delay-seconds or an HTTP date (RFC 9110); undefined if absent or malformed. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const text = v.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The error codes of a connection that was never made: the request did not leave. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** Whether a failed request may have reached the service (see TaskflowNetworkError.requestSent). */
export function mayHaveBeenSent(err: unknown): boolean {
  const e = err as { code?: unknown; errors?: { code?: unknown }[] } | null;
  const code = e?.code ?? e?.errors?.[0]?.code;
  return !(typeof code === 'string' && NOT_SENT.has(code));
}
