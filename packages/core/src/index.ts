/**
 * @taskflow/core: the engine. Storage drivers, migrations, the task state machine, claims,
 * settlement, rescue, wake-ups. Imports nothing else of Taskflow's.
 *
 * The PGlite driver (`@taskflow/core/pglite`) and the Redis transport (`@taskflow/core/redis`)
 * are separate entry points, loaded only by a node that uses them: each costs tens of MB of
 * memory in a process that does not.
 */
export type { Database, Executor, Statement, QueryResult, DriverName, PoolStats } from './db/types.ts';
export { openDatabase, type OpenDatabaseOptions } from './db/open.ts';
export { DataDirError, ensureDirectory, type DataDirProblem } from './db/dataDir.ts';
export { DataDirLockedError, lockDataDir, type DataDirLock, type LockHolder, type LockRefusal } from './db/dataDirLock.ts';
export { openPostgres, type PostgresOptions } from './db/postgres.ts';
export { quoteIdent } from './db/ident.ts';
export { migrate, loadMigrations, type Migration, type MigrateResult } from './migrate.ts';
export { Engine, type EngineConfig, type EngineEvents, type EnqueueResult, type RequeueOutcome, type TaskRef, type FirePassResult } from './engine/engine.ts';
export { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from './engine/options.ts';
export { errorTypeOf, type EngineTelemetry, type AttemptObservation, type AttemptOutcome, type ClaimObservation } from './engine/telemetry.ts';
export type { QueueStats, StatsSnapshot } from './engine/stats.ts';
export type { DatabaseHealth } from './engine/health.ts';
export { instrumentDatabase, type StatementObserver } from './db/instrument.ts';
export { TASK_FIELDS, type TaskField, type TaskFieldKind } from './engine/taskFields.ts';
export { EnqueueBatcher, type EnqueueBatcherOptions } from './engine/batcher.ts';
export { isTaskId, isUuid } from './engine/ids.ts';
export { weightedOrder } from './engine/weights.ts';
export * from './engine/types.ts';
export type * from './engine/scheduleTypes.ts';
export type { QueueSettings, QueueSettingsPatch, RateLimit } from './engine/flowSettings.ts';
export type { TaskBlocker, TaskExplanation } from './engine/explain.ts';
export type * from './engine/workflowTypes.ts';
export { MAX_WORKFLOW_TASKS, MAX_WORKFLOW_EDGES, checkGraph, findCycle } from './engine/graph.ts';
export { MAX_PARENT_RESULT_BYTES } from './engine/settle.ts';
export { checkScheduleTiming } from './engine/schedules.ts';
export { Maintenance, DEFAULT_MAINTENANCE_OPTIONS, type MaintenanceOptions } from './maintenance.ts';
export { Loop, type LoopOptions } from './loop.ts';
export { WakeHub, Coalescer, parseWakeMessage, type WakeHubOptions, type WakeMessage, type WakeTransport, type Subscription } from './wake/hub.ts';
export { PgNotifyTransport } from './wake/pgNotify.ts';
export { ApiKeyStore, hashApiKey, type ApiKey, type Scope } from './apiKeys.ts';
export { databaseClock, ManualClock, type Clock } from './clock.ts';
export { silentLogger, type Logger } from './logger.ts';
export * from './errors.ts';
export { errorLog, type LoggedError } from './errorLog.ts';
export {
  Analytics, WORKERS_MAX, HEALTH_QUEUES_MAX, type AnalyticsWindow, type ThroughputPoint, type DurationPercentiles,
  type QueueTypeDurations, type QueueTypeFailures, type WorkerPerformance, type HealthSummary,
} from './analytics/analytics.ts';
export { AnalyticsRollupDuty, type RollupDutyOptions } from './analytics/duty.ts';
export { DEFAULT_ROLLUP_OPTIONS, type RollupOptions, type RollupPassResult } from './analytics/rollup.ts';
export {
  THROUGHPUT_BUCKETS, WINDOW_LIMITS, parseDuration, throughputWindow, summaryWindow, type Resolution, type ThroughputBucket,
} from './analytics/window.ts';
export { TIERS, coverWindow, type RowRange } from './analytics/tiers.ts';
export { ERROR_BOUND, bucketOf, bucketValueMs, percentileMs, type Histogram } from './analytics/histogram.ts';
export { Alerts, AlertEvaluationDuty, type AlertDutyOptions } from './alerts/alerts.ts';
export { checkAlertRule, channelViews, mergePatch as mergeAlertPatch } from './alerts/rules.ts';
export { nextMove, type Move } from './alerts/transition.ts';
export { NOTIFY_BACKOFF, NOTIFY_MAX_ATTEMPTS, NOTIFY_TIMEOUT_MS } from './alerts/evaluate.ts';
export * from './alerts/types.ts';
