/**
 * The route table: every endpoint of the API, once. The server registers routes from it
 * (validation and OpenAPI come from these schemas); the SDK types its calls from it. Drift
 * between them cannot compile, and test/openapi.test.ts fails if the committed
 * docs/openapi.json differs from what the server serves.
 */
import { Type, type TSchema } from 'typebox';
import { Health, QueueFullProblem } from './common.ts';
import {
  DlqListQuery, DlqPurgeQuery, DlqPurgeResult, DlqRequeueInput, DlqRequeueResult, Task, TaskBatchHeaders, TaskBatchIds, TaskBatchInput, TaskBatchResult,
  TaskExplanation, TaskInput, TaskListQuery, TaskPage, TaskParams, TaskPatch, TaskWithAttempts,
} from './tasks.ts';
import {
  ClaimConflict, ClaimInput, ClaimOutput, DeregisterInput, Deregistered, Heartbeat, HeartbeatConflict, HeartbeatInput, ResultConflict,
  ResultOutcome, ResultsInput, ResultsOutput, SingleResult, WorkerListQuery, WorkerPage, WorkerParams, Worker, WorkerRegistered,
  WorkerRegistration, WorkerTaskParams,
} from './workers.ts';
import { Queue, QueueList, QueueParams, QueueSettingsPatch } from './queues.ts';
import {
  Schedule, ScheduleFirePage, ScheduleInput, ScheduleListQuery, SchedulePage, ScheduleParams, SchedulePatch, SchedulePreview,
  SchedulePreviewQuery,
} from './schedules.ts';
import {
  AnalyticsHealth, Durations, Failures, SummaryQuery, Throughput, ThroughputQuery, WorkerAnalytics, WorkerAnalyticsQuery,
} from './analytics.ts';
import { BatchInput, Workflow, WorkflowInput, WorkflowListQuery, WorkflowPage, WorkflowParams, WorkflowSubmitted } from './workflows.ts';
import {
  AlertHistoryPage, AlertHistoryQuery, AlertRule, AlertRuleInput, AlertRuleListQuery, AlertRulePage, AlertRuleParams, AlertRulePatch,
  AlertSilenceInput, FiringAlerts,
} from './alerts.ts';
import { ApiKey, ApiKeyCreated, ApiKeyInput, ApiKeyList, ApiKeyParams, type Scope } from './apiKeys.ts';

export interface RouteDef {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Fastify-style path (`/api/v1/tasks/:id`). */
  path: string;
  /** Scope the API key needs (`admin` passes everywhere); null = no authentication. */
  scope: Scope | null;
  /**
   * A key with scope `read` may call it too. Only on GET routes that change nothing and show
   * nothing that could be a credential (not the API keys, nor the alert rules, whose webhook
   * URLs may carry one): the `read` scope is for dashboards and reporting.
   */
  read?: true;
  tag: string;
  summary: string;
  description?: string;
  params?: TSchema;
  querystring?: TSchema;
  body?: TSchema;
  /** Request headers the route reads (documentation and validation; clients pass them in CallOptions). */
  headers?: TSchema;
  /** Success responses by status. Problem responses are added for every route. */
  response: Record<number, TSchema>;
  /**
   * Problem responses of this route's own, by status, with their codes enumerated (a client
   * branches on them). Any route may also answer the generic problems (400, 401, 403, 404, 5xx).
   */
  problems?: Record<number, TSchema>;
}

function route<const R extends RouteDef>(r: R): R {
  return r;
}

export const routes = {
  // ------------------------------------------------------------------ tasks
  createTask: route({
    method: 'POST', path: '/api/v1/tasks', scope: 'producer', tag: 'tasks', summary: 'Submit a task',
    description: 'Returns 201 with the new task, or 200 with the existing task when the idempotency key already exists in the queue (headers `Idempotent-Replayed: true`, `Deduplicated: idempotency`) or the unique key is held (header `Deduplicated: unique`). 429 with `Retry-After` when the queue\'s admission control refuses it (docs/flow-control.md).',
    body: TaskInput, response: { 201: Task, 200: Task }, problems: { 429: QueueFullProblem },
  }),
  createTasks: route({
    method: 'POST', path: '/api/v1/tasks/batch', scope: 'producer', tag: 'tasks', summary: 'Submit up to 1000 tasks in one statement',
    description: 'All or nothing: if any item is invalid, or a queue\'s admission control refuses any (429 with `Retry-After`, the problem listing the refused items in `refused`), nothing is written. Each item reports whether it was created or matched an existing idempotency key or unique key (`deduplicated`), and refers to its task (id, state, run time; not the payload: GET the task for it). With `Prefer: return=minimal` the answer is the ids only (TaskBatchIds), about a tenth of the bytes, and says `Preference-Applied: return=minimal`.',
    headers: TaskBatchHeaders, body: TaskBatchInput, response: { 201: Type.Union([TaskBatchResult, TaskBatchIds]) },
    problems: { 429: QueueFullProblem },
  }),
  listTasks: route({
    method: 'GET', path: '/api/v1/tasks', scope: 'producer', read: true, tag: 'tasks', summary: 'List tasks, newest first',
    querystring: TaskListQuery, response: { 200: TaskPage },
  }),
  getTask: route({
    method: 'GET', path: '/api/v1/tasks/:id', scope: 'producer', read: true, tag: 'tasks', summary: 'Get a task with every attempt',
    params: TaskParams, response: { 200: TaskWithAttempts },
  }),
  explainTask: route({
    method: 'GET', path: '/api/v1/tasks/:id/explain', scope: 'producer', read: true, tag: 'tasks', summary: 'What holds a task back',
    description: 'Its run time, its parents, its queue paused, a concurrency key or the queue at its limit, an empty rate bucket: each with when it lets go. See docs/flow-control.md.',
    params: TaskParams, response: { 200: TaskExplanation },
  }),
  updateTask: route({
    method: 'PATCH', path: '/api/v1/tasks/:id', scope: 'producer', tag: 'tasks', summary: 'Change priority or run time of a waiting task',
    description: '409 when the task is running or finished.',
    params: TaskParams, body: TaskPatch, response: { 200: Task },
  }),
  cancelTask: route({
    method: 'POST', path: '/api/v1/tasks/:id/cancel', scope: 'producer', tag: 'tasks', summary: 'Cancel a task',
    description: 'A waiting task is cancelled at once. A running one gets `cancelRequested: true`; its worker learns it at the next heartbeat. 409 when already finished.',
    params: TaskParams, response: { 200: Task },
  }),
  retryTask: route({
    method: 'POST', path: '/api/v1/tasks/:id/retry', scope: 'producer', tag: 'tasks', summary: 'Run a dead or cancelled task again',
    description: 'With a fresh retry budget. 409 for other states.',
    params: TaskParams, response: { 200: Task },
  }),

  // ------------------------------------------------------------------ dead-letter queue
  listDead: route({
    method: 'GET', path: '/api/v1/dlq', scope: 'admin', read: true, tag: 'dlq', summary: 'List dead tasks, newest first',
    querystring: DlqListQuery, response: { 200: TaskPage },
  }),
  requeueDead: route({
    method: 'POST', path: '/api/v1/dlq/requeue', scope: 'admin', tag: 'dlq', summary: 'Requeue dead tasks by id, or all of a queue',
    description: 'With `ids`: one outcome per id. Otherwise every dead task of `queue` (and `type`); `all: true` is required to requeue the whole DLQ.',
    body: DlqRequeueInput, response: { 200: DlqRequeueResult },
  }),
  requeueDeadOne: route({
    method: 'POST', path: '/api/v1/dlq/:id/requeue', scope: 'admin', tag: 'dlq', summary: 'Requeue one dead task',
    params: TaskParams, response: { 200: Task },
  }),
  purgeDead: route({
    method: 'DELETE', path: '/api/v1/dlq', scope: 'admin', tag: 'dlq', summary: 'Delete dead tasks (of a queue)',
    querystring: DlqPurgeQuery, response: { 200: DlqPurgeResult },
  }),

  // ------------------------------------------------------------------ queues
  listQueues: route({
    method: 'GET', path: '/api/v1/queues', scope: 'producer', read: true, tag: 'queues', summary: 'Queues with counts per state and the age of the oldest ready task',
    response: { 200: QueueList },
  }),
  getQueue: route({
    method: 'GET', path: '/api/v1/queues/:name', scope: 'producer', read: true, tag: 'queues', summary: 'One queue',
    params: QueueParams, response: { 200: Queue },
  }),
  pauseQueue: route({
    method: 'POST', path: '/api/v1/queues/:name/pause', scope: 'admin', tag: 'queues', summary: 'Pause a queue (claims skip it)',
    description: 'Creates the queue if it does not exist yet, so a queue can be paused before its first task.',
    params: QueueParams, response: { 200: Queue },
  }),
  resumeQueue: route({
    method: 'POST', path: '/api/v1/queues/:name/resume', scope: 'admin', tag: 'queues', summary: 'Resume a paused queue',
    params: QueueParams, response: { 200: Queue },
  }),
  updateQueueSettings: route({
    method: 'PATCH', path: '/api/v1/queues/:name', scope: 'admin', tag: 'queues', summary: 'Change a queue\'s flow settings (limits, admission, default retry policy)',
    description: 'A field absent keeps its value; null clears it. Creates the queue if it does not exist yet. Takes effect at once on the node that answers, within a second on the others. See docs/flow-control.md.',
    params: QueueParams, body: QueueSettingsPatch, response: { 200: Queue },
  }),

  // ------------------------------------------------------------------ workers
  registerWorker: route({
    method: 'POST', path: '/api/v1/workers', scope: 'worker', tag: 'workers', summary: 'Register a worker',
    body: WorkerRegistration, response: { 201: WorkerRegistered },
  }),
  listWorkers: route({
    method: 'GET', path: '/api/v1/workers', scope: 'admin', read: true, tag: 'workers', summary: 'List workers, newest first',
    querystring: WorkerListQuery, response: { 200: WorkerPage },
  }),
  getWorker: route({
    method: 'GET', path: '/api/v1/workers/:id', scope: 'worker', read: true, tag: 'workers', summary: 'Get a worker',
    params: WorkerParams, response: { 200: Worker },
  }),
  heartbeat: route({
    method: 'POST', path: '/api/v1/workers/:id/heartbeat', scope: 'worker', tag: 'workers', summary: 'Stay alive; renew the leases of the tasks being run',
    description: 'The body (optional) lists the tasks the worker is running; only their leases are renewed, so a task whose claim response was lost is not kept alive. A lost worker becomes active again (holding nothing). 404 for an unknown worker; 409 `worker_stopped` for a deregistered one (register again).',
    params: WorkerParams, body: HeartbeatInput, response: { 200: Heartbeat }, problems: { 409: HeartbeatConflict },
  }),
  claim: route({
    method: 'POST', path: '/api/v1/workers/:id/claim', scope: 'worker', tag: 'workers', summary: 'Claim tasks (long-poll), optionally reporting results first',
    description: 'Returns up to `max` tasks, each leased to this worker until `leaseExpiresAt` with its fencing token `attempt`. With `waitMs`, waits for work when none is ready and returns within milliseconds of new work; an empty list after the wait. Results sent with the claim are committed before it looks or waits. 409 `worker_lost` (heartbeat, then claim again) or `worker_stopped` (register again) when the worker is not active.',
    params: WorkerParams, body: ClaimInput, response: { 200: ClaimOutput }, problems: { 409: ClaimConflict },
  }),
  reportResults: route({
    method: 'POST', path: '/api/v1/workers/:id/results', scope: 'worker', tag: 'workers', summary: 'Report results in batch',
    description: 'One outcome per result: `accepted`; `duplicate` when that very result was already recorded (a retried report); or `stale` when the attempt is not the current one held by this worker (nothing changes). 404 for an unknown worker.',
    params: WorkerParams, body: ResultsInput, response: { 200: ResultsOutput },
  }),
  reportResult: route({
    method: 'POST', path: '/api/v1/workers/:id/tasks/:taskId/result', scope: 'worker', tag: 'workers', summary: 'Report one result',
    description: '409 `stale_attempt` when the attempt is not the current one held by this worker; nothing changes.',
    params: WorkerTaskParams, body: SingleResult, response: { 200: ResultOutcome }, problems: { 409: ResultConflict },
  }),
  deregisterWorker: route({
    method: 'DELETE', path: '/api/v1/workers/:id', scope: 'worker', tag: 'workers', summary: 'Deregister; held tasks are requeued at once',
    description: 'The worker becomes `stopped` for good and every task it holds is handed back at once. With `started`, the held tasks not listed never ran and keep their attempt; without it, every held task ends `abandoned` with its attempt used. Deregistering again answers `{"released":0}`.',
    params: WorkerParams, body: DeregisterInput, response: { 200: Deregistered },
  }),

  // ------------------------------------------------------------------ schedules
  // An operator's act: creating a schedule makes tasks on its own, without a producer, so
  // every schedule route needs the admin scope (docs/schedules.md).
  createSchedule: route({
    method: 'POST', path: '/api/v1/schedules', scope: 'admin', tag: 'schedules', summary: 'Create a cron or interval schedule',
    description: 'Fires exactly once per fire time across all nodes, each fire creating a task from `template` that carries the schedule id and the fire time. 400 naming the field for an invalid expression, interval, time zone or template (nothing is stored); 409 `already_exists` for a name taken.',
    body: ScheduleInput, response: { 201: Schedule },
  }),
  listSchedules: route({
    method: 'GET', path: '/api/v1/schedules', scope: 'admin', read: true, tag: 'schedules', summary: 'List schedules, oldest first',
    querystring: ScheduleListQuery, response: { 200: SchedulePage },
  }),
  getSchedule: route({
    method: 'GET', path: '/api/v1/schedules/:id', scope: 'admin', read: true, tag: 'schedules', summary: 'Get a schedule',
    params: ScheduleParams, response: { 200: Schedule },
  }),
  updateSchedule: route({
    method: 'PATCH', path: '/api/v1/schedules/:id', scope: 'admin', tag: 'schedules', summary: 'Change a schedule',
    params: ScheduleParams, body: SchedulePatch, response: { 200: Schedule },
  }),
  deleteSchedule: route({
    method: 'DELETE', path: '/api/v1/schedules/:id', scope: 'admin', tag: 'schedules', summary: 'Delete a schedule and its fire records',
    description: 'The tasks it created stay. Answers the schedule as it was.',
    params: ScheduleParams, response: { 200: Schedule },
  }),
  pauseSchedule: route({
    method: 'POST', path: '/api/v1/schedules/:id/pause', scope: 'admin', tag: 'schedules', summary: 'Pause a schedule',
    description: 'Fires that pass while paused are missed fires: once resumed, the misfire policy decides about those more than misfireGraceMs late.',
    params: ScheduleParams, response: { 200: Schedule },
  }),
  resumeSchedule: route({
    method: 'POST', path: '/api/v1/schedules/:id/resume', scope: 'admin', tag: 'schedules', summary: 'Resume a paused schedule',
    params: ScheduleParams, response: { 200: Schedule },
  }),
  previewSchedule: route({
    method: 'GET', path: '/api/v1/schedules/:id/preview', scope: 'admin', read: true, tag: 'schedules', summary: 'The next fire times, by the database\'s clock',
    params: ScheduleParams, querystring: SchedulePreviewQuery, response: { 200: SchedulePreview },
  }),
  listScheduleFires: route({
    method: 'GET', path: '/api/v1/schedules/:id/fires', scope: 'admin', read: true, tag: 'schedules', summary: 'Fires of a schedule, newest first',
    description: 'Every fire: its time, the task it created, or why it created none.',
    params: ScheduleParams, querystring: ScheduleListQuery, response: { 200: ScheduleFirePage },
  }),

  // ------------------------------------------------------------------ workflows and batches
  createWorkflow: route({
    method: 'POST', path: '/api/v1/workflows', scope: 'producer', tag: 'workflows', summary: 'Submit a workflow: tasks with refs and dependsOn',
    description: 'All tasks are created in one transaction, or none. A task with dependsOn starts `blocked` and is queued once every parent has succeeded; its claim carries the parents\' results. 400 `invalid_graph` naming every offending ref for a cycle, an unknown or a duplicate ref, or a graph over the limits (20,000 tasks, 200,000 edges); nothing is stored. See docs/workflows.md.',
    body: WorkflowInput, response: { 201: WorkflowSubmitted },
  }),
  listWorkflows: route({
    method: 'GET', path: '/api/v1/workflows', scope: 'producer', read: true, tag: 'workflows', summary: 'List workflows and batches, newest first',
    querystring: WorkflowListQuery, response: { 200: WorkflowPage },
  }),
  getWorkflow: route({
    method: 'GET', path: '/api/v1/workflows/:id', scope: 'producer', read: true, tag: 'workflows', summary: 'Get a workflow (or batch) with its counts per state',
    params: WorkflowParams, response: { 200: Workflow },
  }),
  cancelWorkflow: route({
    method: 'POST', path: '/api/v1/workflows/:id/cancel', scope: 'producer', tag: 'workflows', summary: 'Cancel every unfinished task of a workflow',
    description: 'Waiting tasks are cancelled at once; running ones get `cancelRequested: true`.',
    params: WorkflowParams, response: { 200: Workflow },
  }),
  retryWorkflow: route({
    method: 'POST', path: '/api/v1/workflows/:id/retry', scope: 'producer', tag: 'workflows', summary: 'Retry a failed workflow from its dead and cancelled tasks',
    description: 'Each dead or cancelled task runs again with a fresh retry budget; the descendants of a dead task are `blocked` again. 409 while the workflow is running, and for a batch.',
    params: WorkflowParams, response: { 200: Workflow },
  }),
  createBatch: route({
    method: 'POST', path: '/api/v1/batches', scope: 'producer', tag: 'workflows', summary: 'Submit a batch, with an optional completion task',
    description: 'A workflow without edges: all tasks in one transaction, or none. The completion task is queued once every member has finished, whatever the outcome, with the counts per outcome in its payload.',
    body: BatchInput, response: { 201: WorkflowSubmitted },
  }),
  getBatch: route({
    method: 'GET', path: '/api/v1/batches/:id', scope: 'producer', read: true, tag: 'workflows', summary: 'Get a batch with its counts per state',
    params: WorkflowParams, response: { 200: Workflow },
  }),
  cancelBatch: route({
    method: 'POST', path: '/api/v1/batches/:id/cancel', scope: 'producer', tag: 'workflows', summary: 'Cancel a batch: its unfinished members and its completion task',
    params: WorkflowParams, response: { 200: Workflow },
  }),

  // ------------------------------------------------------------------ API keys
  createApiKey: route({
    method: 'POST', path: '/api/v1/api-keys', scope: 'admin', tag: 'api-keys', summary: 'Create an API key (the secret is shown once)',
    body: ApiKeyInput, response: { 201: ApiKeyCreated },
  }),
  listApiKeys: route({
    method: 'GET', path: '/api/v1/api-keys', scope: 'admin', tag: 'api-keys', summary: 'List API keys',
    response: { 200: ApiKeyList },
  }),
  revokeApiKey: route({
    method: 'DELETE', path: '/api/v1/api-keys/:id', scope: 'admin', tag: 'api-keys', summary: 'Revoke an API key',
    params: ApiKeyParams, response: { 200: ApiKey },
  }),

  // ------------------------------------------------------------------ analytics
  analyticsThroughput: route({
    method: 'GET', path: '/api/v1/analytics/throughput', scope: 'admin', read: true, tag: 'analytics', summary: 'Tasks submitted, succeeded, failed and dead per time bucket',
    description: 'From the rollups the analytics duty keeps (minute rows for buckets under an hour, hour rows for 1h, 6-hour rows for 6h, day rows for 1d), at most 15 s behind. Buckets are aligned on UTC.',
    querystring: ThroughputQuery, response: { 200: Throughput },
  }),
  analyticsDurations: route({
    method: 'GET', path: '/api/v1/analytics/durations', scope: 'admin', read: true, tag: 'analytics', summary: 'Attempt duration percentiles (p50, p95, p99) per queue and type',
    querystring: SummaryQuery, response: { 200: Durations },
  }),
  analyticsFailures: route({
    method: 'GET', path: '/api/v1/analytics/failures', scope: 'admin', read: true, tag: 'analytics', summary: 'Failure rate per queue and type',
    querystring: SummaryQuery, response: { 200: Failures },
  }),
  analyticsWorkers: route({
    method: 'GET', path: '/api/v1/analytics/workers', scope: 'admin', read: true, tag: 'analytics', summary: 'Per-worker tasks, success rate, duration percentiles and last seen',
    querystring: WorkerAnalyticsQuery, response: { 200: WorkerAnalytics },
  }),
  analyticsHealth: route({
    method: 'GET', path: '/api/v1/analytics/health', scope: 'admin', read: true, tag: 'analytics', summary: 'System health: queues, oldest ready ages, workers online, firing alerts',
    response: { 200: AnalyticsHealth },
  }),

  // ------------------------------------------------------------------ alerts (docs/operations.md, "Alerts")
  createAlertRule: route({
    method: 'POST', path: '/api/v1/alerts/rules', scope: 'admin', tag: 'alerts', summary: 'Create an alert rule',
    description: 'Every node evaluates it (TASKFLOW_ALERTS_INTERVAL_MS); it fires once its condition has held forMs, and each change into or out of firing is recorded once and sent once to each channel, however many nodes run. 400 naming the field for a bad kind, threshold, window, scope or channel (nothing is stored); 409 `already_exists` for a name taken. Webhook secrets are write-only.',
    body: AlertRuleInput, response: { 201: AlertRule },
  }),
  listAlertRules: route({
    method: 'GET', path: '/api/v1/alerts/rules', scope: 'admin', tag: 'alerts', summary: 'List alert rules, oldest first',
    querystring: AlertRuleListQuery, response: { 200: AlertRulePage },
  }),
  getAlertRule: route({
    method: 'GET', path: '/api/v1/alerts/rules/:id', scope: 'admin', tag: 'alerts', summary: 'Get an alert rule with its state',
    params: AlertRuleParams, response: { 200: AlertRule },
  }),
  updateAlertRule: route({
    method: 'PATCH', path: '/api/v1/alerts/rules/:id', scope: 'admin', tag: 'alerts', summary: 'Change an alert rule',
    params: AlertRuleParams, body: AlertRulePatch, response: { 200: AlertRule },
  }),
  deleteAlertRule: route({
    method: 'DELETE', path: '/api/v1/alerts/rules/:id', scope: 'admin', tag: 'alerts', summary: 'Delete an alert rule',
    description: 'Its history stays. Answers the rule as it was.',
    params: AlertRuleParams, response: { 200: AlertRule },
  }),
  silenceAlertRule: route({
    method: 'POST', path: '/api/v1/alerts/rules/:id/silence', scope: 'admin', tag: 'alerts', summary: 'Silence an alert rule until a time',
    description: 'Until then the rule still changes state and each change is recorded in the history (`silenced: true`), but nothing is sent. Silencing again replaces the time.',
    params: AlertRuleParams, body: AlertSilenceInput, response: { 200: AlertRule },
  }),
  unsilenceAlertRule: route({
    method: 'DELETE', path: '/api/v1/alerts/rules/:id/silence', scope: 'admin', tag: 'alerts', summary: 'Lift the silence of an alert rule',
    params: AlertRuleParams, response: { 200: AlertRule },
  }),
  listAlertHistory: route({
    method: 'GET', path: '/api/v1/alerts/history', scope: 'admin', read: true, tag: 'alerts', summary: 'Fired and resolved changes, newest first',
    description: 'One entry per change into firing (`firing`) and out of it (`resolved`), with the value and threshold then; `rule` filters to one rule.',
    querystring: AlertHistoryQuery, response: { 200: AlertHistoryPage },
  }),
  listFiringAlerts: route({
    method: 'GET', path: '/api/v1/alerts/firing', scope: 'admin', read: true, tag: 'alerts', summary: 'The alert rules firing now',
    response: { 200: FiringAlerts },
  }),

  // ------------------------------------------------------------------ health
  healthz: route({
    method: 'GET', path: '/healthz', scope: null, tag: 'health', summary: 'Liveness: the process serves HTTP',
    response: { 200: Health },
  }),
  readyz: route({
    method: 'GET', path: '/readyz', scope: null, tag: 'health', summary: 'Readiness: the database answers, its schema is current, the node is not draining',
    description: 'Redis down is a warning (200), never a failure. Details (values, errors) only with an admin key.',
    response: { 200: Health, 503: Health },
  }),
} as const;

export type Routes = typeof routes;
export type RouteName = keyof Routes;
