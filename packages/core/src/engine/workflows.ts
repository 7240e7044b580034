/**
 * Workflows and batches: graphs of tasks submitted in one transaction, their status, cancel
 * and retry. A batch is a workflow without edges whose completion task waits, over `on_finish`
 * edges, for every member to finish. What a task's end does to its dependents happens in the
 * statement that ended it (sql/tasks/dependents.ts).
 */
import type { Executor } from '../db/types.ts';
import { InvalidGraphError, InvalidInputError, InvalidStateError, NotFoundError } from '../errors.ts';
import * as W from '../sql/workflows.ts';
import type { EngineContext } from './context.ts';
import { enqueue } from './enqueue.ts';
import type { GraphColumns } from './insertColumns.ts';
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
  const edgeParents: number[] = [];
  const edgeChildren: number[] = [];
  parents.forEach((ps, child) => ps.forEach((p) => { edgeParents.push(p); edgeChildren.push(child); }));
  const hasChildren = input.tasks.map(() => false);
  for (const p of edgeParents) hasChildren[p] = true;
  const made = await ctx.db.transaction(async (tx) => {
    const id = await insertWorkflow(tx, input.name, 'workflow', policy, input.tasks.length);
    const results = await enqueue(ctx, input.tasks.map(({ ref: _r, dependsOn: _d, ...task }) => task), tx, {
      workflowId: id, refs: input.tasks.map((t) => t.ref), pending: parents.map((p) => p.length), hasChildren,
      handsResults: true, edgeParents, edgeChildren, onFinish: false,
    });
    return { id, ids: results.map((r) => r.ref.id), states: results.map((r) => r.ref.state) };
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
    const tasks: TaskInput[] = [...input.tasks];
    const refs = input.tasks.map((_, i) => String(i));
    const pending = input.tasks.map(() => 0);
    if (input.completion) {
      // The completion task waits, over `on_finish` edges, for every member; its payload counts them.
      const c = input.completion;
      const payloadJson = `{"batch":{"id":${id},"total":${total},"succeeded":0,"dead":0,"cancelled":0},"payload":${c.payloadJson ?? JSON.stringify(c.payload ?? null)}}`;
      tasks.push({ ...c, payload: JSON.parse(payloadJson), payloadJson });
      refs.push('completion');
      pending.push(total);
    }
    const results = await enqueue(ctx, tasks, tx, batchGraph(id, refs, pending, input.completion !== undefined));
    const ids = results.map((r) => r.ref.id);
    if (input.completion) await tx.query(W.workflowSetCompletion, [id, ids[total]]);
    return { id, ids: ids.slice(0, total), states: results.slice(0, total).map((r) => r.ref.state), completionId: input.completion ? ids[total]! : null };
  });
  announceRoots(ctx, input.tasks, made.states);
  const tasks = made.ids.map((id, i) => ({ ref: String(i), id, state: made.states[i]! }));
  if (made.completionId) tasks.push({ ref: 'completion', id: made.completionId, state: 'blocked' });
  return { workflow: await getWorkflow(ctx, made.id), tasks };
}

/**
 * A batch as a graph: its members (the first `total` of `refs`), and its completion task when
 * there is one (the last), which waits for each member over an `on_finish` edge.
 */
function batchGraph(workflowId: string, refs: string[], pending: number[], withCompletion: boolean): GraphColumns {
  const total = withCompletion ? refs.length - 1 : refs.length;
  const members = Array.from({ length: total }, (_, i) => i);
  return {
    workflowId, refs, pending, handsResults: false, onFinish: true,
    hasChildren: refs.map((_, i) => withCompletion && i < total),
    edgeParents: withCompletion ? members : [],
    edgeChildren: withCompletion ? members.map(() => total) : [],
  };
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
