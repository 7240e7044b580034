/**
 * The inserts: a batch of tasks in one statement. Four statements, for whether the batch has
 * idempotency keys and whether its queues are known to exist, built from the named fragments
 * below; each statement shows its shape where it is defined.
 */
import type { Statement } from '../../db/types.ts';
import { TASK_COLUMNS, iso } from './columns.ts';

/**
 * The `clock` and the batch as rows (`input`), one per task, in input order (`ord`), with its
 * `due` time and `now`. Parameters:
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
 *    statement. Arrays rather than one JSON array read by json_to_recordset, and the payloads
 *    as one JSON array rather than a text[] of JSON texts: see engine/insertColumns.ts.
 * $14 now, $15 default max_attempts, $16 default backoff (jsonb), $17 default timeout_ms
 * $18 traceparent text[], $19 tracestate text[]: the W3C trace context of each task, stored
 *    verbatim; NULL as a whole for a batch without any (the usual one, padded at no cost).
 * $20..$23, columns as $1..$13 are (engine/insertColumns.ts, lifetimeColumns): $20 expires_at
 *    timestamptz[], $21 ttl_ms float8[] (expires_at = now + ttl_ms), $22 unique_key text[],
 *    $23 unique_for_ms float8[] (both used only by taskInsertManyUnique; NULL elsewhere).
 * $24 concurrency_key text[], $25 rate_key text[] (flow control; NULL as a whole when no task
 *    of the batch has one, like the columns above)
 */
export const INSERT_INPUT = insertInput();

/**
 * INSERT_INPUT, with `columns` more in `input`: `unnest` expressions (`, unnest($27::text[])`)
 * and their names (`, ref`), unpacked side by side with the others.
 */
export function insertInput(columns = { unnest: '', names: '' }): string {
  return `clock AS (SELECT coalesce($14::timestamptz, now()) AS t),
input AS (
  SELECT i.*, coalesce(i.run_at, c.t + coalesce(i.delay_ms, 0) * interval '1 millisecond') AS due, c.t AS now
    FROM ROWS FROM (unnest($1::text[]), unnest($2::text[]), jsonb_array_elements($3::jsonb), unnest($4::text[]),
                    unnest($5::text[]), unnest($6::integer[]), unnest($7::timestamptz[]), unnest($8::float8[]),
                    unnest($9::integer[]), unnest($10::text[]), unnest($11::integer[]), unnest($12::text[]),
                    unnest($13::text[]), unnest($18::text[]), unnest($19::text[]), unnest($20::timestamptz[]),
                    unnest($21::float8[]), unnest($22::text[]), unnest($23::float8[]), unnest($24::text[]),
                    unnest($25::text[])${columns.unnest}) WITH ORDINALITY
         AS i(queue, type, payload, payload_b64, content_type, priority, run_at, delay_ms, max_attempts,
              backoff, timeout_ms, tags, idempotency_key, traceparent, tracestate, expires_at, ttl_ms, unique_key,
              unique_for_ms, concurrency_key, rate_key${columns.names}, ord),
         clock c
)`;
}

/**
 * Creates the rows of the batch's queues that do not exist yet. A speculative insertion per
 * statement, so left out when the engine knows the queues exist (queues are never deleted).
 * In name order, so that two statements creating the same new queues never wait on each other
 * in opposite orders (the tasks' keys: see lockOrder in engine/enqueue.ts).
 */
export const QUEUE_UPSERT = `new_queues AS (
  INSERT INTO queues (name) SELECT DISTINCT queue FROM input ORDER BY queue ON CONFLICT (name) DO NOTHING
)`;

/**
 * The tasks of `input`, in input order (identity values are drawn in insert order, so ids follow
 * input order). A task whose run time is in the future starts `scheduled`, otherwise `queued`;
 * a task whose payload is bytes stores no JSON payload.
 */
export const INSERTED_COLUMNS = `queue, type, state, priority, run_at, payload, payload_bytes, content_type,
                   max_attempts, backoff, timeout_ms, tags, idempotency_key, created_at, traceparent, tracestate,
                   expires_at, unique_key, concurrency_key, rate_key`;
/** The state of a task at insert: `scheduled` when its run time is in the future, else `queued`. */
export const INSERTED_STATE = `CASE WHEN due > now THEN 'scheduled' ELSE 'queued' END`;
/** The values of INSERTED_COLUMNS from a row of `input`, its state given by `state` (INSERTED_STATE). */
export const insertedValues = (state: string) => `queue, type, ${state}, coalesce(priority, 0), due,
       CASE WHEN payload_b64 IS NULL THEN payload END, decode(payload_b64, 'base64'), content_type, coalesce(max_attempts, $15::integer),
       coalesce(backoff::jsonb, $16::jsonb), coalesce(timeout_ms, $17::integer), coalesce(tags::text[], '{}'),
       idempotency_key, now, traceparent, tracestate, coalesce(expires_at, now + ttl_ms * interval '1 millisecond'), unique_key,
       concurrency_key, rate_key`;
/** The values of INSERTED_COLUMNS from a row of `input`. */
export const INSERTED_VALUES = insertedValues(INSERTED_STATE);
const INSERT_TASKS = `INSERT INTO tasks (${INSERTED_COLUMNS})
SELECT ${INSERTED_VALUES}
  FROM input
 ORDER BY ord`;

/**
 * The batch with an id drawn for each task (in input order: `ided` is read in order once, so
 * ids follow input order), so that a task's idempotency key can name it before it is written.
 */
export const IDED = `ided AS (SELECT input.*, nextval('tasks_id_seq') AS id FROM input)`;

/**
 * Writes the idempotency keys of the rows of `from` (a CTE over `ided`; `and`: a further
 * condition) to task_idempotency_keys, in input order; an existing key is left with its task (DO NOTHING),
 * and so is the second of a key repeated within the batch. Returns the task_id of each key
 * written: exactly the keyed tasks to insert. A key another transaction is inserting makes
 * this one wait for it to end (then it is that one's, or free again); the engine sends keyed
 * rows sorted by (queue, key), so that such waits never form a cycle (engine/enqueue.ts,
 * lockOrder).
 */
export const writeKeys = (from: string, and = '') => `idem AS (
  INSERT INTO task_idempotency_keys (queue, idempotency_key, task_id)
  SELECT queue, idempotency_key, id FROM ${from}
   WHERE idempotency_key IS NOT NULL${and}
   ORDER BY ord
  ON CONFLICT (queue, idempotency_key) DO NOTHING
  RETURNING task_id
)`;

/**
 * The answer of a batch without keys, which inserts every row, in one row over the insert's
 * CTE `ins` (`RETURNING id, state, run_at`): `now` (ISO text: every task's created_at, and the
 * run time of every task queued at once), `ids` (the new ids, comma-separated, in input order)
 * and `odd` (`id state run_at` for each task that is scheduled or was given a run time,
 * comma-separated; null when there is none), then `extra` columns. The engine rebuilds the rows
 * from it (engine/enqueue.ts, rowsOfOneRowAnswer): the driver parses one row instead of one per
 * task. A keyed batch's ids are those of the tasks it inserted, in input order too.
 */
const oneRowAnswer = (extra = '') => `SELECT (SELECT ${iso('t')} FROM clock) AS now, string_agg(id::text, ',' ORDER BY id) AS ids,
       string_agg(id::text || ' ' || state || ' ' || ${iso('run_at')}, ',')
         FILTER (WHERE state <> 'queued' OR run_at <> (SELECT t FROM clock)) AS odd${extra}
  FROM ins`;
const ONE_ROW_ANSWER = oneRowAnswer();

/**
 * The keyed batch's tasks to insert: those without a key, and those whose key was written
 * (`fresh`); each row of `ided` with that flag. Then the insert of the fresh ones, with the ids
 * drawn in `ided`, and the answer: ONE_ROW_ANSWER plus `replayed`, the positions (`ord`,
 * 1-based, comma-separated; null when none) of the tasks not inserted because their key
 * existed (the engine reads their originals back).
 */
const KEYED_INSERT = `marked AS (
  SELECT i.*, i.idempotency_key IS NULL OR k.task_id IS NOT NULL AS fresh FROM ided i LEFT JOIN idem k ON k.task_id = i.id
),
ins AS (
  INSERT INTO tasks (id, ${INSERTED_COLUMNS}) OVERRIDING SYSTEM VALUE
  SELECT id, ${INSERTED_VALUES}
    FROM marked
   WHERE fresh
   ORDER BY ord
  RETURNING id, state, run_at
)
${oneRowAnswer(`,
       (SELECT string_agg(ord::text, ',' ORDER BY ord) FROM marked WHERE NOT fresh) AS replayed`)}`;

/**
 * taskInsertMany: inserts a batch of tasks, some with idempotency keys, in one statement.
 * $1..$25 as INSERT_INPUT says.
 * Keeps: a task whose run time is in the future starts `scheduled`, otherwise `queued`; an
 * idempotency key already present in the queue inserts nothing (the caller reads the
 * original), and a task is created with its key or not at all (writeKeys); the queue's row
 * exists afterwards. Returns one row (KEYED_INSERT).
 */
export const taskInsertMany: Statement = {
  name: 'tf_task_insert_many',
  text: `
WITH ${INSERT_INPUT},
${QUEUE_UPSERT},
${IDED},
${writeKeys('ided')},
${KEYED_INSERT}`,
};

/**
 * taskInsertManyWithoutKeys: taskInsertMany for a batch in which no task has an idempotency
 * key: no ids drawn ahead, no key table, and the answer in one row (ONE_ROW_ANSWER).
 * $1..$25 as INSERT_INPUT says.
 */
export const taskInsertManyWithoutKeys: Statement = {
  name: 'tf_task_insert_many_without_keys',
  text: `
WITH ${INSERT_INPUT},
${QUEUE_UPSERT},
ins AS (
${INSERT_TASKS}
RETURNING id, state, run_at
)
${ONE_ROW_ANSWER}`,
};

/**
 * taskInsertManyKnownQueues: taskInsertMany for a batch whose queues the engine knows exist:
 * without the queue upsert. $1..$25 as INSERT_INPUT says.
 */
export const taskInsertManyKnownQueues: Statement = {
  name: 'tf_task_insert_many_known_queues',
  text: `
WITH ${INSERT_INPUT},
${IDED},
${writeKeys('ided')},
${KEYED_INSERT}`,
};

/**
 * taskInsertManyWithoutKeysKnownQueues: taskInsertManyWithoutKeys for a batch whose queues the
 * engine knows exist: without the queue upsert. The bulk enqueue's statement.
 * $1..$25 as INSERT_INPUT says.
 */
export const taskInsertManyWithoutKeysKnownQueues: Statement = {
  name: 'tf_task_insert_many_without_keys_known_queues',
  text: `
WITH ${INSERT_INPUT},
ins AS (
${INSERT_TASKS}
RETURNING id, state, run_at
)
${ONE_ROW_ANSWER}`,
};

/**
 * taskGetByIdempotencyKeys: the tasks holding the given keys (the originals an insert skipped).
 * $1 text[] queues, $2 text[] keys (pairwise).
 */
export const taskGetByIdempotencyKeys: Statement = {
  name: 'tf_task_get_by_idempotency_keys',
  text: `
SELECT ${TASK_COLUMNS} FROM tasks
 WHERE id IN (SELECT k.task_id FROM task_idempotency_keys k
               WHERE (k.queue, k.idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[])))`,
};
