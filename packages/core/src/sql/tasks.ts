/**
 * Every statement that reads or writes `tasks` (and `attempts`). Only the engine calls these;
 * each names its parameters and the invariant it keeps.
 *
 * Conventions:
 * - `$now` parameters are `coalesce($n::timestamptz, now())`: database time unless a test
 *   injects a clock.
 * - Batches of results travel as one JSON array (`json_to_recordset`): one parse in PostgreSQL
 *   instead of one array parameter per column. JSON values that may themselves be `null` are
 *   wrapped as `{"v": value}` so that a JSON null stays distinguishable from "absent". Inserts
 *   are the exception: an array per column (see taskInsertMany).
 */
import type { Statement } from '../db/types.ts';

/**
 * Columns a task read returns (payload and result parsed by the driver; bytes as bytea, encoded
 * to base64 in Node: PostgreSQL's encode() wraps lines every 76 characters).
 */
export const TASK_COLUMNS = `id, queue, type, state, priority, run_at, payload, payload_bytes, content_type, result, attempt, attempt_base,
  max_attempts, backoff, timeout_ms, tags, idempotency_key, worker_id, lease_expires_at,
  cancel_requested, lease_losses, last_error, dead_reason, created_at, started_at, finished_at`;

/**
 * RFC 3339 text of a timestamptz, made by PostgreSQL (no Date parse and re-format in Node).
 * Not on the claim, where each task has two times: there they come back as seconds since the
 * epoch (`date_part`, a float8) and Node formats them (engine/rows.ts, isoOfEpoch). to_char was
 * 3.3% of the database's instructions for a claim and settlement of each task.
 */
const iso = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * taskInsertMany: inserts a batch of tasks in one statement.
 * $1..$13: the batch's columns, each with an element per task, in input order
 *    (engine/insertColumns.ts builds them): $1 queue text[], $2 type text[], $3 payloads (one
 *    JSON array, jsonb: the payload of each task, `null` for a task whose payload is bytes),
 *    $4 payload_b64 text[], $5 content_type text[], $6 priority integer[], $7 run_at
 *    timestamptz[], $8 delay_ms float8[], $9 max_attempts integer[], $10 backoff text[] (JSON
 *    text), $11 timeout_ms integer[], $12 tags text[] (each element an array literal), $13
 *    idempotency_key text[]. Every column but queue and type may be NULL as a whole (ROWS FROM
 *    pads a shorter column with NULLs), and any array element may be NULL: a NULL priority,
 *    max_attempts, backoff, timeout_ms or tags takes the default ($15, $16, $17 for the three
 *    the engine's options set). A payload array with more elements than tasks cannot shift
 *    payloads onto other tasks: the extra row has no queue, and the NOT NULL refuses the
 *    statement. Arrays instead of one JSON array read by json_to_recordset: 19% fewer
 *    instructions per inserted task; the payloads as one JSON array rather than a text[] of
 *    JSON texts: no escaping in Node (see insertColumns.ts).
 * $14 now, $15 default max_attempts, $16 default backoff (jsonb), $17 default timeout_ms
 * Keeps: a task whose run time is in the future starts `scheduled`, otherwise `queued`; an
 * idempotency key already present in the queue inserts nothing (the caller reads the
 * original); the queue's row exists afterwards.
 * Returns the inserted rows only, in input order.
 */
export const taskInsertMany: Statement = {
  name: 'tf_task_insert_many',
  text: `
WITH clock AS (SELECT coalesce($14::timestamptz, now()) AS t),
input AS (
  SELECT i.*, coalesce(i.run_at, c.t + coalesce(i.delay_ms, 0) * interval '1 millisecond') AS due, c.t AS now
    FROM ROWS FROM (unnest($1::text[]), unnest($2::text[]), jsonb_array_elements($3::jsonb), unnest($4::text[]),
                    unnest($5::text[]), unnest($6::integer[]), unnest($7::timestamptz[]), unnest($8::float8[]),
                    unnest($9::integer[]), unnest($10::text[]), unnest($11::integer[]), unnest($12::text[]),
                    unnest($13::text[])) WITH ORDINALITY
         AS i(queue, type, payload, payload_b64, content_type, priority, run_at, delay_ms, max_attempts,
              backoff, timeout_ms, tags, idempotency_key, ord),
         clock c
),
new_queues AS (
  INSERT INTO queues (name) SELECT DISTINCT queue FROM input ON CONFLICT (name) DO NOTHING
)
INSERT INTO tasks (queue, type, state, priority, run_at, payload, payload_bytes, content_type,
                   max_attempts, backoff, timeout_ms, tags, idempotency_key, created_at)
SELECT queue, type, CASE WHEN due > now THEN 'scheduled' ELSE 'queued' END, coalesce(priority, 0), due,
       CASE WHEN payload_b64 IS NULL THEN payload END, decode(payload_b64, 'base64'), content_type, coalesce(max_attempts, $15::integer),
       coalesce(backoff::jsonb, $16::jsonb), coalesce(timeout_ms, $17::integer), coalesce(tags::text[], '{}'),
       idempotency_key, now
  FROM input
 ORDER BY ord
ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id, queue, state, ${iso('run_at')} AS run_at, idempotency_key, ${iso('created_at')} AS created_at`,
};

/**
 * taskInsertManyWithoutKeys: taskInsertMany for a batch in which no task has an idempotency
 * key: the same statement without ON CONFLICT, whose speculative insertion costs every row
 * (measured: 20-25% more throughput for batches of 1,000 without it).
 */
export const taskInsertManyWithoutKeys: Statement = answeredInOneRow({
  name: 'tf_task_insert_many_without_keys',
  text: taskInsertMany.text.replace(/\nON CONFLICT \(queue, idempotency_key\) WHERE idempotency_key IS NOT NULL DO NOTHING/, ''),
});

/**
 * A batch without idempotency keys inserts every row, so its answer need not be a row per
 * task: one row carries `now` (ISO text: every task's created_at, and the run time of every
 * task queued at once), `ids` (the new ids, comma-separated, in input order: identity values
 * are drawn in insert order, which is input order) and `odd` (`id state run_at` for each task
 * that is scheduled or was given a run time, comma-separated; null when there is none). Parsing
 * 1,000 returned rows of 6 columns cost the server ~2.5 ms of a batch (bench/README.md, "lean
 * insert rows").
 */
function answeredInOneRow(s: Statement): Statement {
  const text = s.text
    .replace(/\)\nINSERT INTO tasks/, '),\nins AS (\nINSERT INTO tasks')
    .replace(/\nRETURNING [^\n]*$/, `
RETURNING id, state, run_at
)
SELECT (SELECT ${iso('t')} FROM clock) AS now, string_agg(id::text, ',' ORDER BY id) AS ids,
       string_agg(id::text || ' ' || state || ' ' || ${iso('run_at')}, ',')
         FILTER (WHERE state <> 'queued' OR run_at <> (SELECT t FROM clock)) AS odd
  FROM ins`);
  if (!text.includes('ins AS (') || !text.includes('string_agg(id::text, \',\'') || text.includes('ON CONFLICT (queue')) {
    throw new Error(`${s.name}: not the shape answeredInOneRow expects`);
  }
  return { name: s.name, text };
}

/**
 * The two inserts above without the `new_queues` upsert, for batches whose queues the caller
 * knows exist (queues are never deleted). The upsert is a speculative insertion per statement;
 * measured on a one-row insert: ~150-330 µs of a ~390-530 µs statement.
 */
function withoutQueueUpsert(s: Statement, name: string): Statement {
  const text = s.text.replace(/new_queues AS \(\n  INSERT INTO queues[^\n]*\n\),?\n/, '').replace(/\),\nINSERT INTO tasks/, ')\nINSERT INTO tasks');
  if (text === s.text || text.includes('new_queues')) throw new Error(`${s.name}: queue upsert not found`);
  return { name, text };
}
export const taskInsertManyKnownQueues = withoutQueueUpsert(taskInsertMany, 'tf_task_insert_many_known_queues');
export const taskInsertManyWithoutKeysKnownQueues = withoutQueueUpsert(taskInsertManyWithoutKeys, 'tf_task_insert_many_without_keys_known_queues');

/**
 * taskGetByIdempotencyKeys: the tasks holding the given keys.
 * $1 text[] queues, $2 text[] keys (pairwise).
 */
export const taskGetByIdempotencyKeys: Statement = {
  name: 'tf_task_get_by_idempotency_keys',
  text: `
SELECT ${TASK_COLUMNS} FROM tasks
 WHERE (queue, idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
};

/**
 * The claim, as CTEs `picked` and `claimed` over a `clock` CTE, for `taskClaim` and
 * `taskSucceedAndClaim`. Parameters are named by the caller: queue, limit, worker id.
 *
 * Why this shape (see also bench/README.md): one statement, so a claim is atomic; SKIP
 * LOCKED, so concurrent claimers never wait on each other nor take the same row; equality
 * on one queue, so the partial index `tasks_ready` (queue, priority DESC, run_at, id) WHERE
 * state = 'queued' serves the ORDER BY ... LIMIT directly and the cost per claim does not grow
 * with the backlog (the scaling bench: the same drain rate with 10k and 1M tasks waiting), and
 * on Citus the claim stays on one shard. The paused-queue and worker checks are uncorrelated
 * sub-queries: evaluated once per statement, not per row. Alternatives considered: SELECT ...
 * FOR UPDATE then UPDATE in two statements (one more round trip per claim, on machines where
 * a round trip costs more than the statement), and advisory-lock claims (no index-ordered
 * scan, and locks to release). The update finds the picked rows by `id = ANY(ARRAY(...))`, an
 * index scan of the primary key whatever the planner guesses: joined `FROM picked`, it chose a
 * hash join over a sequential scan of the whole table for a claim of 250 from 20,000 (EXPLAIN
 * ANALYZE: 7.5 ms, 4 of them the scan; 3.1 ms with the index).
 */
function claimCtes(queue: string, limit: string, worker: string): string {
  return `picked AS (
  SELECT id, priority, run_at FROM tasks
   WHERE state = 'queued' AND queue = ${queue}
     AND NOT EXISTS (SELECT 1 FROM queues WHERE name = ${queue} AND paused)
     AND EXISTS (SELECT 1 FROM workers w WHERE w.id = ${worker} AND w.state = 'active'
                    AND w.queues @> jsonb_build_array(jsonb_build_object('name', ${queue}::text)))
   ORDER BY priority DESC, run_at, id
   LIMIT ${limit}
   FOR UPDATE SKIP LOCKED
),
claimed AS (
  UPDATE tasks t
     SET state = 'running', attempt = t.attempt + 1, worker_id = ${worker}, started_at = c.t,
         finished_at = NULL, logs = NULL, lease_expires_at = c.t + t.timeout_ms * interval '1 millisecond'
    FROM clock c
   WHERE t.id = ANY(ARRAY(SELECT id FROM picked))
  RETURNING t.id, t.queue, t.type, t.attempt, t.attempt_base, t.max_attempts, t.priority,
            t.payload::text AS payload_json, t.payload_bytes, t.content_type, t.timeout_ms,
            date_part('epoch', t.lease_expires_at) AS lease_expires_at, t.tags,
            date_part('epoch', t.created_at) AS created_at, t.run_at
)`;
}

/**
 * The claimed tasks in claim order (priority, run time, id), sorted from the update's own
 * output: the claim does not change the order's columns. (Joining `picked` back for them cost
 * a hash join, 1.2% of the database's instructions for a claim and settlement of each task:
 * `npm run pg-instructions` in bench/.)
 */
const CLAIMED_COLUMNS = `queue, type, attempt, attempt_base, max_attempts, priority, payload_json, payload_bytes,
       content_type, timeout_ms, lease_expires_at, tags, created_at`;
const CLAIMED_IN_ORDER = `FROM claimed ORDER BY priority DESC, run_at, id`;

/**
 * taskClaim: leases up to $2 ready tasks of queue $1 to worker $3.
 * $1 queue, $2 limit, $3 worker id, $4 now
 * Keeps: see claimCtes. Returns the tasks in claim order (priority, run time, id). Each claim
 * raises the fencing token `attempt` by one and sets the lease to now + timeout. A paused queue
 * yields nothing, and so does a worker that is not active or does not serve the queue. The
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
 * The successes of a report batch ($1), for taskSucceedMany and taskSucceedAndClaim: the usual
 * row is `{"id":41,"attempt":1}`; `rw` (the result, wrapped as `{"v": result}`) and `logs` (an
 * array) only when there are some. JSON fields are read as text and cast (see taskInsertMany);
 * the wrapper keeps a string result from being unquoted on the way. An absent result is stored
 * as JSON null, as a null one is. (Parallel arrays through unnest parse for less, but a generic
 * plan then estimates 10 input rows and loops over them once per running task of the worker:
 * 2.9 times the instructions.)
 */
const SUCCEED_INPUT = `input AS (
  SELECT * FROM json_to_recordset($1::json) AS i(id bigint, attempt integer, rw text, logs text)
)`;

/** Marks the current attempts of `input` held by worker `worker` succeeded (the fencing check). */
function succeedUpdate(worker: string): string {
  return `UPDATE tasks t
     SET state = 'succeeded', result = coalesce(i.rw::jsonb -> 'v', 'null'::jsonb), logs = i.logs::jsonb, finished_at = c.t,
         lease_expires_at = NULL, cancel_requested = false
    FROM input i, clock c
   WHERE t.id = i.id AND t.attempt = i.attempt AND t.state = 'running' AND t.worker_id = ${worker}`;
}

/**
 * taskSucceedAndClaim: a worker's successful results and its next claim in one statement (one
 * round trip, one commit), the shape of a busy worker's every request.
 * $1 json successes as taskSucceedMany, $2 worker id, $3 now, $4 queue, $5 limit
 * Keeps: what taskSucceedMany and taskClaim keep; settled and claimed rows are different rows
 * (a task being settled is running, a task being claimed is queued). Returns first one row of
 * kind 'settled' whose `id` lists the settled ids, comma-separated (null if none: one row
 * rather than one per result, each 15 nulls wide, for the driver to parse), then the claimed
 * tasks (kind 'claimed', in claim order: an Append runs its branches one after the other and
 * keeps each one's order).
 */
export const taskSucceedAndClaim: Statement = {
  name: 'tf_task_succeed_and_claim',
  text: `
WITH clock AS (SELECT coalesce($3::timestamptz, now()) AS t),
${SUCCEED_INPUT},
settled AS (
  ${succeedUpdate('$2')}
  RETURNING t.id
),
${claimCtes('$4', '$5', '$2')}
SELECT 'settled' AS kind, string_agg(id::text, ',') AS id, NULL AS queue, NULL AS type, NULL::integer AS attempt,
       NULL::integer AS attempt_base, NULL::integer AS max_attempts, NULL::integer AS priority, NULL AS payload_json,
       NULL::bytea AS payload_bytes, NULL AS content_type, NULL::integer AS timeout_ms, NULL AS lease_expires_at,
       NULL::text[] AS tags, NULL AS created_at
  FROM settled
UNION ALL
(SELECT 'claimed', id::text, ${CLAIMED_COLUMNS} ${CLAIMED_IN_ORDER})`,
};

/**
 * taskSucceedMany: records successful results.
 * $1 json: [{id, attempt, rw?: {v: result}, logs?}], $2 worker id, $3 now
 * Keeps: only the current attempt of a running task held by this worker is settled (fencing);
 * anything else is left untouched and missing from the result, which the caller reports as
 * stale. A result that arrives after the lease ran out but before the rescuer took the task
 * is still the current attempt and is accepted: the token, not the clock, decides.
 */
export const taskSucceedMany: Statement = {
  name: 'tf_task_succeed_many',
  text: `
WITH clock AS (SELECT coalesce($3::timestamptz, now()) AS t),
${SUCCEED_INPUT}
${succeedUpdate('$2')}
RETURNING t.id, t.queue, t.state`,
};

/**
 * taskFailMany: records failed attempts and moves each task on by its retry policy.
 * $1 json: [{id, attempt, message, stack, retryable, retry_after_ms, logs}], $2 worker id, $3 now
 * Keeps: fencing as in taskSucceedMany; the attempt is written to `attempts`; the next state
 * is, in order: `cancelled` if a cancel was requested, `dead` (unrecoverable) if not
 * retryable, `dead` (exhausted) on the last attempt, `retrying` after the delay (the
 * handler's retry-after, else the backoff), or `queued` at once when the delay is zero.
 */
export const taskFailMany: Statement = {
  name: 'tf_task_fail_many',
  text: `
WITH clock AS (SELECT coalesce($3::timestamptz, now()) AS t),
input AS (
  SELECT * FROM json_to_recordset($1::json) AS i(id bigint, attempt integer, message text, stack text,
           retryable boolean, retry_after_ms double precision, logs text)
),
cur AS (
  SELECT t.id, t.attempt, t.worker_id, t.started_at, t.cancel_requested, i.message, i.stack, i.logs::jsonb AS logs,
         coalesce(i.retryable, true) AS retryable,
         t.attempt - t.attempt_base >= t.max_attempts AS exhausted,
         coalesce(i.retry_after_ms, backoff_delay_ms(t.backoff, t.attempt - t.attempt_base)) AS delay_ms
    FROM tasks t JOIN input i ON t.id = i.id AND t.attempt = i.attempt
   WHERE t.state = 'running' AND t.worker_id = $2
   FOR UPDATE OF t
),
upd AS (
  UPDATE tasks t
     SET state = CASE WHEN cur.cancel_requested THEN 'cancelled'
                      WHEN NOT cur.retryable OR cur.exhausted THEN 'dead'
                      WHEN cur.delay_ms > 0 THEN 'retrying'
                      ELSE 'queued' END,
         dead_reason = CASE WHEN cur.cancel_requested THEN NULL
                            WHEN NOT cur.retryable THEN 'unrecoverable'
                            WHEN cur.exhausted THEN 'exhausted' END,
         run_at = CASE WHEN cur.cancel_requested OR NOT cur.retryable OR cur.exhausted THEN t.run_at
                       ELSE c.t + greatest(cur.delay_ms, 0) * interval '1 millisecond' END,
         finished_at = CASE WHEN cur.cancel_requested OR NOT cur.retryable OR cur.exhausted THEN c.t END,
         last_error = jsonb_build_object('message', cur.message, 'stack', cur.stack, 'attempt', cur.attempt),
         lease_expires_at = NULL, worker_id = NULL, cancel_requested = false, logs = NULL
    FROM cur, clock c
   WHERE t.id = cur.id
  RETURNING t.id, t.queue, t.state, t.run_at
),
history AS (
  INSERT INTO attempts (task_id, attempt, worker_id, started_at, finished_at, outcome, error, logs)
  SELECT cur.id, cur.attempt, cur.worker_id, cur.started_at, c.t,
         CASE WHEN cur.cancel_requested THEN 'cancelled' ELSE 'failed' END,
         jsonb_build_object('message', cur.message, 'stack', cur.stack, 'retryable', cur.retryable),
         cur.logs
    FROM cur, clock c
)
SELECT id, queue, state, run_at FROM upd`,
};

interface RescueKind {
  /** Selects and locks the running tasks to rescue (`$3` is the victims query's own parameter). */
  victims: string;
  outcome: 'lease_expired' | 'worker_lost' | 'abandoned';
  /** Counts towards poison quarantine (the worker is gone, not the handler failing). */
  leaseLoss: boolean;
  /** Waits for the backoff before the next attempt; otherwise requeued at once. */
  backoff: boolean;
  /**
   * The attempt never ran (an undelivered claim, a prefetched task given back): it does not
   * count against maxAttempts (attempt_base moves up with the fencing token).
   */
  refund: boolean;
  /** SQL expression of the error message recorded. */
  error: string;
}

/**
 * Builds a rescue statement: ends the running attempts chosen by `victims` as failed attempts
 * with `outcome` and moves each task on: cancelled if a cancel was requested, dead when its
 * attempts are used up, else queued (at once, or after the backoff for an expired lease: the
 * design's "an expired lease is a failed attempt and follows the retry policy; a deregistered
 * or dead worker's tasks are requeued at once"). When `leaseLoss` is set the attempt counts
 * towards poison quarantine: a task whose attempts end with the worker gone `$poisonAfter`
 * times is dead with reason `poison`, whatever attempts it has left.
 * Parameters: $1 now, $2 poisonAfter, then the victims query's own.
 */
function rescueStatement(name: string, kind: RescueKind): Statement {
  const { victims, outcome, error } = kind;
  const loss = kind.leaseLoss ? 1 : 0;
  const delay = kind.backoff ? 'backoff_delay_ms(t.backoff, t.attempt - t.attempt_base)' : '0::float8';
  const refund = kind.refund ? 1 : 0;
  return {
    name,
    text: `
WITH clock AS (SELECT coalesce($1::timestamptz, now()) AS t),
victims AS (${victims}),
cur AS (
  SELECT t.id, t.attempt, t.worker_id, t.started_at, t.cancel_requested, t.lease_expires_at,
         ${refund} = 0 AND t.attempt - t.attempt_base >= t.max_attempts AS exhausted,
         ${loss} = 1 AND t.lease_losses + 1 >= $2 AS poisoned,
         ${delay} AS delay_ms
    FROM tasks t JOIN victims v ON v.id = t.id
),
upd AS (
  UPDATE tasks t
     SET lease_losses = t.lease_losses + ${loss},
         attempt_base = t.attempt_base + ${refund},
         state = CASE WHEN cur.cancel_requested THEN 'cancelled'
                      WHEN cur.poisoned OR cur.exhausted THEN 'dead'
                      WHEN cur.delay_ms > 0 THEN 'retrying'
                      ELSE 'queued' END,
         dead_reason = CASE WHEN cur.cancel_requested THEN NULL
                            WHEN cur.poisoned THEN 'poison'
                            WHEN cur.exhausted THEN 'exhausted' END,
         run_at = CASE WHEN cur.cancel_requested OR cur.poisoned OR cur.exhausted THEN t.run_at
                       ELSE c.t + cur.delay_ms * interval '1 millisecond' END,
         finished_at = CASE WHEN cur.cancel_requested OR cur.poisoned OR cur.exhausted THEN c.t END,
         last_error = jsonb_build_object('message', ${error}, 'attempt', cur.attempt),
         lease_expires_at = NULL, worker_id = NULL, cancel_requested = false
    FROM cur, clock c
   WHERE t.id = cur.id
  RETURNING t.id, t.queue, t.state, t.run_at
),
history AS (
  INSERT INTO attempts (task_id, attempt, worker_id, started_at, finished_at, outcome, error)
  SELECT cur.id, cur.attempt, cur.worker_id, cur.started_at, c.t, '${outcome}',
         jsonb_build_object('message', ${error}, 'retryable', true)
    FROM cur, clock c
)
SELECT id, queue, state, run_at FROM upd`,
  };
}

/**
 * taskRescueExpired: running tasks whose lease has run out (lease_expires_at <= now) become
 * failed attempts ("lease expired"), at most $3 per call.
 * $1 now, $2 poisonAfter, $3 limit
 */
export const taskRescueExpired = rescueStatement('tf_task_rescue_expired', {
  victims: `SELECT id FROM tasks, clock c
    WHERE state = 'running' AND lease_expires_at <= c.t
    ORDER BY lease_expires_at LIMIT $3 FOR UPDATE OF tasks SKIP LOCKED`,
  outcome: 'lease_expired',
  leaseLoss: true,
  backoff: true,
  refund: false,
  error: `'lease expired at ' || to_char(cur.lease_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || ' without a result'`,
});

/**
 * taskRescueLostWorkers: the running tasks of workers that stopped heartbeating become failed
 * attempts ("worker lost") and are requeued at once, without waiting for their leases.
 * $1 now, $2 poisonAfter, $3 uuid[] worker ids
 */
export const taskRescueLostWorkers = rescueStatement('tf_task_rescue_lost_workers', {
  victims: `SELECT id FROM tasks WHERE state = 'running' AND worker_id = ANY($3::uuid[]) FOR UPDATE SKIP LOCKED`,
  outcome: 'worker_lost',
  leaseLoss: true,
  backoff: false,
  refund: false,
  error: `'worker stopped heartbeating'`,
});

/**
 * taskReleaseWorker: a deregistering worker hands back what it still holds: each attempt ends
 * as "abandoned" and the task is requeued at once (dead if that was its last attempt). Not a
 * lease loss (the worker did not crash), so it does not count towards quarantine.
 * $1 now, $2 poisonAfter (unused), $3 worker id
 */
export const taskReleaseWorker = rescueStatement('tf_task_release_worker', {
  victims: `SELECT id FROM tasks WHERE state = 'running' AND worker_id = $3::uuid FOR UPDATE`,
  outcome: 'abandoned',
  leaseLoss: false,
  backoff: false,
  refund: false,
  error: `'worker deregistered before reporting a result'`,
});

/**
 * taskReleaseClaimed: held tasks that never ran are handed back at once, without using up an
 * attempt: claims whose answer never reached the worker (it went away first), and tasks a
 * worker gives back unstarted (`released`, e.g. from its prefetch buffer at shutdown).
 * Outcome "abandoned"; the fencing token still moves on.
 * $1 now, $2 poisonAfter (unused), $3 worker id, $4 bigint[] ids, $5 integer[] attempts (pairwise)
 */
export const taskReleaseClaimed = rescueStatement('tf_task_release_claimed', {
  victims: `SELECT t.id FROM tasks t JOIN unnest($4::bigint[], $5::integer[]) AS r(id, attempt) ON r.id = t.id
             WHERE t.state = 'running' AND t.worker_id = $3::uuid AND r.attempt = t.attempt
             FOR UPDATE OF t`,
  outcome: 'abandoned',
  leaseLoss: false,
  backoff: false,
  refund: true,
  error: `'handed back without running (the claim answer was not delivered, or the worker released it)'`,
});

/**
 * taskPromoteDue: scheduled and retrying tasks whose run time has come become `queued`, at most
 * $2 per call. Safe on every node at once (SKIP LOCKED).
 * $1 now, $2 limit
 */
export const taskPromoteDue: Statement = {
  name: 'tf_task_promote_due',
  text: `
WITH clock AS (SELECT coalesce($1::timestamptz, now()) AS t),
due AS (
  SELECT id FROM tasks, clock c
   WHERE state IN ('scheduled', 'retrying') AND run_at <= c.t
   ORDER BY run_at LIMIT $2 FOR UPDATE OF tasks SKIP LOCKED
)
UPDATE tasks t SET state = 'queued' FROM due WHERE t.id = due.id
RETURNING t.queue, t.state`,
};

/**
 * taskNextDue: milliseconds until the earliest scheduled or retrying task becomes ready (null
 * when there is none; zero or less when one is due). Served by `tasks_due`. $1 now
 */
export const taskNextDue: Statement = {
  name: 'tf_task_next_due',
  text: `SELECT (extract(epoch FROM (min(run_at) - coalesce($1::timestamptz, now()))) * 1000)::float8 AS ms
           FROM tasks WHERE state IN ('scheduled', 'retrying')`,
};

/**
 * taskCancel: a task not yet running is cancelled at once; a running one is flagged, and its
 * worker learns it at the next heartbeat. Terminal tasks are left alone (no row returned).
 * $1 id, $2 now
 */
export const taskCancel: Statement = {
  name: 'tf_task_cancel',
  text: `
WITH clock AS (SELECT coalesce($2::timestamptz, now()) AS t)
UPDATE tasks t
   SET state = CASE WHEN t.state = 'running' THEN 'running' ELSE 'cancelled' END,
       cancel_requested = (t.state = 'running'),
       finished_at = CASE WHEN t.state = 'running' THEN NULL ELSE c.t END
  FROM clock c
 WHERE t.id = $1 AND t.state IN ('blocked', 'scheduled', 'queued', 'retrying', 'running')
RETURNING ${TASK_COLUMNS}`,
};

/**
 * Back to `queued` now with a fresh retry budget (attempt_base moves up to attempt; the fencing
 * token keeps counting), as after a manual retry or a DLQ requeue. Needs a `clock` CTE.
 */
const REQUEUE = `UPDATE tasks t
   SET state = 'queued', run_at = c.t, attempt_base = t.attempt, lease_losses = 0,
       dead_reason = NULL, finished_at = NULL, cancel_requested = false, worker_id = NULL
  FROM clock c`;

/**
 * taskRequeue: a dead or cancelled task runs again from `queued` with a fresh retry budget
 * (attempt_base moves up to attempt; the fencing token keeps counting). Used by retry and by
 * DLQ requeue; $2 restricts the source states.
 * $1 bigint[] ids, $2 text[] states allowed, $3 now
 */
export const taskRequeue: Statement = {
  name: 'tf_task_requeue',
  text: `
WITH clock AS (SELECT coalesce($3::timestamptz, now()) AS t)
${REQUEUE}
 WHERE t.id = ANY($1::bigint[]) AND t.state = ANY($2::text[])
RETURNING t.id, t.queue, t.state`,
};

/**
 * taskUpdate: changes priority and/or run time of a task that is not running or finished.
 * A new run time re-derives scheduled/queued.
 * $1 id, $2 priority (null = keep), $3 run_at (null = keep), $4 now
 */
export const taskUpdate: Statement = {
  name: 'tf_task_update',
  text: `
WITH clock AS (SELECT coalesce($4::timestamptz, now()) AS t)
UPDATE tasks t
   SET priority = coalesce($2::integer, t.priority),
       run_at = coalesce($3::timestamptz, t.run_at),
       state = CASE WHEN t.state IN ('scheduled', 'queued')
                    THEN CASE WHEN coalesce($3::timestamptz, t.run_at) > c.t THEN 'scheduled' ELSE 'queued' END
                    ELSE t.state END
  FROM clock c
 WHERE t.id = $1 AND t.state IN ('blocked', 'scheduled', 'queued', 'retrying')
RETURNING t.id, t.queue, t.state`,
};

/** taskGet: one task by id. $1 id */
export const taskGet: Statement = {
  name: 'tf_task_get',
  text: `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = $1`,
};

/** taskAttempts: every attempt of a task, oldest first. $1 task id */
export const taskAttempts: Statement = {
  name: 'tf_task_attempts',
  text: `SELECT attempt, worker_id, started_at, finished_at, outcome, error, logs
           FROM task_attempts WHERE task_id = $1 ORDER BY attempt`,
};

/**
 * taskList: a page of tasks, newest first, filtered. Sent unprepared (plain text), so the
 * planner sees which filters are null and picks the index for the ones that are not.
 * $1 text[] states, $2 queue, $3 type, $4 tag, $5 created from, $6 created before,
 * $7 id cursor (exclusive), $8 limit
 */
export const taskList = `
SELECT ${TASK_COLUMNS} FROM tasks
 WHERE ($1::text[] IS NULL OR state = ANY($1::text[]))
   AND ($2::text IS NULL OR queue = $2)
   AND ($3::text IS NULL OR type = $3)
   AND ($4::text IS NULL OR tags @> ARRAY[$4::text])
   AND ($5::timestamptz IS NULL OR created_at >= $5)
   AND ($6::timestamptz IS NULL OR created_at < $6)
   AND ($7::bigint IS NULL OR id < $7)
 ORDER BY id DESC
 LIMIT $8`;

/**
 * taskPurgeDead: deletes dead tasks (and their attempts), optionally of one queue.
 * $1 queue or null. Returns the number deleted.
 */
export const taskPurgeDead: Statement = {
  name: 'tf_task_purge_dead',
  text: `
WITH gone AS (
  DELETE FROM tasks WHERE state = 'dead' AND ($1::text IS NULL OR queue = $1) RETURNING id
),
history AS (DELETE FROM attempts a USING gone WHERE a.task_id = gone.id)
SELECT count(*)::integer AS purged FROM gone`,
};

/**
 * taskRequeueDeadWhere: every dead task of a queue (and type), back to `queued` with a fresh
 * retry budget, as taskRequeue does. $1 queue or null, $2 type or null, $3 now
 */
export const taskRequeueDeadWhere: Statement = {
  name: 'tf_task_requeue_dead_where',
  text: `
WITH clock AS (SELECT coalesce($3::timestamptz, now()) AS t)
${REQUEUE}
 WHERE t.state = 'dead' AND ($1::text IS NULL OR t.queue = $1) AND ($2::text IS NULL OR t.type = $2)
RETURNING t.id, t.queue, t.state`,
};

/** taskExisting: which of the ids exist. $1 bigint[] */
export const taskExisting: Statement = {
  name: 'tf_task_existing',
  text: `SELECT id FROM tasks WHERE id = ANY($1::bigint[])`,
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

/**
 * tasksVacuum: removes the row versions that claims and settlements left behind, and their
 * index entries (migration 0003 sets vacuum_index_cleanup on, so the ready index is never
 * skipped). Run by the embedded driver's maintenance (PGlite has no autovacuum); PostgreSQL's
 * autovacuum does it on a server. Not a prepared statement: VACUUM takes no parameters and
 * cannot run in a transaction.
 */
export const tasksVacuum = 'VACUUM tasks';
