/**
 * Settlement: the results a worker reports, each accepted only for the current attempt it
 * holds (the fencing check).
 */
import type { Statement } from '../../db/types.ts';
import { CLAIMED_COLUMNS, CLAIMED_IN_ORDER, claimCtes } from './claim.ts';
import { dependentsOfEnded, unblockAfterSuccess } from './dependents.ts';
import { NEXT_STATE_AFTER_FAILURE } from './nextState.ts';

/**
 * The successes of a report batch ($1), for taskSucceedMany and taskSucceedAndClaim: the usual
 * row is `{"id":41,"attempt":1}`; `rw` (the result, wrapped as `{"v": result}`) and `logs` (an
 * array) only when there are some. JSON fields are read as text and cast (see taskInsertMany);
 * the wrapper keeps a string result from being unquoted on the way. `tid`: the trace id the
 * worker reported for the attempt, when it sent one. An absent result is stored
 * as JSON null, as a null one is. Not parallel arrays through unnest, as the insert takes: a
 * generic plan estimates 10 rows for them and loops over the input once per running task of
 * the worker, where json_to_recordset's estimate of 100 rows keeps a hash join.
 */
const SUCCEED_INPUT = `input AS (
  SELECT * FROM json_to_recordset($1::json) AS i(id bigint, attempt integer, rw text, logs text, tid text)
)`;

/** Marks the current attempts of `input` held by worker `worker` succeeded (the fencing check). */
function succeedUpdate(worker: string): string {
  return `UPDATE tasks t
     SET state = 'succeeded', result = coalesce(i.rw::jsonb -> 'v', 'null'::jsonb), logs = i.logs::jsonb, finished_at = c.t,
         lease_expires_at = NULL, cancel_requested = false, trace_id = i.tid
    FROM input i, clock c
   WHERE t.id = i.id AND t.attempt = i.attempt AND t.state = 'running' AND t.worker_id = ${worker}`;
}

/**
 * taskSucceedAndClaim: a worker's successful results and its next claim in one statement (one
 * round trip, one commit), the shape of a busy worker's every request.
 * $1 json successes as taskSucceedMany, $2 worker id, $3 now, $4 queue, $5 limit
 * Keeps: what taskSucceedMany and taskClaim keep; settled and claimed rows are different rows
 * (a task being settled is running, a task being claimed is queued); the children of the
 * settled tasks are unblocked as in taskSucceedMany. Returns first one row of kind 'settled'
 * whose `id` lists the settled ids, comma-separated, and whose `ready_queues` lists the queues
 * in which children became ready (each null if none: one row rather than one per result, each
 * 18 nulls wide, for the driver to parse), then the claimed
 * tasks (kind 'claimed', in claim order: an Append runs its branches one after the other and
 * keeps each one's order).
 */
export const taskSucceedAndClaim: Statement = succeedAndClaim('tf_task_succeed_and_claim', false);

/**
 * taskSucceedAndClaimObserved: taskSucceedAndClaim for an engine with an observer (metrics):
 * the 'settled' row also lists each settled task's queue and type (separated by U+001F, which
 * neither may hold) and its attempt's seconds (`took`, comma-separated), in the order of `id`;
 * claimed rows add `ready_at` as taskClaimObserved does. Lists, not a GROUP BY: grouping sorts
 * by text under the collation, which costs more than the lists.
 */
export const taskSucceedAndClaimObserved: Statement = succeedAndClaim('tf_task_succeed_and_claim_observed', true);

function succeedAndClaim(name: string, observed: boolean): Statement {
  const settledReturns = observed
    ? `t.id, t.has_children, t.queue, t.type, date_part('epoch', c.t - t.started_at) AS took`
    : 't.id, t.has_children';
  const labels = observed ? `string_agg(queue, E'\\x1f') AS queue, string_agg(type, E'\\x1f') AS type` : 'NULL AS queue, NULL AS type';
  const extra = observed ? `, NULL::float8 AS ready_at, string_agg(took::text, ',') AS took` : '';
  const claimedExtra = observed ? ', ready_at, NULL' : '';
  return {
    name,
    text: `
WITH clock AS (SELECT coalesce($3::timestamptz, now()) AS t),
${SUCCEED_INPUT},
settled AS (
  ${succeedUpdate('$2')}
  RETURNING ${settledReturns}
),
${unblockAfterSuccess('settled')},
${claimCtes('$4', '$5', '$2', observed)}
SELECT 'settled' AS kind, string_agg(id::text, ',') AS id, ${labels}, NULL::integer AS attempt,
       NULL::integer AS attempt_base, NULL::integer AS max_attempts, NULL::integer AS priority, NULL AS payload_json,
       NULL::bytea AS payload_bytes, NULL AS content_type, NULL::integer AS timeout_ms, NULL AS lease_expires_at,
       NULL::text[] AS tags, NULL AS created_at, NULL AS traceparent, NULL AS tracestate, NULL AS parents_json,
       (SELECT string_agg(DISTINCT queue, ',') FROM unblocked WHERE state = 'queued') AS ready_queues${extra}
  FROM settled
UNION ALL
(SELECT 'claimed', id::text, ${CLAIMED_COLUMNS}, NULL${claimedExtra} ${CLAIMED_IN_ORDER})`,
  };
}

/**
 * taskSucceedMany: records successful results.
 * $1 json: [{id, attempt, rw?: {v: result}, logs?}], $2 worker id, $3 now
 * Keeps: only the current attempt of a running task held by this worker is settled (fencing);
 * anything else is left untouched and missing from the result, which the caller reports as
 * stale. A result that arrives after the lease ran out but before the rescuer took the task
 * is still the current attempt and is accepted: the token, not the clock, decides. The
 * children of the settled tasks are unblocked in the same statement (unblockAfterSuccess).
 * Returns the settled tasks (kind 'settled') and the children it changed (kind 'dependent').
 */
export const taskSucceedMany: Statement = {
  name: 'tf_task_succeed_many',
  text: `
WITH clock AS (SELECT coalesce($3::timestamptz, now()) AS t),
${SUCCEED_INPUT},
settled AS (
  ${succeedUpdate('$2')}
  RETURNING t.id, t.queue, t.type, t.state, t.has_children, date_part('epoch', c.t - t.started_at) AS took
),
${unblockAfterSuccess('settled')}
SELECT id, queue, type, state, NULL::timestamptz AS run_at, took, 'settled' AS kind FROM settled
UNION ALL
SELECT id, queue, NULL, state, run_at, NULL, 'dependent' FROM unblocked`,
};

/**
 * taskFailMany: records failed attempts and moves each task on by its retry policy.
 * $1 json: [{id, attempt, message, stack, retryable, retry_after_ms, logs, trace_id}], $2 worker id, $3 now
 * Keeps: fencing as in taskSucceedMany; the attempt is written to `attempts`; the next state
 * follows NEXT_STATE_AFTER_FAILURE (never poison: the worker is there), with the delay the
 * handler's retry-after, else the backoff. A task that ends dead or cancelled takes its
 * dependents with it (dependentsOfEnded). Returns the failed tasks (kind 'settled') and the
 * dependents made ready (kind 'dependent').
 */
export const taskFailMany: Statement = {
  name: 'tf_task_fail_many',
  text: `
WITH RECURSIVE clock AS (SELECT coalesce($3::timestamptz, now()) AS t),
input AS (
  SELECT * FROM json_to_recordset($1::json) AS i(id bigint, attempt integer, message text, stack text,
           retryable boolean, retry_after_ms double precision, logs text, trace_id text)
),
cur AS (
  SELECT t.id, t.attempt, t.worker_id, t.started_at, t.cancel_requested, i.message, i.stack, i.logs::jsonb AS logs, i.trace_id,
         coalesce(i.retryable, true) AS retryable, false AS poisoned, false AS keep_place,
         t.attempt - t.attempt_base >= t.max_attempts AS exhausted,
         coalesce(i.retry_after_ms, backoff_delay_ms(t.backoff, t.attempt - t.attempt_base)) AS delay_ms
    FROM tasks t JOIN input i ON t.id = i.id AND t.attempt = i.attempt
   WHERE t.state = 'running' AND t.worker_id = $2
   FOR UPDATE OF t
),
upd AS (
  UPDATE tasks t
     SET ${NEXT_STATE_AFTER_FAILURE},
         last_error = jsonb_build_object('message', cur.message, 'stack', cur.stack, 'attempt', cur.attempt),
         lease_expires_at = NULL, worker_id = NULL, cancel_requested = false, logs = NULL
    FROM cur, clock c
   WHERE t.id = cur.id
  RETURNING t.id, t.queue, t.type, t.state, t.run_at, t.has_children, t.workflow_id, date_part('epoch', c.t - cur.started_at) AS took
),
history AS (
  INSERT INTO attempts (task_id, attempt, worker_id, started_at, finished_at, outcome, error, logs, trace_id)
  SELECT cur.id, cur.attempt, cur.worker_id, cur.started_at, c.t,
         CASE WHEN cur.cancel_requested THEN 'cancelled' ELSE 'failed' END,
         jsonb_build_object('message', cur.message, 'stack', cur.stack, 'retryable', cur.retryable),
         cur.logs, cur.trace_id
    FROM cur, clock c
),
${dependentsOfEnded('upd')}
SELECT id, queue, type, state, run_at, took, 'settled' AS kind FROM upd
UNION ALL
SELECT id, queue, NULL, state, run_at, NULL, 'dependent' FROM finish_dependents`,
};

/**
 * taskSettledBy: which of the given (task, attempt) reports this worker already settled: the
 * task row still holds that successful attempt, or `attempts` records it as failed or
 * cancelled (or, for a release, abandoned). Lets a retried report answer "duplicate" instead
 * of "stale".
 * $1 bigint[] ids, $2 integer[] attempts, $3 worker id, $4 boolean[] released
 */
export const taskSettledBy: Statement = {
  name: 'tf_task_settled_by',
  text: `
SELECT i.id::text AS id FROM unnest($1::bigint[], $2::integer[], $4::boolean[]) AS i(id, attempt, released)
 WHERE (NOT i.released AND EXISTS (SELECT 1 FROM tasks t WHERE t.id = i.id AND t.attempt = i.attempt
                                      AND t.worker_id = $3 AND t.state = 'succeeded'))
    OR EXISTS (SELECT 1 FROM attempts a WHERE a.task_id = i.id AND a.attempt = i.attempt AND a.worker_id = $3
                  AND a.outcome = ANY (CASE WHEN i.released THEN ARRAY['abandoned'] ELSE ARRAY['failed', 'cancelled'] END))`,
};
