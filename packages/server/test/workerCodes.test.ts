/**
 * The codes a worker branches on when the service no longer counts it active: a lost worker's
 * claim answers `409 worker_lost` (heartbeat, then claim again), a deregistered worker's claim
 * and heartbeat `409 worker_stopped` (register again). Each answer is checked against the
 * problem the contract enumerates for its route and status, and the served OpenAPI document
 * states those codes. Deregister refuses a body with an unknown field, as every route does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Value } from 'typebox/value';
import { routes, type RouteDef } from '@taskflow/contracts';
import { TaskflowApiError, type TaskflowClient } from '@taskflow/sdk';
import { startTestService, type TestService } from './support/service.ts';

async function apiError(p: Promise<unknown>): Promise<TaskflowApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TaskflowApiError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

/** The problem the contract states for this route and status; fails when it states none. */
function contractProblem(name: keyof typeof routes, status: number) {
  const schema = (routes[name] as RouteDef).problems?.[status];
  if (!schema) throw new Error(`the contract states no ${status} problem for ${name}`);
  return schema;
}

describe('worker codes: lost and stopped', () => {
  let svc: TestService;
  let worker: TaskflowClient;
  beforeAll(async () => {
    svc = await startTestService('pglite', { workerTtlMs: 300, rescueIntervalMs: 50 });
    worker = await svc.clientWith(['worker']);
  });
  afterAll(async () => {
    await worker?.close();
    await svc?.stop();
  });

  it('answers a lost worker\'s claim 409 worker_lost; its heartbeat brings it back', async () => {
    const w = await worker.registerWorker({ name: 'goes quiet', queues: ['codes.lost'] });
    // No heartbeat: the rescuer marks it lost once its deadline passes.
    while ((await worker.getWorker(w.id)).state !== 'lost') await new Promise((r) => setTimeout(r, 20));
    const err = await apiError(worker.claim(w.id, { max: 1, waitMs: 5000 }));
    expect(err.status).toBe(409);
    expect(err.problem).toMatchObject({ code: 'worker_lost', type: 'urn:taskflow:problem:worker_lost', detail: expect.stringContaining('heartbeat, then claim again') });
    expect(Value.Check(contractProblem('claim', 409), err.problem)).toBe(true);
    expect(await worker.heartbeat(w.id)).toEqual({ held: [], cancel: [] });
    expect((await worker.getWorker(w.id)).state).toBe('active');
    expect(await worker.claim(w.id, { max: 1, waitMs: 0 })).toEqual({ tasks: [] });
  });

  it('answers a deregistered worker\'s claim and heartbeat 409 worker_stopped', async () => {
    const w = await worker.registerWorker({ name: 'leaves', queues: ['codes.stopped'] });
    await worker.deregisterWorker(w.id);
    const claim = await apiError(worker.claim(w.id, { max: 1, waitMs: 0 }));
    const beat = await apiError(worker.heartbeat(w.id));
    for (const [name, err] of [['claim', claim], ['heartbeat', beat]] as const) {
      expect(err.status).toBe(409);
      expect(err.problem).toMatchObject({ code: 'worker_stopped', detail: expect.stringContaining('register again') });
      expect(Value.Check(contractProblem(name, 409), err.problem)).toBe(true);
    }
    // A code the route does not list is not a valid answer of it.
    expect(Value.Check(contractProblem('heartbeat', 409), { ...beat.problem, code: 'worker_lost' })).toBe(false);
  });

  it('states the codes in the served OpenAPI document', async () => {
    const doc = (await (await fetch(`${svc.url}/api/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: { properties: { code: { enum?: string[] } } } }> }> }>>;
    };
    const codes = (path: string, method: string) =>
      Object.values(doc.paths[path]![method]!.responses['409']!.content)[0]!.schema.properties.code.enum;
    expect(codes('/api/v1/workers/{id}/claim', 'post')).toEqual(['worker_lost', 'worker_stopped']);
    expect(codes('/api/v1/workers/{id}/heartbeat', 'post')).toEqual(['worker_stopped']);
    expect(codes('/api/v1/workers/{id}/tasks/{taskId}/result', 'post')).toEqual(['stale_attempt']);
  });

  it('refuses a deregister body with an unknown field, naming it, and deregisters nothing', async () => {
    const w = await worker.registerWorker({ name: 'stays', queues: ['codes.body'] });
    const res = await fetch(`${svc.url}/api/v1/workers/${w.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${svc.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ force: true }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'validation_failed', detail: '/body/force is not a known field', errors: [{ field: '/body/force' }] });
    expect((await worker.getWorker(w.id)).state).toBe('active');
    // Without a body, or with an empty object, it deregisters.
    const empty = await fetch(`${svc.url}/api/v1/workers/${w.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${svc.adminKey}` } });
    expect([empty.status, await empty.json()]).toEqual([200, { released: 0 }]);
    expect(await worker.deregisterWorker(w.id)).toEqual({ released: 0 });
  });
});
