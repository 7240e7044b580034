/**
 * Bad input to the workflow and batch routes, in the style of badInput.test.ts: each case gets
 * its 4xx problem naming the offending field (for a graph: every offending ref), and nothing
 * is written: the workflows, the edges, the tasks and the queues are compared before and after
 * each case.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DriverName } from '@taskflow/core';
import { startTestService, type TestService } from './support/service.ts';

interface Case {
  name: string;
  method: 'GET' | 'POST';
  /** `:wf` is the fixture workflow, `:task` one of its tasks. */
  path: string;
  body?: unknown;
  status: number;
  code: string;
  /** Every field the problem must name, in `detail` and `errors[].field`. */
  fields?: string[];
  /** Text the detail must contain (the refs named). */
  detail?: RegExp;
}

const W = '/api/v1/workflows';
const t = (ref: string, dependsOn?: string[]) => ({ ref, type: 't', queue: 'bad', dependsOn });
const cases: Case[] = [
  { name: 'a cycle', method: 'POST', path: W, body: { name: 'c', tasks: [t('a', ['c']), t('b', ['a']), t('c', ['b']), t('z')] }, status: 400, code: 'invalid_graph', detail: /cycle: "[abc]" → "[abc]" → "[abc]" → "[abc]"/ },
  { name: 'a task depending on itself', method: 'POST', path: W, body: { name: 'c', tasks: [t('a', ['a'])] }, status: 400, code: 'invalid_graph', fields: ['/body/tasks/0/dependsOn/0'], detail: /"a" depends on itself/ },
  { name: 'unknown refs', method: 'POST', path: W, body: { name: 'u', tasks: [t('a'), t('b', ['a', 'ghost']), t('c', ['phantom'])] }, status: 400, code: 'invalid_graph', fields: ['/body/tasks/1/dependsOn/1', '/body/tasks/2/dependsOn/0'], detail: /"ghost".*"phantom"/ },
  { name: 'a duplicate ref', method: 'POST', path: W, body: { name: 'd', tasks: [t('a'), t('b'), t('a')] }, status: 400, code: 'invalid_graph', fields: ['/body/tasks/2/ref'], detail: /"a" of the task at index 0/ },
  { name: 'over 20,000 tasks', method: 'POST', path: W, body: { name: 'big', tasks: Array.from({ length: 20_001 }, (_, i) => t(`r${i}`)) }, status: 400, code: 'validation_failed', fields: ['/body/tasks'] },
  { name: 'no tasks', method: 'POST', path: W, body: { name: 'e', tasks: [] }, status: 400, code: 'validation_failed', fields: ['/body/tasks'] },
  { name: 'a task without a ref', method: 'POST', path: W, body: { name: 'e', tasks: [{ type: 't' }] }, status: 400, code: 'validation_failed', fields: ['/body/tasks/0/ref'] },
  { name: 'an idempotency key in a workflow', method: 'POST', path: W, body: { name: 'k', tasks: [{ ...t('a'), idempotencyKey: 'x' }] }, status: 400, code: 'validation_failed', fields: ['/body/tasks/0/idempotencyKey'] },
  { name: 'a unique key in a workflow', method: 'POST', path: W, body: { name: 'k', tasks: [{ ...t('a'), uniqueKey: 'x' }] }, status: 400, code: 'validation_failed', fields: ['/body/tasks/0/uniqueKey'] },
  { name: 'a unique key in a batch member', method: 'POST', path: '/api/v1/batches', body: { name: 'b', tasks: [{ type: 't', uniqueKey: 'x' }] }, status: 400, code: 'validation_failed', fields: ['/body/tasks/0/uniqueKey'] },
  { name: 'an unknown failure policy', method: 'POST', path: W, body: { name: 'p', failurePolicy: 'shrug', tasks: [t('a')] }, status: 400, code: 'validation_failed', fields: ['/body/failurePolicy'] },
  { name: 'a bad member payload pair', method: 'POST', path: W, body: { name: 'p', tasks: [{ ...t('a'), payload: 1, payloadBase64: 'AA==' }] }, status: 400, code: 'validation_failed', fields: ['/body/tasks/0/payloadBase64'] },
  { name: 'dependsOn an unknown task id', method: 'POST', path: '/api/v1/tasks', body: { type: 't', queue: 'bad', dependsOn: [':task', '999999999'] }, status: 400, code: 'invalid_graph', fields: ['/body/dependsOn/1'], detail: /task 999999999, which does not exist/ },
  { name: 'dependsOn a malformed id', method: 'POST', path: '/api/v1/tasks', body: { type: 't', dependsOn: ['abc'] }, status: 400, code: 'validation_failed', fields: ['/body/dependsOn/0'] },
  { name: 'a batch member with dependsOn', method: 'POST', path: '/api/v1/batches', body: { name: 'b', tasks: [{ type: 't', dependsOn: ['1'] }] }, status: 400, code: 'validation_failed', fields: ['/body/tasks/0/dependsOn'] },
  { name: 'a batch completion with bytes', method: 'POST', path: '/api/v1/batches', body: { name: 'b', tasks: [{ type: 't' }], completion: { type: 'd', payloadBase64: 'AA==' } }, status: 400, code: 'validation_failed', fields: ['/body/completion/payloadBase64'] },
  { name: 'retry of a running workflow', method: 'POST', path: `${W}/:wf/retry`, status: 409, code: 'invalid_state' },
  { name: 'an unknown workflow', method: 'GET', path: `${W}/999999`, status: 404, code: 'not_found' },
  { name: 'a workflow read as a batch', method: 'GET', path: '/api/v1/batches/:wf', status: 404, code: 'not_found' },
  { name: 'a workflow id that is not one', method: 'GET', path: `${W}/abc`, status: 400, code: 'validation_failed', fields: ['/path/id'] },
];

/** Everything a workflow route could write, as one digest. */
async function snapshot(svc: TestService): Promise<string> {
  const { rows } = await svc.service.db.query<{ d: string }>(
    `SELECT concat_ws(':',
        (SELECT md5(coalesce(string_agg(w::text, '|' ORDER BY w.id), '')) FROM workflows w),
        (SELECT md5(coalesce(string_agg(d::text, '|' ORDER BY d.parent, d.child), '')) FROM task_dependencies d),
        (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM tasks t),
        (SELECT count(*) FROM queues)) AS d`,
  );
  return rows[0]!.d;
}

function describeWorkflowBadInput(driver: DriverName): void {
  describe(`bad workflow input gets a 4xx problem and writes nothing (${driver})`, () => {
    let svc: TestService;
    let wf: string;
    let task: string;
    let before: string;

    beforeAll(async () => {
      svc = await startTestService(driver);
      const made = await svc.admin.createWorkflow({ name: 'fixture', tasks: [t('a'), t('b', ['a'])] });
      wf = made.workflow.id;
      task = made.tasks[0]!.id;
      before = await snapshot(svc);
    }, 180_000); // PGlite starts slowly on a busy machine
    afterAll(async () => {
      await svc?.stop();
    });

    it.each(cases)('$name → $status $code', async (c) => {
      const path = c.path.replace(':wf', wf);
      const body = c.body === undefined ? undefined : JSON.stringify(c.body).replace('":task"', `"${task}"`);
      const headers: Record<string, string> = { authorization: `Bearer ${svc.adminKey}` };
      if (body !== undefined) headers['content-type'] = 'application/json';
      const ahead = await snapshot(svc);
      const res = await fetch(svc.url + path, { method: c.method, headers, body });
      const text = await res.text();
      expect(await snapshot(svc), 'nothing was written').toBe(ahead);
      expect(res.status, text.slice(0, 500)).toBe(c.status);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = JSON.parse(text) as { code: string; status: number; detail: string; errors?: { field: string }[] };
      expect(problem).toMatchObject({ code: c.code, status: c.status });
      for (const field of c.fields ?? []) {
        expect(problem.detail).toContain(field);
        expect(problem.errors?.map((e) => e.field)).toContain(field);
      }
      if (c.detail) expect(problem.detail).toMatch(c.detail);
    });

    it('wrote nothing over the whole table', async () => {
      expect(await snapshot(svc)).toBe(before);
    });
  });
}

describeWorkflowBadInput('pglite');
describeWorkflowBadInput('postgres');
