/**
 * Helpers for testing code that uses Taskflow, shipped with the SDK (`@taskflow/sdk/testing`).
 * - runTaskOnce: run a handler the way the worker would, without a service.
 * - expectEnqueued: assert that a task was submitted to a real service.
 */
import { failure, type TaskContext, type TaskHandler } from './worker.ts';
import type { TaskflowClient } from './client.ts';
import type { Task, TaskState } from '@taskflow/contracts';

export type RunOutcome =
  | { status: 'succeeded'; result: unknown; logs: string[] }
  | { status: 'failed'; error: { message: string; stack?: string | null }; retryable: boolean; retryAfterMs?: number; logs: string[] };

/** Runs `handler` once with `payload` and a context like the worker's; reports what the worker would. */
export async function runTaskOnce(handler: TaskHandler, payload: unknown, ctx: Partial<Omit<TaskContext, 'log'>> = {}): Promise<RunOutcome> {
  const logs: string[] = [];
  const context: TaskContext = {
    id: '1', type: 'test', queue: 'default', attempt: 1, attemptsLeft: 4, priority: 0, tags: [],
    createdAt: new Date(), contentType: null, parents: {}, signal: new AbortController().signal,
    ...ctx,
    log: (message) => void logs.push(message),
  };
  try {
    const value = await handler(payload, context);
    return { status: 'succeeded', result: value === undefined ? null : value, logs };
  } catch (err) {
    const f = failure(err);
    return { status: 'failed', error: f.error!, retryable: f.retryable ?? true, ...(f.retryAfterMs !== undefined ? { retryAfterMs: f.retryAfterMs } : {}), logs };
  }
}

export interface EnqueuedMatch {
  type: string;
  queue?: string;
  state?: TaskState;
  /** Deep subset of the payload, or a predicate on it. */
  payload?: Record<string, unknown> | ((payload: unknown) => boolean);
}

/** Resolves with the newest task matching `match` (among the latest 500); throws if none. */
export async function expectEnqueued(client: TaskflowClient, match: EnqueuedMatch): Promise<Task> {
  const page = await client.listTasks({ type: match.type, queue: match.queue, state: match.state ? [match.state] : undefined, limit: 500 });
  const found = page.items.find((t) => payloadMatches(t.payload, match.payload));
  if (!found) {
    throw new Error(`expected a task of type "${match.type}"${match.queue ? ` in queue "${match.queue}"` : ''} matching ${describe(match.payload)}; found ${page.items.length} of that type, none matching`);
  }
  return found;
}

function payloadMatches(payload: unknown, want: EnqueuedMatch['payload']): boolean {
  if (want === undefined) return true;
  if (typeof want === 'function') return want(payload);
  return isSubset(payload, want);
}

function isSubset(actual: unknown, expected: unknown): boolean {
  if (expected === null || typeof expected !== 'object') return Object.is(actual, expected);
  if (actual === null || typeof actual !== 'object') return false;
  if (Array.isArray(expected)) return Array.isArray(actual) && expected.length === actual.length && expected.every((e, i) => isSubset(actual[i], e));
  return Object.entries(expected).every(([k, v]) => isSubset((actual as Record<string, unknown>)[k], v));
}

function describe(want: EnqueuedMatch['payload']): string {
  return want === undefined ? 'any payload' : typeof want === 'function' ? 'the predicate' : JSON.stringify(want);
}
