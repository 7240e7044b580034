/** @taskflow/sdk: the TypeScript client and worker for Taskflow (HTTP only). */
export { TaskflowClient, type ClientOptions, type CallInput, type CallOptions, type GeneratedKeys } from './client.ts';
export { AlertsClient } from './alerts.ts';
export type { RetryOptions } from './retry.ts';
export type { SubmitOptions, Submitted } from './submitter.ts';
export { Worker, type WorkerOptions, type TaskHandler, type TaskContext, type WorkerLogger, type WorkerEvents } from './worker.ts';
export {
  TaskflowApiError, TaskflowNetworkError, UnrecoverableError, RetryAfterError, TaskCancelledError, WorkerShutdownError, LeaseLostError,
} from './errors.ts';
export type * from '@taskflow/contracts';
