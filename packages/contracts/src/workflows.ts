/**
 * Workflows and batches (docs/workflows.md): graphs of tasks submitted in one transaction,
 * children blocked until their parents succeed; a batch is a workflow without edges with an
 * optional completion task.
 */
import { Type, type Static } from 'typebox';
import { Cursor, Limit, Page, TaskId, Timestamp } from './common.ts';
import { TaskInput, TaskState } from './tasks.ts';

/** Most tasks in one workflow or batch (the engine's MAX_WORKFLOW_TASKS). */
export const MAX_WORKFLOW_TASKS = 20_000;

export const WorkflowId = Type.String({ pattern: '^[1-9][0-9]{0,18}$', description: 'Workflow (or batch) id: a positive integer, as a string.', examples: ['7'] });

// A unique key, like an idempotency key, would let a member be another task: a graph is submitted whole.
const { idempotencyKey: _key, uniqueKey: _unique, uniqueForMs: _uniqueFor, dependsOn: _deps, ...memberFields } = TaskInput.properties;

const Ref = Type.String({
  minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f]+$',
  description: 'The task\'s reference, unique within the workflow: what dependsOn names, and the key of its result in its children\'s `parents`.',
  examples: ['fetch'],
});

export const WorkflowTaskInput = Type.Object(
  {
    ref: Ref,
    ...memberFields,
    dependsOn: Type.Optional(Type.Array(Ref, { maxItems: 10_000, description: 'Refs of the tasks of this workflow that must succeed before this one runs.' })),
  },
  { additionalProperties: false, description: 'A task submission (without idempotencyKey and uniqueKey) with a ref and the refs it depends on.' },
);
export type WorkflowTaskInput = Static<typeof WorkflowTaskInput>;

export const FailurePolicy = Type.Enum(['cancel_dependents', 'cancel_all'], {
  description: 'When a task ends dead or cancelled: `cancel_dependents` (default) cancels its descendants and lets independent branches go on; `cancel_all` cancels every unfinished task of the workflow.',
});

const name = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f]+$', description: 'A name for people; not unique.' });

export const WorkflowInput = Type.Object(
  {
    name,
    failurePolicy: Type.Optional(FailurePolicy),
    tasks: Type.Array(WorkflowTaskInput, { minItems: 1, maxItems: MAX_WORKFLOW_TASKS }),
  },
  { additionalProperties: false },
);
export type WorkflowInput = Static<typeof WorkflowInput>;

export const BatchMemberInput = Type.Object(memberFields, {
  additionalProperties: false, description: 'A task submission without idempotencyKey, uniqueKey and dependsOn.',
});

export const BatchInput = Type.Object(
  {
    name,
    tasks: Type.Array(BatchMemberInput, { minItems: 1, maxItems: MAX_WORKFLOW_TASKS }),
    completion: Type.Optional(
      Type.Object(memberFields, {
        additionalProperties: false,
        description: 'Queued once every task of the batch has finished, whatever the outcome. Its payload becomes `{"batch": {"id", "total", "succeeded", "dead", "cancelled"}, "payload": <the payload given here>}`. JSON payload only.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type BatchInput = Static<typeof BatchInput>;

export const Workflow = Type.Object({
  id: WorkflowId,
  name: Type.String(),
  kind: Type.Enum(['workflow', 'batch']),
  failurePolicy: FailurePolicy,
  state: Type.Enum(['running', 'succeeded', 'failed', 'cancelled'], {
    description: '`running` while a task is unfinished; then `succeeded` when all succeeded, `failed` when one is dead, else `cancelled`.',
  }),
  taskCount: Type.Integer({ description: 'Tasks of the workflow (of a batch: its members and its completion task).' }),
  counts: Type.Record(Type.String(), Type.Integer(), { description: 'Tasks per state; states without tasks are left out.', examples: [{ succeeded: 3, blocked: 1 }] }),
  completionTaskId: Type.Union([TaskId, Type.Null()], { description: 'A batch\'s completion task, else null.' }),
  createdAt: Timestamp,
});
export type Workflow = Static<typeof Workflow>;

export const WorkflowSubmitted = Type.Object({
  workflow: Workflow,
  tasks: Type.Array(
    Type.Object({ ref: Type.String(), id: TaskId, state: TaskState }),
    { description: 'The tasks in input order (a batch\'s members have refs "0", "1", …; its completion task "completion", last).' },
  ),
});
export type WorkflowSubmitted = Static<typeof WorkflowSubmitted>;

export const WorkflowListQuery = Type.Object(
  { kind: Type.Optional(Type.Enum(['workflow', 'batch'])), cursor: Type.Optional(Cursor), limit: Type.Optional(Limit) },
  { additionalProperties: false },
);
export type WorkflowListQuery = Static<typeof WorkflowListQuery>;

export const WorkflowPage = Page(Workflow);
export type WorkflowPage = Static<typeof WorkflowPage>;

export const WorkflowParams = Type.Object({ id: WorkflowId });
