/**
 * Rescue: running attempts ended without a result from their worker (lease expired, worker
 * lost, worker deregistered, claim never delivered or never seen by its worker).
 */
import type { Statement } from '../../db/types.ts';
import { dependentsOfEnded } from './dependents.ts';
import { NEXT_STATE_AFTER_FAILURE } from './nextState.ts';

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
 * with `outcome` and moves each task on by NEXT_STATE_AFTER_FAILURE (always retryable; the
 * delay is the backoff for an expired lease, zero otherwise: the design's "an expired lease is
 * a failed attempt and follows the retry policy; a deregistered or dead worker's tasks are
 * requeued at once"). Requeued at once, a task keeps its run time, and so its place in line
 * (`keep_place`): it goes back ahead of the tasks that were behind it. When `leaseLoss` is set the attempt counts towards poison quarantine: a
 * task whose attempts end with the worker gone `$poisonAfter` times is dead with reason
 * `poison`, whatever attempts it has left. A task that ends dead or cancelled takes its
 * dependents with it (dependentsOfEnded). Returns the rescued tasks (kind 'settled') and the
 * dependents made ready (kind 'dependent').
 * Parameters: $1 now, $2 poisonAfter, then the victims query's own.
 */
function rescueStatement(name: string, kind: RescueKind): Statement {
  const { victims, outcome, error } = kind;
  const loss = kind.leaseLoss ? 1 : 0;
  const delay = kind.backoff ? 'backoff_delay_ms(t.backoff, t.attempt - t.attempt_base)' : '0::float8';
  const refund = kind.refund ? 1 : 0;
  // Without a backoff the worker, not the task, ended the attempt: it keeps its place in line.
  const keep = kind.backoff ? 'false' : 'true';
  return {
    name,
    text: `
WITH RECURSIVE clock AS (SELECT coalesce($1::timestamptz, now()) AS t),
victims AS (${victims}),
cur AS (
  SELECT t.id, t.attempt, t.worker_id, t.started_at, t.cancel_requested, t.lease_expires_at,
         ${refund} = 0 AND t.attempt - t.attempt_base >= t.max_attempts AS exhausted,
         true AS retryable, ${loss} = 1 AND t.lease_losses + 1 >= $2 AS poisoned, ${keep} AS keep_place,
         ${delay} AS delay_ms
    FROM tasks t JOIN victims v ON v.id = t.id
),
upd AS (
  UPDATE tasks t
     SET lease_losses = t.lease_losses + ${loss},
         attempt_base = t.attempt_base + ${refund},
         ${NEXT_STATE_AFTER_FAILURE},
         last_error = jsonb_build_object('message', ${error}, 'attempt', cur.attempt),
         lease_expires_at = NULL, worker_id = NULL, cancel_requested = false
    FROM cur, clock c
   WHERE t.id = cur.id
  RETURNING t.id, t.queue, t.type, t.state, t.run_at, t.has_children, t.workflow_id, date_part('epoch', c.t - cur.started_at) AS took
),
history AS (
  INSERT INTO attempts (task_id, attempt, worker_id, started_at, finished_at, outcome, error)
  SELECT cur.id, cur.attempt, cur.worker_id, cur.started_at, c.t, '${outcome}',
         jsonb_build_object('message', ${error}, 'retryable', true)
    FROM cur, clock c
),
${dependentsOfEnded('upd')}
SELECT id, queue, type, state, run_at, took, 'settled' AS kind FROM upd
UNION ALL
SELECT id, queue, NULL, state, run_at, NULL, 'dependent' FROM finish_dependents`,
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
 * taskReleaseWorkerUnstarted: a deregistering worker that lists the tasks it started ($4, $5)
 * hands back every other task it holds as never run: a claim answer that never reached it
 * (it stopped while the answer was on its way) leased them to a worker that never saw them.
 * Refunded like taskReleaseClaimed; the listed ones are left to taskReleaseWorker, in the same
 * transaction. A held task listed at another attempt was not started at this one: refunded.
 * $1 now, $2 poisonAfter (unused), $3 worker id, $4 bigint[] started ids, $5 integer[] their attempts (pairwise)
 */
export const taskReleaseWorkerUnstarted = rescueStatement('tf_task_release_worker_unstarted', {
  victims: `SELECT t.id FROM tasks t
             WHERE t.state = 'running' AND t.worker_id = $3::uuid
               AND NOT EXISTS (SELECT 1 FROM unnest($4::bigint[], $5::integer[]) AS s(id, attempt) WHERE s.id = t.id AND s.attempt = t.attempt)
             FOR UPDATE OF t`,
  outcome: 'abandoned',
  leaseLoss: false,
  backoff: false,
  refund: true,
  error: `'handed back without running (the worker deregistered without having started it)'`,
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
