/**
 * The engine: the one module that moves tasks between states. Every transition is one
 * statement (or one transaction) from `sql/`; nothing else in Taskflow writes task state.
 * See docs/state-machine.md.
 *
 * `Engine` is the front: its public methods are the engine's API, each handing over to the
 * module of its concern with the state they share in one EngineContext. TaskEngine
 * (taskEngine.ts) holds the core (enqueue, claim, settle, workers, duties, tasks and the
 * dead-letter queue); this class adds workflows, queues and their settings, and schedules.
 */
import { getQueue, listQueues, setQueuePaused, updateSettings } from './queues.ts';
import type { QueueSettingsPatch } from './flowSettings.ts';
import { explainTask, type TaskExplanation } from './explain.ts';
import * as schedules from './schedules.ts';
import { fireDueSchedules, nextScheduleDueInMs, type FirePassResult } from './firing.ts';
import type { Schedule, ScheduleFire, ScheduleInput, SchedulePatch } from './scheduleTypes.ts';
import * as workflows from './workflows.ts';
import type { BatchInput, SubmittedWorkflow, Workflow, WorkflowInput } from './workflowTypes.ts';
import type { QueueInfo } from './types.ts';
import { TaskEngine, type EngineConfig } from './taskEngine.ts';

export type { EngineEvents } from './context.ts';
export type { EnqueueResult, TaskRef } from './enqueue.ts';
export type { RequeueOutcome } from './admin.ts';
export type { FirePassResult } from './firing.ts';
export type { EngineConfig } from './taskEngine.ts';

/** The engine's API: the core of TaskEngine and the capabilities built on it. */
export class Engine extends TaskEngine {
  // ---------------------------------------------------------------- workflows and batches

  /**
   * Submits a graph of tasks in one transaction (or nothing: a duplicate or unknown reference,
   * a cycle or a graph over the limits throws InvalidGraphError naming each). Tasks with
   * parents start `blocked`; see docs/workflows.md.
   */
  submitWorkflow(input: WorkflowInput): Promise<SubmittedWorkflow> {
    return workflows.submitWorkflow(this.ctx, input);
  }

  /** Submits a batch (a workflow without edges) with its optional completion task, in one transaction. */
  submitBatch(input: BatchInput): Promise<SubmittedWorkflow> {
    return workflows.submitBatch(this.ctx, input);
  }

  getWorkflow(id: string): Promise<Workflow> {
    return workflows.getWorkflow(this.ctx, id);
  }

  /** Workflows (and batches), newest first. */
  listWorkflows(filter: { kind?: 'workflow' | 'batch'; beforeId?: string; limit: number }): Promise<Workflow[]> {
    return workflows.listWorkflows(this.ctx, filter);
  }

  /** Cancels every unfinished task of a workflow or batch (a running one is asked to stop). */
  cancelWorkflow(id: string): Promise<Workflow> {
    return workflows.cancelWorkflow(this.ctx, id);
  }

  /**
   * Runs a failed (or cancelled) workflow again from its dead and cancelled tasks, each with a
   * fresh retry budget; their descendants are blocked again. Not for batches.
   */
  retryWorkflow(id: string): Promise<Workflow> {
    return workflows.retryWorkflow(this.ctx, id);
  }

  // ---------------------------------------------------------------- queues

  listQueues(): Promise<QueueInfo[]> {
    return listQueues(this.ctx);
  }

  getQueue(name: string): Promise<QueueInfo> {
    return getQueue(this.ctx, name);
  }

  /**
   * Changes a queue's flow settings (docs/flow-control.md): limits, admission, default retry
   * policy; a field absent keeps its value, null clears it. Creates the queue if needed. Takes
   * effect at once on this node, within a second on the others. InvalidInputError names a bad field.
   */
  updateQueueSettings(name: string, patch: QueueSettingsPatch): Promise<QueueInfo> {
    return updateSettings(this.ctx, name, patch);
  }

  /**
   * What holds a task back (run time, parents, paused queue, concurrency or rate limits), each
   * with when it lets go. NotFoundError for an unknown task.
   */
  explainTask(id: string): Promise<TaskExplanation> {
    return explainTask(this.ctx, id);
  }

  /** Pauses (claims skip it) or resumes a queue; creates the queue if it does not exist yet. */
  setQueuePaused(name: string, paused: boolean): Promise<QueueInfo> {
    return setQueuePaused(this.ctx, name, paused);
  }

  // ---------------------------------------------------------------- schedules (docs/schedules.md)

  /**
   * Creates a schedule; its first fire is the first fire time after now (an interval schedule
   * without `startsAt`: one interval from now). Throws InvalidInputError naming the field for
   * an invalid expression, interval or time zone, AlreadyExistsError for a name taken.
   */
  createSchedule(input: ScheduleInput): Promise<Schedule> {
    return schedules.createSchedule(this.ctx, input);
  }

  getSchedule(id: string): Promise<Schedule> {
    return schedules.getSchedule(this.ctx, id);
  }

  getScheduleByName(name: string): Promise<Schedule> {
    return schedules.getScheduleByName(this.ctx, name);
  }

  /** Schedules by id; `afterId` is the last schedule of the previous page. */
  listSchedules(page: { afterId?: string; limit: number }): Promise<Schedule[]> {
    return schedules.listSchedules(this.ctx, page);
  }

  /**
   * Changes a schedule. A change of timing (cron, interval, time zone, start, end) restarts it
   * from now; other changes keep its next fire time.
   */
  updateSchedule(id: string, patch: SchedulePatch): Promise<Schedule> {
    return schedules.updateSchedule(this.ctx, id, patch);
  }

  /** Pauses or resumes a schedule. Fires passed while paused are misfires once resumed. */
  setSchedulePaused(id: string, paused: boolean): Promise<Schedule> {
    return schedules.setSchedulePaused(this.ctx, id, paused);
  }

  /** Deletes a schedule and its fire records; the tasks it created stay. Returns it as it was. */
  deleteSchedule(id: string): Promise<Schedule> {
    return schedules.deleteSchedule(this.ctx, id);
  }

  /** The next `count` fire times after the database's now. */
  previewSchedule(id: string, count: number): Promise<{ now: Date; fireTimes: Date[] }> {
    return schedules.previewSchedule(this.ctx, id, count);
  }

  /** A schedule's fires, newest first; `before` is the last fire time of the previous page. */
  listScheduleFires(id: string, page: { before?: Date; limit: number }): Promise<ScheduleFire[]> {
    return schedules.listScheduleFires(this.ctx, id, page);
  }

  /**
   * Fires the due schedules, each in a transaction of its own, up to `limit` schedules. Safe on
   * every node at once: each fire creates its task exactly once (see engine/firing.ts).
   */
  fireDueSchedules(limit = 100): Promise<FirePassResult> {
    return fireDueSchedules(this.ctx, limit);
  }

  /** Milliseconds until the soonest fire of an active schedule, or null if none. */
  nextScheduleDueInMs(): Promise<number | null> {
    return nextScheduleDueInMs(this.ctx);
  }
}
