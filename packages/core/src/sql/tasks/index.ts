/**
 * Every statement that reads or writes `tasks` (and `attempts`), one module per family. Only
 * the engine calls these; each names its parameters and the invariant it keeps.
 *
 * Conventions:
 * - `$now` parameters are `coalesce($n::timestamptz, now())`: database time unless a test
 *   injects a clock.
 * - Batches of results travel as one JSON array (`json_to_recordset`): one parse in PostgreSQL
 *   instead of one array parameter per column. JSON values that may themselves be `null` are
 *   wrapped as `{"v": value}` so that a JSON null stays distinguishable from "absent". Inserts
 *   are the exception: an array per column (see insert.ts).
 */
export { TASK_COLUMNS } from './columns.ts';
export * from './insert.ts';
export * from './insertUnique.ts';
export * from './insertGraph.ts';
export { taskClaim, taskClaimObserved } from './claim.ts';
export * from './settle.ts';
export * from './rescue.ts';
export * from './maintenance.ts';
export * from './admin.ts';
export * from './read.ts';
export * from './dependents.ts';
