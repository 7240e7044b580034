/**
 * The SDK worker's results on their own, without a service: the request body a batch becomes
 * (compact successes, and the map back from a refused item to its task), and what a failed
 * claim leaves of the results it carried.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { TaskResult } from '@taskflow/contracts';
import { TaskflowApiError, TaskflowNetworkError } from '../src/errors.ts';
import { WorkerSession } from '../src/lifecycle.ts';
import { reportBody, ResultQueue } from '../src/results.ts';
import type { TaskflowClient } from '../src/client.ts';
import type { WorkerEvents } from '../src/worker.ts';

const quiet = { info() {}, warn() {}, error() {} };
const ok = (id: string, attempt = 1): TaskResult => ({ id, attempt, status: 'succeeded', result: null });

describe('reportBody', () => {
  it('sends successes with no result and no logs compact, the rest in full, in batch order', () => {
    const batch: TaskResult[] = [
      ok('a'),
      { id: 'b', attempt: 2, status: 'succeeded', result: { n: 1 } },
      { id: 'c', attempt: 1, status: 'succeeded', result: undefined },
      { id: 'd', attempt: 3, status: 'failed', error: { message: 'boom' } },
      { id: 'e', attempt: 1, status: 'succeeded', result: null, logs: [{ at: '2024-01-01T00:00:00.000Z', level: 'info', message: 'x' }] },
      ok('f', 4),
    ];
    const { body, fullIndex } = reportBody(batch);
    expect(body.succeeded).toBe('a:1,c:1,f:4');
    expect(body.results?.map((r) => r.id)).toEqual(['b', 'd', 'e']);
    expect(fullIndex).toEqual([1, 3, 4]);
  });

  it('leaves out the parts a batch does not have', () => {
    expect(reportBody([])).toEqual({ body: {}, fullIndex: [] });
    expect(reportBody([ok('a')]).body).toEqual({ succeeded: 'a:1' });
    expect(Object.keys(reportBody([{ id: 'b', attempt: 1, status: 'released' }]).body)).toEqual(['results']);
  });
});

describe('ResultQueue.restore (results a failed claim carried)', () => {
  function queue(): ResultQueue {
    return new ResultQueue({
      client: {} as TaskflowClient, session: new WorkerSession(), log: quiet, events: new EventEmitter<WorkerEvents>(),
    });
  }
  const problem = (status: number, errors: { field: string; message: string }[] = []) =>
    new TaskflowApiError(status, { type: 'urn:x', title: 'Refused', status, detail: 'too big', code: 'payload_too_large', errors }, 'refused');

  it('turns the items a 400 or 413 names into failures and keeps the batch, ahead of newer results', () => {
    const q = queue();
    q.add(ok('newer'));
    const batch = [ok('a'), { id: 'b', attempt: 1, status: 'succeeded', result: 'x'.repeat(10) } as TaskResult];
    const { fullIndex } = reportBody(batch);
    q.restore(problem(413, [{ field: '/body/results/0/result', message: 'is too large' }]), batch, fullIndex);
    const kept = q.take();
    expect(kept.map((r) => [r.id, r.status])).toEqual([['a', 'succeeded'], ['b', 'failed'], ['newer', 'succeeded']]);
    expect(kept[1]).toMatchObject({ retryable: false, error: { message: expect.stringContaining('the service refused this result') } });
  });

  it('drops them after a 404 (unknown worker) or a 409 (already settled)', () => {
    const q = queue();
    q.restore(problem(404), [ok('a')], []);
    q.restore(problem(409), [ok('b')], []);
    expect(q.size).toBe(0);
  });

  it('keeps them after a network error or a 5xx, to go again', () => {
    const q = queue();
    q.restore(new TaskflowNetworkError('reset'), [ok('a')], []);
    q.restore(problem(503), [ok('b')], []);
    expect(q.take().map((r) => r.id)).toEqual(['b', 'a']);
  });
});
