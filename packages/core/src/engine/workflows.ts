/**
 * Workflows and batches: graphs of tasks submitted in one transaction, their status, cancel
 * and retry. A batch is a workflow without edges whose completion task waits, over `on_finish`
 * edges, for every member to finish. What a task's end does to its dependents happens in the
 * statement that ended it (sql/tasks/dependents.ts).
 */
import type { Executor } from '../db/types.ts';
import { InvalidGraphError, InvalidInputError, InvalidStateError, NotFoundError } from '../errors.ts';
import * as T from '../sql/tasks/index.ts';
import * as W from '../sql/workflows.ts';
import type { EngineContext } from './context.ts';
import { enqueue } from './enqueue.ts';
import { checkGraph } from './graph.ts';
import { isTaskId } from './ids.ts';
import type { Row } from './rows.ts';
import type { TaskInput, TaskState } from './types.ts';
import type { BatchInput, SubmittedWorkflow, Workflow, WorkflowInput, WorkflowState } from './workflowTypes.ts';

/** See Engine.submitWorkflow. */
export async function submitWorkflow(ctx: EngineContext, input: WorkflowInput): Promise<SubmittedWorkflow> {
  const { problems, parents } = checkGraph(input.tasks, 'tasks');
  if (problems.length > 0) throw new InvalidGraphError(problems);
  if (input.tasks.length === 0) throw new InvalidInputError('tasks', 'tasks must hold at least one task');
  refuseKeys(input.tasks.map(({ dependsOn: _d, ...t }) => t), 'tasks');
  const policy = input.failurePolicy ?? 'cancel_dependents';
  const made = await ctx.db.transaction(async (tx) => {
    const id = await insertWorkflow(tx, input.name, 'workflow', policy, input.tasks.length);
    const results = await enqueue(ctx, input.tasks.map(({ ref: _r, dependsOn: _d, ...task }) => task), tx);
    const ids = results.map((r) => r.ref.id);
    await tx.query(T.taskBlockMany, [ids, input.tasks.map((t) => t.ref), parents.map((p) => p.length), id, true]);
    const edgeParents: string[] = [];
    const edgeChildren: string[] = [];
    parents.forEach((ps, child) => ps.forEach((p) => { edgeParents.push(ids[p]!); edgeChildren.push(ids[child]!); }));
    if (edgeParents.length > 0) await tx.query(T.taskDependenciesAdd, [edgeParents, edgeChildren, false]);
    return { id, ids, states: results.map((r, i): TaskState => (parents[i]!.length > 0 ? 'blocked' : r.ref.state)) };
  });
  announceRoots(ctx, input.tasks, made.states);
  return {
    workflow: await getWorkflow(ctx, made.id),
    tasks: input.tasks.map((t, i) => ({ ref: t.ref, id: made.ids[i]!, state: made.states[i]! })),
  };
}

/** See Engine.submitBatch. */
export async function submitBatch(ctx: EngineContext, input: BatchInput): Promise<SubmittedWorkflow> {
  if (input.tasks.length === 0) throw new InvalidInputError('tasks', 'tasks must hold at least one task');
  const { problems } = checkGraph(input.tasks.map((_, i) => ({ ref: String(i) })), 'tasks');
  if (problems.length > 0) throw new InvalidGraphError(problems);
  refuseKeys(input.tasks, 'tasks');
  if (input.completion) refuseKeys([input.completion], 'completion');
  if (input.completion?.payloadBase64 !== undefined) {
    throw new InvalidInputError('completion/payloadBase64', 'completion/payloadBase64 is not allowed: the completion task\'s payload is JSON (it carries the counts)');
  }
  const total = input.tasks.length;
  const made = await ctx.db.transaction(async (tx) => {
    const id = await insertWorkflow(tx, input.name, 'batch', 'cancel_dependents', total + (input.completion ? 1 : 0));
    const members = await enqueue(ctx, input.tasks, tx);
    const ids = members.map((r) => r.ref.id);
    await tx.query(T.taskBlockMany, [ids, ids.map((_, i) => String(i)), ids.map(() => 0), id, false]);
    let completionId: string | null = null;
    if (input.completion) {
      const c = input.completion;
      const payloadJson = `{"batch":{"id":${id},"total":${total},"succeeded":0,"dead":0,"cancelled":0},"payload":${c.payloadJson ?? JSON.stringify(c.payload ?? null)}}`;
      const [done] = await enqueue(ctx, [{ ...c, payload: JSON.parse(payloadJson), payloadJson }], tx);
      completionId = done!.ref.id;
      await tx.query(T.taskBlockMany, [[completionId], ['completion'], [total], id, false]);
      await tx.query(T.taskDependenciesAdd, [ids, ids.map(() => completionId), true]);
      await tx.query(W.workflowSetCompletion, [id, completionId]);
    }
    return { id, ids, states: members.map((r) => r.ref.state), completionId };
  });
  announceRoots(ctx, input.tasks, made.states);
  const tasks = made.ids.map((id, i) => ({ ref: String(i), id, state: made.states[i]! }));
  if (made.completionId) tasks.push({ ref: 'completion', id: made.completionId, state: 'blocked' });
  return { workflow: await getWorkflow(ctx, made.id), tasks };
}

/** Idempotency and unique keys and dependencies by id have no place in a graph submitted whole. */
function refuseKeys(tasks: readonly TaskInput[], at: string): void {
  tasks.forEach((t, i) => {
    const field = at === 'tasks' ? `tasks/${i}` : at;
    if (t.idempotencyKey !== undefined) throw new InvalidInputError(`${field}/idempotencyKey`, `${field}/idempotencyKey is not allowed in a workflow or batch`);
    if (t.uniqueKey !== undefined) throw new InvalidInputError(`${field}/uniqueKey`, `${field}/uniqueKey is not allowed in a workflow or batch`);
    if (t.uniqueForMs !== undefined) throw new InvalidInputError(`${field}/uniqueForMs`, `${field}/uniqueForMs is not allowed in a workflow or batch`);
    if (t.dependsOn !== undefined) throw new InvalidInputError(`${field}/dependsOn`, `${field}/dependsOn is not allowed here`);
  });
}

async function insertWorkflow(tx: Executor, name: string, kind: string, policy: string, count: number): Promise<string> {
  const { rows } = await tx.query(W.workflowInsert, [name, kind, policy, count]);
  return String(rows[0]!.id);
}

/** Wakes claimers for the roots, once committed (enqueue announced inside the transaction). */
function announceRoots(ctx: EngineContext, tasks: readonly TaskInput[], states: readonly TaskState[]): void {
  ctx.announce(states.map((state, i) => ({ state, queue: tasks[i]!.queue ?? ctx.options.defaultQueue })).filter((r) => r.state === 'queued'));
}

/** See Engine.getWorkflow. */
export async function getWorkflow(ctx: EngineContext, id: string): Promise<Workflow> {
  if (!isTaskId(id)) throw new NotFoundError('workflow', id);
  const { rows } = await ctx.db.query(W.workflowGet, [id]);
  if (rows.length === 0) throw new NotFoundError('workflow', id);
  return toWorkflow(rows[0]!);
}

/** See Engine.listWorkflows. */
export async function listWorkflows(ctx: EngineContext, filter: { kind?: 'workflow' | 'batch'; beforeId?: string; limit: number }): Promise<Workflow[]> {
  const { rows } = await ctx.db.query(W.workflowList, [filter.kind ?? null, filter.beforeId ?? null, filter.limit]);
  return rows.map(toWorkflow);
}

/** See Engine.cancelWorkflow. */
export async function cancelWorkflow(ctx: EngineContext, id: string): Promise<Workflow> {
  await getWorkflow(ctx, id);
  await ctx.db.query(W.workflowCancel, [id, ctx.now()]);
  return getWorkflow(ctx, id);
}

/** See Engine.retryWorkflow. */
export async function retryWorkflow(ctx: EngineContext, id: string): Promise<Workflow> {
  const before = await getWorkflow(ctx, id);
  if (before.kind === 'batch') throw new InvalidStateError(`workflow ${id} is a batch; retry its tasks one by one`, before.state);
  if (before.state !== 'failed' && before.state !== 'cancelled') {
    throw new InvalidStateError(`workflow ${id} is ${before.state}; only a failed or cancelled workflow can be retried`, before.state);
  }
  const { rows } = await ctx.db.query(W.workflowRetry, [id, ctx.now()]);
  ctx.announce(rows);
  return getWorkflow(ctx, id);
}

const UNFINISHED: readonly TaskState[] = ['blocked', 'scheduled', 'queued', 'running', 'retrying'];

/** A workflow's state from its counts (see WorkflowState). */
export function workflowState(counts: Partial<Record<TaskState, number>>): WorkflowState {
  if (UNFINISHED.some((s) => (counts[s] ?? 0) > 0)) return 'running';
  if ((counts.dead ?? 0) > 0) return 'failed';
  if ((counts.cancelled ?? 0) > 0) return 'cancelled';
  return 'succeeded';
}

function toWorkflow(r: Row): Workflow {
  const counts = (r.counts ?? {}) as Partial<Record<TaskState, number>>;
  return {
    id: String(r.id),
    name: r.name,
    kind: r.kind,
    failurePolicy: r.failure_policy,
    state: workflowState(counts),
    taskCount: r.task_count,
    counts,
    completionTaskId: r.completion_task_id === null ? null : String(r.completion_task_id),
    createdAt: r.created_at,
  };
}
