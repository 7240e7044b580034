/**
 * The client's transport: one HTTP exchange per call of a route of the contract's table, with
 * its retries. Requests go through an undici Agent with keep-alive connections: the WHATWG
 * `fetch` layer on top of it cost the worker more CPU than its own work (bench/README.md).
 */
import { Agent, request, type Dispatcher } from 'undici';
import { routes, type RouteDef, type RouteName, type Routes, type Static, type TSchema } from '@taskflow/contracts';
import type * as C from '@taskflow/contracts';
import { TaskflowApiError, TaskflowNetworkError } from './errors.ts';
import { mayHaveBeenSent, nextWait, parseRetryAfter, retryPolicy, type RetryMode, type RetryOptions, type RetryPolicy } from './retry.ts';

export type Part<S> = S extends TSchema ? Static<S> : undefined;
export type Success<R extends RouteDef> = { [S in keyof R['response']]: S extends 200 | 201 ? Static<R['response'][S]> : never }[keyof R['response']];

/** What `call` takes for a route: only the parts the route has. */
export type CallInput<R extends RouteDef> = (R['params'] extends TSchema ? { params: Part<R['params']> } : { params?: undefined }) &
  (R['querystring'] extends TSchema ? { query?: Part<R['querystring']> } : { query?: undefined }) &
  (R['body'] extends TSchema ? { body: Part<R['body']> } : { body?: undefined });

export interface CallOptions {
  signal?: AbortSignal;
  /** Extra time the server may hold the request (long-poll), ms. */
  waitMs?: number;
  /** Extra request headers (a route's `headers`, e.g. `prefer`). */
  headers?: Record<string, string>;
}

export interface TransportOptions {
  url: string;
  apiKey: string;
  /** @defaultValue 30000 */
  timeoutMs?: number;
  dispatcher?: Dispatcher;
  retry?: RetryOptions | false;
}

/** Sends the requests of a TaskflowClient: headers, timeouts, retries and error answers. */
export class Transport {
  readonly url: string;
  private readonly timeoutMs: number;
  private readonly dispatcher: Dispatcher;
  private readonly ownDispatcher: boolean;
  private readonly headers: Record<string, string>;
  private readonly jsonHeaders: Record<string, string>;
  private readonly retry: RetryPolicy;

  constructor(opts: TransportOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.ownDispatcher = !opts.dispatcher;
    this.headers = { authorization: `Bearer ${opts.apiKey}`, accept: 'application/json' };
    this.jsonHeaders = { ...this.headers, 'content-type': 'application/json' };
    // No timeouts on the agent: each request sets undici's own (see `send`), long polls included.
    this.dispatcher = opts.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
    this.retry = retryPolicy(opts.retry);
  }

  /** Closes the connections, unless the dispatcher was passed in. */
  async close(): Promise<void> {
    if (this.ownDispatcher) await this.dispatcher.close();
  }

  /**
   * Calls any route of the contract. Non-2xx answers throw TaskflowApiError. Reads (GET) retry
   * as `retry` says; other routes do not (the typed methods below retry what is safe).
   */
  async call<K extends RouteName>(name: K, input: CallInput<Routes[K]>, opts: CallOptions = {}): Promise<Success<Routes[K]>> {
    const def: RouteDef = routes[name];
    const { params, query, body } = input as { params?: Record<string, string>; query?: Record<string, unknown>; body?: unknown };
    let path = params ? fillPath(def.path, params) : def.path;
    const qs = query ? toQuery(query) : '';
    if (qs) path += `?${qs}`;
    return this.send(name, path, body === undefined ? undefined : JSON.stringify(body), opts, def.method === 'GET' ? 'idempotent' : 'none');
  }

  /**
   * One call: `body` is the JSON text of the request body, if any. Sent again after a failure
   * that `retry` (retry.ts) says is safe to repeat in this mode; the error that ends the call
   * says why it was not retried, or how many attempts it made.
   */
  async send<K extends RouteName>(
    name: K, path: string, body: string | undefined, opts: CallOptions = {}, retry: RetryMode = 'none',
  ): Promise<Success<Routes[K]>> {
    const def: RouteDef = routes[name];
    // Timeouts are undici's own (no timer and signal objects per call: on the hot path they
    // cost more than the request); a long poll extends the wait for the answer's headers.
    const base = body === undefined ? this.headers : this.jsonHeaders;
    const headers = opts.headers ? { ...base, ...opts.headers } : base;
    const startedAt = performance.now();
    for (let attempt = 1; ; attempt++) {
      let status = 0;
      let text = '';
      let failure: TaskflowApiError | TaskflowNetworkError | undefined;
      try {
        const res = await request(this.url + path, {
          method: def.method,
          headers,
          body,
          signal: opts.signal,
          headersTimeout: this.timeoutMs + (opts.waitMs ?? 0),
          bodyTimeout: this.timeoutMs,
          dispatcher: this.dispatcher,
        });
        status = res.statusCode;
        text = await res.body.text();
        if (status < 200 || status >= 300) failure = apiError(def.method, path, status, text, res.headers['retry-after']);
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? err;
        failure = new TaskflowNetworkError(`${def.method} ${path}: ${(err as Error).message}`, { cause: err, requestSent: mayHaveBeenSent(err) });
      }
      if (!failure) return (text ? JSON.parse(text) : undefined) as Success<Routes[K]>;
      const wait = nextWait(this.retry, retry, failure, attempt, performance.now() - startedAt);
      if (typeof wait !== 'number') {
        failure.attempts = attempt;
        if (wait) failure.message += `; ${wait}`;
        throw failure;
      }
      await sleep(wait, opts.signal);
      if (opts.signal?.aborted) throw opts.signal.reason ?? failure;
    }
  }
}

/** The problem an error answer carries (or a plain error for a body that is not one). */
function apiError(method: string, path: string, status: number, text: string, retryAfter: string | string[] | undefined): TaskflowApiError {
  let problem: C.Problem | undefined;
  try {
    problem = JSON.parse(text) as C.Problem;
  } catch {
    problem = undefined;
  }
  return new TaskflowApiError(status, problem?.code ? problem : undefined, `${method} ${path}: HTTP ${status} ${text.slice(0, 200)}`, {
    retryAfterMs: parseRetryAfter(retryAfter),
  });
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** `/api/v1/tasks/:id` with `{id: '7'}` → `/api/v1/tasks/7` (each value URL-encoded). */
function fillPath(template: string, params: Record<string, string>): string {
  let out = '';
  let at = 0;
  for (let i = template.indexOf(':'); i !== -1; i = template.indexOf(':', at)) {
    let end = i + 1;
    while (end < template.length && template[end] !== '/') end++;
    out += template.slice(at, i) + encodeURIComponent(String(params[template.slice(i + 1, end)]));
    at = end;
  }
  return out + template.slice(at);
}

function toQuery(query: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(item))}`);
  }
  return parts.join('&');
}
