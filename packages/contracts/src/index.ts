/**
 * @taskflow/contracts: the HTTP API, once. TypeBox schemas feed the server's validation and
 * OpenAPI document and the SDK's types.
 */
export * from './common.ts';
export * from './tasks.ts';
export * from './workers.ts';
export * from './queues.ts';
export * from './apiKeys.ts';
export * from './schedules.ts';
export * from './analytics.ts';
export * from './workflows.ts';
export * from './alerts.ts';
export * from './routes.ts';
export type { Static, TSchema } from 'typebox';
