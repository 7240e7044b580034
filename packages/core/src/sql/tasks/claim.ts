/** The claim: ready tasks of one queue leased to a worker, in one atomic statement. */
import type { Statement } from '../../db/types.ts';
import { parentsJson } from './dependents.ts';

/**
 * The run time of a claimed task as epoch seconds, for its queue wait: NULL when it is the
 * creation time (a task ready as soon as it was submitted, the usual one), which the claim
 * returns anyway; a comparison costs the database less than a number's output.
 */
export const READY_AT = `CASE WHEN t.run_at = t.created_at THEN NULL ELSE date_part('epoch', t.run_at) END`;

/**
 * The most tasks one claim statement leases: the HTTP API's largest `max` (contracts,
 * workers.ts). A larger `limit` claims this many.
 */
export const CLAIM_MAX = 1000;

/**
 * The claim, as CTEs `picked` and `claimed` over a `clock` CTE, for `taskClaim` and
 * `taskSucceedAndClaim`. Parameters are named by the caller: queue, limit, worker id.
 * `observed`: `claimed` also returns `ready_at` (READY_AT), for the `…Observed` variants.
 *
 * Why this shape: one statement, so a claim is atomic; SKIP LOCKED, so concurrent claimers
 * never wait on each other nor take the same row; equality on one queue, so the partial index
 * `tasks_ready` (queue, priority DESC, run_at, id) WHERE state = 'queued' serves the ORDER BY
 * ... LIMIT directly, the cost per claim does not grow with the backlog, and on Citus the
 * claim stays on one shard. A limited queue (a concurrency or rate limit: sql/flow.ts) is
 * skipped as a paused one is: its claims go through taskClaimLimited. The paused-queue and
 * worker checks are uncorrelated sub-queries: evaluated once per statement, not per row. The
 * update finds the picked rows by the address of the version each lock took (`ctid =
 * ANY(ARRAY(...))`, a TID scan whatever the planner guesses; joined `FROM picked`, it may
 * choose a hash join over a sequential scan of the whole table): 2.7% fewer instructions per
 * task claimed and settled than by `id = ANY(...)`, an index probe of the primary key per row
 * (`npm run pg-instructions -- --variants base,analyzed`, claims of 250). A version the update
 * cannot see (one changed after the statement's snapshot, locked through its newer version)
 * stays locked and unclaimed until the commit: the claim under-fills, never doubles.
 * An expired task (expires_at at or before now) is stepped over, never started: a filter on
 * the rows the index scan reads, which is one null test per row while no task has a
 * deadline; the expiry duty cancels it (taskExpire).
 *
 * The limit is written twice so that a prepared statement keeps one generic plan, planned
 * once per connection. The inner query stops at CLAIM_MAX rows, a constant: every plan costs
 * an index walk of at most that many rows, whatever the backlog and with or without
 * statistics, never a scan and sort of the whole queue. The outer `LIMIT (SELECT limit)` hides
 * the batch size from the planner, in custom plans as in the generic one, so that both cost
 * the same and the plan cache, which plans the statement again at each execution while a
 * custom plan looks cheaper, keeps the generic one. It has no ORDER BY: the sub-query's rows
 * come in its order, and a sort there would read and lock CLAIM_MAX rows. With `LIMIT limit`
 * alone, a generic plan estimates a tenth of the ready tasks; once autovacuum has analyzed
 * `tasks` with a few thousand ready, it loses to custom plans, and taskSucceedAndClaim is planned at every execution:
 * 3.6 million of PostgreSQL's instructions per statement, 1,156,810 per task claimed and
 * settled in claims of 5 against 421,828 in this shape, 231,493 against 220,743 in claims
 * of 250 (`cd bench && npm run pg-instructions -- --variants base,analyzed --batch 5 --n 5000`;
 * without statistics, `base`, the two shapes are within 0.7%).
 *
 * Strategies compared, by PostgreSQL's instructions for the claim and settlement of each of
 * 20,000 tasks in statements of 250 (`cd bench && npm run pg-instructions -- --variants base`):
 * - the answer sorted from the update's own RETURNING rows (the claim does not change the
 *   order's columns) rather than by joining `picked` back: 1.2% fewer;
 * - the lease and creation times as epoch seconds (`date_part`) formatted in Node, rather than
 *   RFC 3339 text from to_char: 3.3% fewer.
 * Ruled out by design: SELECT ... FOR UPDATE, then UPDATE, as two statements (a round trip
 * more per claim), and advisory-lock claims (no index-ordered scan, and locks to release).
 */
export function claimCtes(queue: string, limit: string, worker: string, observed = false): string {
  return `picked AS (
  SELECT tid FROM (
    SELECT ctid AS tid FROM tasks
     WHERE state = 'queued' AND queue = ${queue}
       AND (expires_at IS NULL OR expires_at > (SELECT t FROM clock))
       AND NOT EXISTS (SELECT 1 FROM queues WHERE name = ${queue} AND (paused OR limited))
       AND EXISTS (SELECT 1 FROM workers w WHERE w.id = ${worker} AND w.state = 'active'
                      AND w.queues @> jsonb_build_array(jsonb_build_object('name', ${queue}::text)))
     ORDER BY priority DESC, run_at, id
     LIMIT ${CLAIM_MAX}
     FOR UPDATE SKIP LOCKED
  ) p
  LIMIT (SELECT ${limit}::integer)
),
${claimedUpdate(worker, observed ? ` ${READY_AT} AS ready_at,` : '')}`;
}

/**
 * The claimed tasks in claim order (priority, run time, id), sorted from the update's own
 * output (see claimCtes).
 */
/**
 * The CTE `claimed`: leases the tasks of CTE `picked` to `worker` as their next attempt and
 * returns what a claim answers (CLAIMED_COLUMNS), plus `extra` returned columns. Shared by
 * taskClaim's CTEs and taskClaimLimited (sql/flow.ts). `picked` names its tasks by the address
 * of the version it locked (`tid`), found by a TID scan (see claimCtes).
 */
export function claimedUpdate(worker: string, extra = ''): string {
  return `claimed AS (
  UPDATE tasks t
     SET state = 'running', attempt = t.attempt + 1, worker_id = ${worker}, started_at = c.t,
         finished_at = NULL, logs = NULL, lease_expires_at = c.t + t.timeout_ms * interval '1 millisecond'
    FROM clock c
   WHERE t.ctid = ANY(ARRAY(SELECT tid FROM picked))
  RETURNING t.id, t.queue, t.type, t.attempt, t.attempt_base, t.max_attempts, t.priority,
            t.payload::text AS payload_json, t.payload_bytes, t.content_type, t.timeout_ms,
            date_part('epoch', t.lease_expires_at) AS lease_expires_at, t.tags,
            date_part('epoch', t.created_at) AS created_at, t.run_at, t.traceparent, t.tracestate,${extra} ${parentsJson('t')} AS parents_json
)`;
}

export const CLAIMED_COLUMNS = `queue, type, attempt, attempt_base, max_attempts, priority, payload_json, payload_bytes,
       content_type, timeout_ms, lease_expires_at, tags, created_at, traceparent, tracestate, parents_json`;
export const CLAIMED_IN_ORDER = `FROM claimed ORDER BY priority DESC, run_at, id`;

/**
 * taskClaim: leases up to $2 ready tasks of queue $1 to worker $3.
 * $1 queue, $2 limit, $3 worker id, $4 now
 * Keeps: see claimCtes. Returns the tasks in claim order (priority, run time, id). Each claim
 * raises the fencing token `attempt` by one and sets the lease to now + timeout. A paused or
 * limited queue yields nothing, and so does a worker that is not active or does not serve the queue. The
 * payload comes back as JSON text, spliced into the response without a parse/serialise trip;
 * times come back as seconds since the epoch (see `iso`).
 */
export const taskClaim: Statement = {
  name: 'tf_task_claim',
  text: `
WITH clock AS (SELECT coalesce($4::timestamptz, now()) AS t),
${claimCtes('$1', '$2', '$3')}
SELECT id, ${CLAIMED_COLUMNS} ${CLAIMED_IN_ORDER}`,
};

/**
 * taskClaimObserved: taskClaim, with `ready_at` (READY_AT: the run time as epoch seconds, or
 * null when it is the creation time) after the columns: with the lease it gives the queue wait
 * the metrics observe (engine/observe.ts), without a query of their own. Run instead of
 * taskClaim only when an observer is set, so that a node without metrics pays nothing for it.
 * The null saves 1.6% of PostgreSQL's instructions for a claim and settlement (3,776 per task,
 * a float's output among them: `npm run pg-instructions -- --variants base,observed`).
 * $1 queue, $2 limit, $3 worker id, $4 now
 */
export const taskClaimObserved: Statement = {
  name: 'tf_task_claim_observed',
  text: `
WITH clock AS (SELECT coalesce($4::timestamptz, now()) AS t),
${claimCtes('$1', '$2', '$3', true)}
SELECT id, ${CLAIMED_COLUMNS}, ready_at ${CLAIMED_IN_ORDER}`,
};
