/** The public types of workflows and batches (docs/workflows.md). */
import type { TaskInput, TaskState } from './types.ts';

/**
 * What a workflow does when one of its tasks ends dead or cancelled: `cancel_dependents`
 * cancels that task's descendants and lets independent branches go on; `cancel_all` cancels
 * every unfinished task of the workflow (a running one is asked to stop).
 */
export type FailurePolicy = 'cancel_dependents' | 'cancel_all';

/** A task of a workflow: a submission with a reference, and the references it waits for. */
export interface WorkflowTaskInput extends Omit<TaskInput, 'idempotencyKey' | 'uniqueKey' | 'uniqueForMs' | 'dependsOn'> {
  /** Unique within the workflow; the key of its result in its children's `parents`. */
  ref: string;
  /** References of the tasks of this workflow it waits for (each must succeed first). @defaultValue none */
  dependsOn?: string[];
}

export interface WorkflowInput {
  name: string;
  /** @defaultValue `cancel_dependents` */
  failurePolicy?: FailurePolicy;
  tasks: WorkflowTaskInput[];
}

/** A batch: tasks without edges, and an optional task queued once every one has finished. */
export interface BatchInput {
  name: string;
  tasks: Omit<TaskInput, 'idempotencyKey' | 'uniqueKey' | 'uniqueForMs' | 'dependsOn'>[];
  /**
   * Queued once every task of the batch has finished, whatever the outcome; its payload is
   * `{ batch: { id, total, succeeded, dead, cancelled }, payload }` (`payload` as given here).
   */
  completion?: Omit<TaskInput, 'idempotencyKey' | 'uniqueKey' | 'uniqueForMs' | 'dependsOn'>;
}

/**
 * `running` while a task is unfinished; then `succeeded` when every task succeeded, `failed`
 * when one is dead, else `cancelled`.
 */
export type WorkflowState = 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface Workflow {
  id: string;
  name: string;
  kind: 'workflow' | 'batch';
  failurePolicy: FailurePolicy;
  state: WorkflowState;
  /** Tasks of the workflow (of a batch: its members and its completion task). */
  taskCount: number;
  /** Tasks per state (states without tasks are left out). */
  counts: Partial<Record<TaskState, number>>;
  /** A batch's completion task, else null. */
  completionTaskId: string | null;
  createdAt: Date;
}

/** A submitted workflow with the ids of its tasks, in input order. */
export interface SubmittedWorkflow {
  workflow: Workflow;
  tasks: { ref: string; id: string; state: TaskState }[];
}
