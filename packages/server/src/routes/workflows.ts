/**
 * Workflows and batches (docs/workflows.md). Each task is checked as a submission would be
 * (toEngineInput); the graph itself is checked by the engine before anything is stored, and
 * its problems (InvalidGraphError) name every offending ref under /body.
 */
import { isTaskId, NotFoundError, type Engine, type SubmittedWorkflow, type Workflow } from '@taskflow/core';
import type * as C from '@taskflow/contracts';
import type { Handlers } from '../http/route.ts';
import { badRequest } from '../http/problems.ts';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';
import { assertStorableText } from '../http/storable.ts';
import { toEngineInput } from './tasks.ts';

export interface WorkflowRouteDeps {
  engine: Engine;
  maxPayloadBytes: number;
}

export function workflowJson(w: Workflow): C.Workflow {
  return { ...w, createdAt: w.createdAt.toISOString() };
}

function submittedJson(s: SubmittedWorkflow): C.WorkflowSubmitted {
  return { workflow: workflowJson(s.workflow), tasks: s.tasks };
}

type WorkflowRoutes = 'createWorkflow' | 'listWorkflows' | 'getWorkflow' | 'cancelWorkflow' | 'retryWorkflow' | 'createBatch' | 'getBatch' | 'cancelBatch';

export function workflowHandlers(deps: WorkflowRouteDeps): Pick<Handlers, WorkflowRoutes> {
  const { engine, maxPayloadBytes } = deps;
  /** The batch with this id (a workflow that is not a batch is not found here). */
  async function batch(id: string): Promise<Workflow> {
    const w = await engine.getWorkflow(id);
    if (w.kind !== 'batch') throw new NotFoundError('batch', id);
    return w;
  }
  return {
    async createWorkflow(req, reply) {
      assertStorableText(req.body.name, '/body/name');
      const tasks = req.body.tasks.map((t, i) => {
        const { ref, dependsOn, ...task } = t;
        assertStorableText(ref, `/body/tasks/${i}/ref`);
        return { ...toEngineInput(task, `/body/tasks/${i}`, maxPayloadBytes), ref, dependsOn };
      });
      const made = await engine.submitWorkflow({ name: req.body.name, failurePolicy: req.body.failurePolicy, tasks });
      reply.code(201).header('location', `/api/v1/workflows/${made.workflow.id}`);
      return submittedJson(made);
    },
    async listWorkflows(req) {
      const q = req.query;
      const cursor = decodeCursor(q.cursor, ['id'] as const);
      if (cursor && !isTaskId(cursor.id)) throw badRequest('/query/cursor', 'is not a cursor this server issued');
      const limit = q.limit ?? 50;
      const items = await engine.listWorkflows({ kind: q.kind, beforeId: cursor?.id, limit });
      return { items: items.map(workflowJson), nextCursor: items.length === limit ? encodeCursor({ id: items.at(-1)!.id }) : null };
    },
    async getWorkflow(req) {
      return workflowJson(await engine.getWorkflow(req.params.id));
    },
    async cancelWorkflow(req) {
      return workflowJson(await engine.cancelWorkflow(req.params.id));
    },
    async retryWorkflow(req) {
      return workflowJson(await engine.retryWorkflow(req.params.id));
    },
    async createBatch(req, reply) {
      assertStorableText(req.body.name, '/body/name');
      const tasks = req.body.tasks.map((t, i) => toEngineInput(t, `/body/tasks/${i}`, maxPayloadBytes));
      const completion = req.body.completion ? toEngineInput(req.body.completion, '/body/completion', maxPayloadBytes) : undefined;
      if (completion?.payloadBase64 !== undefined) throw badRequest('/body/completion/payloadBase64', 'is not allowed: the completion task\'s payload is JSON (it carries the counts)');
      const made = await engine.submitBatch({ name: req.body.name, tasks, completion });
      reply.code(201).header('location', `/api/v1/batches/${made.workflow.id}`);
      return submittedJson(made);
    },
    async getBatch(req) {
      return workflowJson(await batch(req.params.id));
    },
    async cancelBatch(req) {
      await batch(req.params.id);
      return workflowJson(await engine.cancelWorkflow(req.params.id));
    },
  };
}
