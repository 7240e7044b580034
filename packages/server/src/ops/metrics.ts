/**
 * The Prometheus metrics of a node (docs/operations.md lists them): counters and histograms
 * fed by the engine's telemetry (per process: aggregate with `sum by`), gauges of the queues
 * from the shared snapshot (the same on every node: aggregate with `max by`), the database
 * pools and statements, the HTTP requests, the build, and prom-client's process defaults.
 */
import client from 'prom-client';
import type {
  AttemptObservation, ClaimObservation, Database, Engine, EngineTelemetry, StatsSnapshot,
} from '@taskflow/core';
import { BoundedLabel } from './labels.ts';
import { BucketHistogram, type HistogramSeries } from './histogram.ts';
import type { HealthChecks } from './health.ts';

/** Error classes per queue with a label of their own; the rest are `_OTHER`. */
const ERROR_TYPES_PER_QUEUE = 50;
/** Task types with a label of their own; the rest are `_OTHER`. */
const TASK_TYPES = 200;
/** The snapshot is read at most this often, however often the node is scraped, ms. */
const SNAPSHOT_READ_MS = 1000;

const QUEUE_WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
const ATTEMPT_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const STATEMENT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
/** Most attempt series kept resolved (see attemptSeries); past it the cache starts again. */
const SERIES_CACHE_MAX = 10_000;
const TASK_STATES = ['blocked', 'scheduled', 'queued', 'running', 'retrying', 'dead'] as const;

interface AttemptSeries {
  attempts: client.Counter.Internal;
  duration: HistogramSeries;
  /** taskflow_tasks_finished_total or taskflow_tasks_retried_total, as the next state says. */
  next: client.Counter.Internal | undefined;
}

export interface MetricsOptions {
  version: string;
}

/** Counters, histograms and gauges of one node, in a registry of its own. */
export class TaskflowMetrics implements EngineTelemetry {
  readonly registry = new client.Registry();
  private readonly types = new BoundedLabel(TASK_TYPES);
  private readonly errorTypes = new BoundedLabel(ERROR_TYPES_PER_QUEUE);
  private readonly submittedTotal;
  private readonly attemptsTotal;
  private readonly retriedTotal;
  private readonly finishedTotal;
  private readonly failuresTotal;
  private readonly rejectedTotal;
  private readonly workersLostTotal;
  private readonly queueWait;
  private readonly attemptDuration;
  private readonly statementDuration;
  private readonly httpDuration;
  private readonly queueGauges;
  private readonly series = new Map<string, AttemptSeries>();
  private readonly dependencyUp;
  private readonly alertNotificationsTotal;
  private firingSource: (() => Promise<readonly { severity: string }[]>) | undefined;
  /** Statement names are the code's (a few dozen): their series resolved once. */
  private readonly statementSeries = new Map<string, HistogramSeries>();
  /** taskflow_task_queue_wait_seconds by queue. */
  private readonly waitSeries = new Map<string, HistogramSeries>();
  /** http_server_request_duration_seconds by route, method and status (see httpRequest). */
  private readonly httpSeries = new Map<string, Map<string, Map<number, HistogramSeries>>>();
  private health: HealthChecks | undefined;
  private snapshotSource: (() => Promise<StatsSnapshot | null>) | undefined;
  private snapshotReadAt = 0;
  private snapshotReading: Promise<void> | undefined;

  constructor(opts: MetricsOptions) {
    const registers = [this.registry];
    client.collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters (promtool refuses them); nodejs_active_{handles,requests,resources} by type remain.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
    const counter = (name: string, help: string, labelNames: string[]) => new client.Counter({ name, help, labelNames, registers });
    this.submittedTotal = counter('taskflow_tasks_submitted_total', 'Tasks created by submissions (not those an idempotency key matched).', ['queue', 'task_type']);
    this.attemptsTotal = counter('taskflow_task_attempts_total', 'Attempts ended, by outcome.', ['queue', 'task_type', 'outcome']);
    this.retriedTotal = counter('taskflow_tasks_retried_total', 'Attempts that failed and left the task another attempt (queued or retrying).', ['queue', 'task_type']);
    this.finishedTotal = counter('taskflow_tasks_finished_total', 'Tasks that reached a final state; dead = entered the dead-letter queue.', ['queue', 'task_type', 'state']);
    this.failuresTotal = counter('taskflow_task_failures_total', `Failed attempts by the error class the worker reported (${ERROR_TYPES_PER_QUEUE} per queue, the rest _OTHER).`, ['queue', 'error_type']);
    this.rejectedTotal = counter('taskflow_results_rejected_total', 'Results refused by the fencing check (not the current attempt held by the worker).', ['reason']);
    this.workersLostTotal = counter('taskflow_workers_lost_total', 'Workers declared lost after missing their heartbeats.', []);
    this.queueWait = new BucketHistogram({
      name: 'taskflow_task_queue_wait_seconds', help: 'Ready (run time) to claimed, on the database clock; scheduled delays and backoff excluded.',
      labelNames: ['queue'], buckets: QUEUE_WAIT_BUCKETS, registers,
    });
    this.attemptDuration = new BucketHistogram({
      name: 'taskflow_task_attempt_duration_seconds', help: 'Claim to end of an attempt, on the database clock.',
      labelNames: ['queue', 'task_type', 'outcome'], buckets: ATTEMPT_BUCKETS, registers,
    });
    this.statementDuration = new BucketHistogram({
      name: 'taskflow_db_statement_duration_seconds', help: 'Named SQL statements as this node waited for them (pool wait included).',
      labelNames: ['statement', 'status'], buckets: STATEMENT_BUCKETS, registers,
    });
    this.httpDuration = new BucketHistogram({
      name: 'http_server_request_duration_seconds', help: 'HTTP requests served, by route template.',
      labelNames: ['http_request_method', 'http_route', 'http_response_status_code'], buckets: STATEMENT_BUCKETS, registers,
    });
    new client.Gauge({ name: 'taskflow_build_info', help: 'Always 1; the labels say which build runs.', labelNames: ['version', 'node_version'], registers })
      .set({ version: opts.version, node_version: process.version }, 1);
    this.queueGauges = queueGauges(registers);
    const self = this;
    this.dependencyUp = new client.Gauge({
      name: 'taskflow_dependency_up', help: '1 if the dependency answered the last readiness check of this node.',
      labelNames: ['dependency'], registers,
      async collect() {
        await self.health?.readiness(false);
      },
    });
    this.alertNotificationsTotal = counter('taskflow_alert_notifications_total', 'Alert notifications this node tried to send, by channel type and outcome (sent, failed: retried with backoff).', ['channel', 'outcome']);
    new client.Gauge({
      name: 'taskflow_alerts_firing', help: 'Built-in alert rules firing, by severity (the same on every node: aggregate with max).',
      labelNames: ['severity'], registers,
      async collect() {
        if (!self.firingSource) return;
        const firing = await self.firingSource().catch(() => undefined);
        if (!firing) return; // the database did not answer: the last values stay
        for (const severity of ['info', 'warning', 'critical']) this.set({ severity }, firing.filter((f) => f.severity === severity).length);
      },
    });
    for (const outcome of ['stale'] as const) this.rejectedTotal.inc({ reason: outcome }, 0);
    this.workersLostTotal.inc(0);
  }

  submitted(tasks: readonly { queue: string; type: string }[]): void {
    // A batch is usually of one queue and type: one increment per run of equal labels.
    let run = 0;
    for (let i = 0; i < tasks.length; i++) {
      const t = tasks[i]!;
      run++;
      const next = tasks[i + 1];
      if (next && next.queue === t.queue && next.type === t.type) continue;
      this.submittedTotal.inc({ queue: t.queue, task_type: this.types.of(t.type) }, run);
      run = 0;
    }
  }

  claimed(tasks: readonly ClaimObservation[]): void {
    let series: HistogramSeries | undefined;
    let queue: string | undefined;
    for (const t of tasks) {
      if (t.queue !== queue) {
        queue = t.queue;
        series = this.waitSeries.get(queue);
        if (!series) this.waitSeries.set(queue, (series = this.queueWait.series({ queue })));
      }
      series!.observe(t.waitSeconds);
    }
  }

  settled(attempts: readonly AttemptObservation[]): void {
    // A batch is usually of one queue, type and outcome: the counters move once per run of
    // equal labels, the duration's series is looked up once per run.
    let s: AttemptSeries | undefined;
    let first: AttemptObservation | undefined;
    let run = 0;
    for (const a of attempts) {
      if (!first || a.queue !== first.queue || a.type !== first.type || a.outcome !== first.outcome || a.next !== first.next) {
        if (s) countRun(s, run);
        s = this.attemptSeries(a);
        first = a;
        run = 0;
      }
      run++;
      s!.duration.observe(a.seconds);
      if (a.errorType !== undefined) this.failuresTotal.inc({ queue: a.queue, error_type: this.errorTypes.of(a.errorType, a.queue) });
    }
    if (s) countRun(s, run);
  }

  /** The series an ended attempt counts in, kept per (queue, type, outcome, next state): labels hashed once. */
  private attemptSeries(a: AttemptObservation): AttemptSeries {
    const key = `${a.queue}\u0000${a.type}\u0000${a.outcome}\u0000${a.next}`;
    let s = this.series.get(key);
    if (s) return s;
    if (this.series.size >= SERIES_CACHE_MAX) this.series.clear();
    const labels = { queue: a.queue, task_type: this.types.of(a.type) };
    const finished = a.next === 'succeeded' || a.next === 'dead' || a.next === 'cancelled';
    s = {
      attempts: this.attemptsTotal.labels({ ...labels, outcome: a.outcome }),
      duration: this.attemptDuration.series({ ...labels, outcome: a.outcome }),
      next: finished ? this.finishedTotal.labels({ ...labels, state: a.next }) : a.outcome === 'abandoned' ? undefined : this.retriedTotal.labels(labels),
    };
    this.series.set(key, s);
    return s;
  }

  rejected(count: number): void {
    this.rejectedTotal.inc({ reason: 'stale' }, count);
  }

  workersLost(count: number): void {
    this.workersLostTotal.inc(count);
  }

  /** For instrumentDatabase. */
  readonly statement = (name: string, seconds: number, failed: boolean): void => {
    if (failed) {
      this.statementDuration.observe({ statement: name, status: 'error' }, seconds);
      return;
    }
    let series = this.statementSeries.get(name);
    if (!series) this.statementSeries.set(name, (series = this.statementDuration.series({ statement: name, status: 'ok' })));
    series.observe(seconds);
  };

  /**
   * One HTTP request served (registerHttpHooks). Route templates and methods are the code's
   * strings, the same objects on every request (their hashes cached): three map lookups, no key
   * built.
   */
  httpRequest(method: string, route: string, status: number, seconds: number): void {
    let byMethod = this.httpSeries.get(route);
    if (!byMethod) this.httpSeries.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map()));
    let series = byStatus.get(status);
    if (!series) {
      series = this.httpDuration.series({ http_request_method: method, http_route: route, http_response_status_code: status });
      byStatus.set(status, series);
    }
    series.observe(seconds);
  }

  /** Exports the pools of `db` (PostgreSQL) and the queue gauges of `engine`'s snapshot. */
  watch(db: Database, engine: Engine): void {
    this.snapshotSource = () => engine.readStats();
    if (!db.poolStats) return;
    const poolStats = () => db.poolStats!();
    const registers = [this.registry];
    const gauge = (name: string, help: string, pick: (p: ReturnType<typeof poolStats>[number]) => number) => new client.Gauge({
      name, help, labelNames: ['pool'], registers,
      collect() {
        for (const p of poolStats()) this.set({ pool: p.pool }, pick(p));
      },
    });
    gauge('taskflow_db_pool_connections', 'Connections open in the pool.', (p) => p.total);
    gauge('taskflow_db_pool_idle_connections', 'Open connections not in use.', (p) => p.idle);
    gauge('taskflow_db_pool_waiting_requests', 'Callers waiting for a connection.', (p) => p.waiting);
    gauge('taskflow_db_pool_max_connections', 'The pool\'s size.', (p) => p.max);
  }

  /** taskflow_alerts_firing from the rules firing (read at each scrape). */
  watchAlerts(firing: () => Promise<readonly { severity: string }[]>): void {
    this.firingSource = firing;
  }

  /** Counts one alert notification sent or failed (the notifier's onSent). */
  alertNotification(channel: 'webhook' | 'email', ok: boolean): void {
    this.alertNotificationsTotal.inc({ channel, outcome: ok ? 'sent' : 'failed' });
  }

  /** taskflow_dependency_up from the readiness checks (run at each scrape; they cache their answer a second). */
  watchHealth(health: HealthChecks): void {
    this.health = health;
    health.onDependency = (dependency, ok) => this.dependencyUp.set({ dependency }, ok ? 1 : 0);
  }

  /** The exposition (text format 0.0.4). Reads the snapshot first, at most once a second. */
  async exposition(): Promise<string> {
    await this.readSnapshot();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private async readSnapshot(): Promise<void> {
    if (!this.snapshotSource || Date.now() - this.snapshotReadAt < SNAPSHOT_READ_MS) return;
    this.snapshotReading ??= this.snapshotSource()
      .then((snapshot) => {
        this.snapshotReadAt = Date.now();
        setQueueGauges(this.queueGauges, snapshot);
      })
      .finally(() => {
        this.snapshotReading = undefined;
      });
    await this.snapshotReading;
  }
}

/** The counters of a run of equal attempts (see settled). */
function countRun(s: AttemptSeries, run: number): void {
  s.attempts.inc(run);
  s.next?.inc(run);
}

type QueueGauges = ReturnType<typeof queueGauges>;

function queueGauges(registers: client.Registry[]) {
  const gauge = (name: string, help: string, labelNames: string[] = ['queue']) => new client.Gauge({ name, help, labelNames, registers });
  return {
    tasks: gauge('taskflow_queue_tasks', 'Tasks per state (unfinished states and dead), from the shared snapshot.', ['queue', 'state']),
    oldestReady: gauge('taskflow_queue_oldest_ready_age_seconds', 'Age of the oldest queued task (since its run time) at the snapshot; 0 if none.'),
    oldestRunning: gauge('taskflow_queue_oldest_running_age_seconds', 'Age of the longest-running attempt at the snapshot; 0 if none.'),
    paused: gauge('taskflow_queue_paused', '1 if the queue is paused.'),
    workers: gauge('taskflow_queue_workers', 'Live workers serving the queue.'),
    slots: gauge('taskflow_queue_worker_slots', 'Slots (concurrency) of the live workers serving the queue.'),
    liveWorkers: gauge('taskflow_workers', 'Live (active, unexpired) workers.', []),
    refreshed: gauge('taskflow_queue_stats_refresh_timestamp_seconds', 'When the snapshot of the queue gauges was taken (database clock).', []),
  };
}

function setQueueGauges(g: QueueGauges, s: StatsSnapshot | null): void {
  for (const gauge of Object.values(g)) gauge.reset();
  if (!s) return;
  g.refreshed.set(s.takenAt);
  g.liveWorkers.set(s.workers);
  for (const q of s.queues) {
    const queue = q.queue;
    for (const state of TASK_STATES) g.tasks.set({ queue, state }, q.counts[state] ?? 0);
    g.oldestReady.set({ queue }, q.oldestReadyAgeSeconds);
    g.oldestRunning.set({ queue }, q.oldestRunningAgeSeconds);
    g.paused.set({ queue }, q.paused ? 1 : 0);
    g.workers.set({ queue }, q.workers);
    g.slots.set({ queue }, q.slots);
  }
}
