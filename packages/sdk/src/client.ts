/**
 * The HTTP client: one typed method per endpoint of the contract's route table, through a
 * single `call` (transport.ts sends it).
 */
import type { Dispatcher } from 'undici';
import { routes, type RouteName, type Routes } from '@taskflow/contracts';
import type * as C from '@taskflow/contracts';
import type { RetryMode, RetryOptions } from './retry.ts';
import { Transport, type CallInput, type CallOptions, type Success } from './transport.ts';
import { generateKey, withKey } from './keys.ts';
import { Submitter, type SubmitOptions, type Submitted } from './submitter.ts';
import { AlertsClient } from './alerts.ts';
import { endSpan, inSpan, startSendOneSpan, startSendSpan, withTraceContext, withTraceContextOne } from './tracing.ts';

/**
 * Which submissions get an idempotency key made up by the client when the caller gave none,
 * so that a retry after a failure whose outcome is unknown answers the first task instead of
 * making a second one:
 * - `single` (the default): `enqueue` and `submit` (each coalesced batch too);
 * - `all`: `enqueueMany` and `enqueueManyIds` too;
 * - `none`: never: a submission without a key retries only what certainly did not reach the
 *   service, and fails on the rest, saying it was not retried.
 * A key made up is `sdk:` and a random UUID; a task keeps it (`idempotencyKey`) like any key.
 * Bulk submissions are left out by default because a key doubles what their insert costs the
 * service (the SDK's README has the figures: `cd bench && npm run keys`).
 */
export type GeneratedKeys = 'single' | 'all' | 'none';

export interface ClientOptions {
  /** Base URL of the service, e.g. `http://127.0.0.1:7700`. */
  url: string;
  /** An API key with the scopes the calls need. */
  apiKey: string;
  /** Per-request timeout in ms, on top of any long-poll wait. @defaultValue 30000 */
  timeoutMs?: number;
  /** The undici dispatcher to send requests with. @defaultValue a keep-alive Agent of the client's own */
  dispatcher?: Dispatcher;
  /** How `submit` coalesces concurrent submissions into batch requests. */
  submit?: SubmitOptions;
  /**
   * How submissions and reads retry after a failure (see retry.ts and the SDK's README for
   * which calls retry on what); `false`: never. @defaultValue 6 attempts within 30 s, waits from 100 ms doubling to 5 s, or the answer's Retry-After
   */
  retry?: RetryOptions | false;
  /** Which submissions get a generated idempotency key (see GeneratedKeys). @defaultValue 'single' */
  idempotencyKeys?: GeneratedKeys;
}

export type { CallInput, CallOptions } from './transport.ts';

export class TaskflowClient {
  readonly url: string;
  private readonly transport: Transport;
  private readonly submitter: Submitter;
  private readonly generatedKeys: GeneratedKeys;
  /** The built-in alerts: rules, silences, history, firing (admin scope). */
  readonly alerts: AlertsClient;

  constructor(opts: ClientOptions) {
    this.alerts = new AlertsClient(this);
    this.transport = new Transport(opts);
    this.url = this.transport.url;
    this.generatedKeys = opts.idempotencyKeys ?? 'single';
    this.submitter = new Submitter(
      (body, idempotent) => this.send('createTasks', routes.createTasks.path, body, undefined, idempotent ? 'idempotent' : 'unsent') as Promise<C.TaskBatchResult>,
      { ...opts.submit, generateKeys: this.generatedKeys !== 'none' },
    );
  }

  /**
   * Waits for the submissions made with `submit` to be answered, then closes the client's
   * connections (not a dispatcher passed in).
   */
  async close(): Promise<void> {
    await this.submitter.idle();
    await this.transport.close();
  }

  /**
   * Calls any route of the contract. Non-2xx answers throw TaskflowApiError. Reads (GET) retry
   * as `retry` says; other routes do not (the typed methods below retry what is safe).
   */
  call<K extends RouteName>(name: K, input: CallInput<Routes[K]>, opts: CallOptions = {}): Promise<Success<Routes[K]>> {
    return this.transport.call(name, input, opts);
  }

  private send<K extends RouteName>(
    name: K, path: string, body: string | undefined, opts: CallOptions = {}, retry: RetryMode = 'none',
  ): Promise<Success<Routes[K]>> {
    return this.transport.send(name, path, body, opts, retry);
  }

  // ---------------------------------------------------------------- tasks
  /**
   * Submits one task in a request of its own; answers the whole task. Retried after any
   * failure `retry` allows when the task has an idempotency key (given, or made up: the
   * default), else only after one that says the request did not reach the service.
   */
  async enqueue(task: C.TaskInput): Promise<C.Task> {
    const span = startSendOneSpan(task);
    try {
      const out = await inSpan(span, () => this.enqueueOne(withTraceContextOne(task, span)));
      endSpan(span, undefined, out.id);
      return out;
    } catch (err) {
      endSpan(span, err);
      throw err;
    }
  }
  private async enqueueOne(task: C.TaskInput): Promise<C.Task> {
    const given = task.idempotencyKey != null;
    const json = given || this.generatedKeys === 'none' ? JSON.stringify(task) : withKey(JSON.stringify(task), generateKey());
    return this.send('createTask', routes.createTask.path, json, undefined, given || this.generatedKeys !== 'none' ? 'idempotent' : 'unsent');
  }
  /**
   * Submits one task, coalesced with the other `submit` calls of the same event-loop turn into
   * one batch request (see submitter.ts); resolves once the task is committed, with whether it
   * was created (false: its idempotency key matched an existing task) and a reference to it.
   * The fast way for many concurrent producers to submit single tasks.
   */
  submit(task: C.TaskInput): Promise<Submitted> {
    const span = startSendOneSpan(task);
    return this.submitter.submit(withTraceContextOne(task, span)).then(
      (item) => {
        endSpan(span, undefined, item.task.id);
        return item;
      },
      (err: unknown) => {
        endSpan(span, err);
        throw err;
      },
    );
  }
  /**
   * Submits up to 1,000 tasks in one request (all or nothing); answers a reference to each.
   * Retried after any failure `retry` allows when every task has an idempotency key (given, or
   * made up with `idempotencyKeys: 'all'`), else only after one that says the request did not
   * reach the service.
   */
  async enqueueMany(tasks: C.TaskInput[]): Promise<C.TaskBatchResult> {
    return this.traced(tasks, (traced) => this.enqueueManyUntraced(traced));
  }
  private async enqueueManyUntraced(tasks: C.TaskInput[]): Promise<C.TaskBatchResult> {
    const { body, generated, retry } = this.batchBody(tasks);
    const out = (await this.send('createTasks', routes.createTasks.path, body, undefined, retry)) as C.TaskBatchResult;
    // A made-up key that matched a task can only be this call's own first attempt (a held
    // unique key is another task's).
    if (generated) {
      for (const k of generated) {
        const item = out.items[k];
        if (item && item.deduplicated !== 'unique') {
          item.created = true;
          delete item.deduplicated;
        }
      }
    }
    return out;
  }
  /**
   * Submits up to 1,000 tasks in one request (all or nothing) and answers their ids only, in
   * input order, with the positions whose idempotency key matched an existing task (whose id
   * is then the original's). The fast way to submit in bulk: the server answers `Prefer:
   * return=minimal`, about a tenth of the bytes of `enqueueMany`'s answer, which the client
   * parses in a fraction of the time (bench/README.md: the bulk enqueue).
   */
  async enqueueManyIds(tasks: C.TaskInput[]): Promise<{ ids: string[]; existing: number[] }> {
    return this.traced(tasks, (traced) => this.enqueueManyIdsUntraced(traced));
  }
  private async enqueueManyIdsUntraced(tasks: C.TaskInput[]): Promise<{ ids: string[]; existing: number[] }> {
    const { body, generated, retry } = this.batchBody(tasks);
    const out = await this.send('createTasks', routes.createTasks.path, body, { headers: { prefer: 'return=minimal' } }, retry);
    // A server that does not honour the preference answers in full.
    const found = 'items' in out
      ? { ids: out.items.map((i) => i.task.id), existing: out.items.flatMap((i, k) => (i.created ? [] : [k])) }
      : { ids: out.ids.split(','), existing: out.existing };
    // A made-up key that matched a task can only be this call's own first attempt; with a
    // unique key, the minimal answer does not say which key matched, so it stays reported.
    if (generated && found.existing.length > 0) found.existing = found.existing.filter((k) => !generated.has(k) || tasks[k]!.uniqueKey != null);
    return found;
  }

  /**
   * A batch submission in a `send` span (OpenTelemetry, a no-op without an SDK), whose context
   * goes into every task that carries none (tracing.ts).
   */
  private async traced<R>(tasks: C.TaskInput[], submit: (tasks: C.TaskInput[]) => Promise<R>): Promise<R> {
    const span = startSendSpan(tasks);
    try {
      const out = await inSpan(span, () => submit(withTraceContext(tasks, span)));
      endSpan(span);
      return out;
    } catch (err) {
      endSpan(span, err);
      throw err;
    }
  }

  /** A batch's request body, the positions whose keys were made up, and how it may retry. */
  private batchBody(tasks: C.TaskInput[]): { body: string; generated: Set<number> | undefined; retry: RetryMode } {
    if (this.generatedKeys !== 'all') {
      const keyed = tasks.every((t) => t.idempotencyKey != null);
      return { body: JSON.stringify({ tasks }), generated: undefined, retry: keyed ? 'idempotent' : 'unsent' };
    }
    const generated = new Set<number>();
    const parts = tasks.map((t, k) => {
      const json = JSON.stringify(t);
      if (t.idempotencyKey != null) return json;
      generated.add(k);
      return withKey(json, generateKey());
    });
    return { body: `{"tasks":[${parts.join(',')}]}`, generated, retry: 'idempotent' };
  }
  listTasks(query: C.TaskListQuery = {}): Promise<C.TaskPage> {
    return this.call('listTasks', { query });
  }
  getTask(id: string): Promise<C.TaskWithAttempts> {
    return this.call('getTask', { params: { id } });
  }
  updateTask(id: string, patch: C.TaskPatch): Promise<C.Task> {
    return this.call('updateTask', { params: { id }, body: patch });
  }
  cancelTask(id: string): Promise<C.Task> {
    return this.call('cancelTask', { params: { id } });
  }
  retryTask(id: string): Promise<C.Task> {
    return this.call('retryTask', { params: { id } });
  }
  /** What holds a task back (run time, parents, paused queue, concurrency or rate limits): docs/flow-control.md. */
  explainTask(id: string): Promise<C.TaskExplanation> {
    return this.call('explainTask', { params: { id } });
  }

  // ---------------------------------------------------------------- dead-letter queue
  listDead(query: C.DlqListQuery = {}): Promise<C.TaskPage> {
    return this.call('listDead', { query });
  }
  requeueDead(input: C.DlqRequeueInput): Promise<C.DlqRequeueResult> {
    return this.call('requeueDead', { body: input });
  }
  requeueDeadOne(id: string): Promise<C.Task> {
    return this.call('requeueDeadOne', { params: { id } });
  }
  purgeDead(query: { queue?: string } = {}): Promise<{ purged: number }> {
    return this.call('purgeDead', { query });
  }

  // ---------------------------------------------------------------- queues
  listQueues(): Promise<{ items: C.Queue[] }> {
    return this.call('listQueues', {});
  }
  getQueue(name: string): Promise<C.Queue> {
    return this.call('getQueue', { params: { name } });
  }
  pauseQueue(name: string): Promise<C.Queue> {
    return this.call('pauseQueue', { params: { name } });
  }
  resumeQueue(name: string): Promise<C.Queue> {
    return this.call('resumeQueue', { params: { name } });
  }
  /**
   * Changes a queue's flow settings (admin scope): limits, admission, default retry policy. A
   * field absent keeps its value, null clears it (docs/flow-control.md).
   */
  updateQueueSettings(name: string, patch: C.QueueSettingsPatch): Promise<C.Queue> {
    return this.call('updateQueueSettings', { params: { name }, body: patch });
  }

  // ---------------------------------------------------------------- schedules (admin scope)
  createSchedule(input: C.ScheduleInput): Promise<C.Schedule> {
    return this.call('createSchedule', { body: input });
  }
  listSchedules(query: C.ScheduleListQuery = {}): Promise<C.SchedulePage> {
    return this.call('listSchedules', { query });
  }
  getSchedule(id: string): Promise<C.Schedule> {
    return this.call('getSchedule', { params: { id } });
  }
  updateSchedule(id: string, patch: C.SchedulePatch): Promise<C.Schedule> {
    return this.call('updateSchedule', { params: { id }, body: patch });
  }
  deleteSchedule(id: string): Promise<C.Schedule> {
    return this.call('deleteSchedule', { params: { id } });
  }
  pauseSchedule(id: string): Promise<C.Schedule> {
    return this.call('pauseSchedule', { params: { id } });
  }
  resumeSchedule(id: string): Promise<C.Schedule> {
    return this.call('resumeSchedule', { params: { id } });
  }
  /** The next `count` fire times (default 10, at most 100), by the database's clock. */
  previewSchedule(id: string, count?: number): Promise<C.SchedulePreview> {
    return this.call('previewSchedule', { params: { id }, query: count === undefined ? {} : { count } });
  }
  /** A schedule's fires, newest first: each fire's time, its task, or why it made none. */
  listScheduleFires(id: string, query: C.ScheduleListQuery = {}): Promise<C.ScheduleFirePage> {
    return this.call('listScheduleFires', { params: { id }, query });
  }

  // ---------------------------------------------------------------- analytics (admin or read scope)
  /** Tasks submitted, succeeded, failed and dead per time bucket (default: 24h in 1h buckets). */
  analyticsThroughput(query: C.ThroughputQuery = {}): Promise<C.Throughput> {
    return this.call('analyticsThroughput', { query });
  }
  /** Attempt duration p50/p95/p99 per queue and type over a window (default 1h). */
  analyticsDurations(query: C.SummaryQuery = {}): Promise<C.Durations> {
    return this.call('analyticsDurations', { query });
  }
  /** Counts and failure rate per queue and type over a window (default 1h). */
  analyticsFailures(query: C.SummaryQuery = {}): Promise<C.Failures> {
    return this.call('analyticsFailures', { query });
  }
  /** Per worker: tasks, success rate, duration percentiles, last seen (default 1h). */
  analyticsWorkers(query: C.WorkerAnalyticsQuery = {}): Promise<C.WorkerAnalytics> {
    return this.call('analyticsWorkers', { query });
  }
  /** Queues with their ready counts and oldest ready ages, workers online, firing alerts. */
  analyticsHealth(): Promise<C.AnalyticsHealth> {
    return this.call('analyticsHealth', {});
  }

  // ---------------------------------------------------------------- workflows and batches
  /**
   * Submits a workflow: tasks with `ref`s and `dependsOn` (refs), all created or none
   * (docs/workflows.md). A bad graph is a 400 `invalid_graph` naming every offending ref.
   */
  createWorkflow(input: C.WorkflowInput): Promise<C.WorkflowSubmitted> {
    return this.call('createWorkflow', { body: input });
  }
  listWorkflows(query: C.WorkflowListQuery = {}): Promise<C.WorkflowPage> {
    return this.call('listWorkflows', { query });
  }
  /** A workflow (or batch) with its state and its counts per task state. */
  getWorkflow(id: string): Promise<C.Workflow> {
    return this.call('getWorkflow', { params: { id } });
  }
  cancelWorkflow(id: string): Promise<C.Workflow> {
    return this.call('cancelWorkflow', { params: { id } });
  }
  /** Runs a failed workflow again from its dead and cancelled tasks. */
  retryWorkflow(id: string): Promise<C.Workflow> {
    return this.call('retryWorkflow', { params: { id } });
  }
  /** Submits a batch with an optional completion task queued once every member has finished. */
  createBatch(input: C.BatchInput): Promise<C.WorkflowSubmitted> {
    return this.call('createBatch', { body: input });
  }
  getBatch(id: string): Promise<C.Workflow> {
    return this.call('getBatch', { params: { id } });
  }
  cancelBatch(id: string): Promise<C.Workflow> {
    return this.call('cancelBatch', { params: { id } });
  }

  // ---------------------------------------------------------------- workers
  registerWorker(input: C.WorkerRegistration): Promise<C.WorkerRegistered> {
    return this.call('registerWorker', { body: input });
  }
  listWorkers(query: C.WorkerListQuery = {}): Promise<C.WorkerPage> {
    return this.call('listWorkers', { query });
  }
  getWorker(id: string): Promise<C.Worker> {
    return this.call('getWorker', { params: { id } });
  }
  heartbeat(id: string, input: C.HeartbeatInput = {}, opts?: CallOptions): Promise<C.Heartbeat> {
    return this.call('heartbeat', { params: { id }, body: input }, opts);
  }
  claim(id: string, input: C.ClaimInput, opts?: CallOptions): Promise<C.ClaimOutput> {
    return this.call('claim', { params: { id }, body: input }, { ...opts, waitMs: input.waitMs });
  }
  reportResults(id: string, results: C.TaskResult[], opts?: CallOptions): Promise<C.ResultsOutput> {
    return this.call('reportResults', { params: { id }, body: { results } }, opts);
  }
  reportResult(id: string, taskId: string, result: C.SingleResult): Promise<C.ResultOutcome> {
    return this.call('reportResult', { params: { id, taskId }, body: result });
  }
  /**
   * Deregisters the worker. `started`: the tasks it started and did not report (with their
   * attempts); every other task it holds is handed back with its attempt refunded. Omitted,
   * every held task uses up its attempt.
   */
  deregisterWorker(id: string, started?: C.TaskAttempt[]): Promise<{ released: number }> {
    return this.call('deregisterWorker', { params: { id }, body: started ? { started } : {} });
  }

  // ---------------------------------------------------------------- API keys, health
  createApiKey(input: C.ApiKeyInput): Promise<C.ApiKeyCreated> {
    return this.call('createApiKey', { body: input });
  }
  listApiKeys(): Promise<{ items: C.ApiKey[] }> {
    return this.call('listApiKeys', {});
  }
  revokeApiKey(id: string): Promise<C.ApiKey> {
    return this.call('revokeApiKey', { params: { id } });
  }
  healthz(): Promise<{ status: string }> {
    return this.call('healthz', {});
  }
}
