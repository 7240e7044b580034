/** Reads of tasks and their attempts. */
import type { Statement } from '../../db/types.ts';
import { TASK_COLUMNS } from './columns.ts';

/** taskGet: one task by id. $1 id */
export const taskGet: Statement = {
  name: 'tf_task_get',
  text: `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = $1`,
};

/** taskGetMany: tasks by id, in no order. $1 bigint[] ids */
export const taskGetMany: Statement = {
  name: 'tf_task_get_many',
  text: `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ANY($1::bigint[])`,
};

/** taskAttempts: every attempt of a task, oldest first. $1 task id */
export const taskAttempts: Statement = {
  name: 'tf_task_attempts',
  text: `SELECT attempt, worker_id, started_at, finished_at, outcome, error, logs, trace_id
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
