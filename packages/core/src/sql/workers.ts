/** Statements on `workers` (registration, heartbeats, reaping). Only the engine calls these. */
import type { Statement } from '../db/types.ts';

export const WORKER_COLUMNS = `w.id, w.name, w.queues, w.concurrency, w.metadata, w.state, w.registered_at,
  w.last_seen_at, w.expires_at, w.stopped_at,
  (SELECT count(*)::integer FROM tasks t WHERE t.worker_id = w.id AND t.state = 'running') AS running`;

/**
 * workerRegister: a new worker, alive until now + ttl unless it heartbeats.
 * $1 id, $2 name, $3 queues json, $4 concurrency, $5 metadata json, $6 ttl ms, $7 now
 */
export const workerRegister: Statement = {
  name: 'tf_worker_register',
  text: `
WITH clock AS (SELECT coalesce($7::timestamptz, now()) AS t)
INSERT INTO workers (id, name, queues, concurrency, metadata, state, registered_at, last_seen_at, expires_at)
SELECT $1, $2, $3, $4, $5, 'active', c.t, c.t, c.t + $6 * interval '1 millisecond' FROM clock c
RETURNING id`,
};

/**
 * workerHeartbeat: keeps a worker alive (expires_at = now + ttl; a worker marked lost comes
 * back to active, its old tasks already requeued and fenced) and renews the lease of the tasks
 * it says it is running ($4, or every task it holds when null) to now + each task's timeout.
 * A held task the worker does not list (its claim response was lost, say) is not renewed: its
 * lease runs out and the rescuer hands it on. A stopped (deregistered) worker is not revived.
 * $1 id, $2 ttl ms, $3 now, $4 bigint[] running or null
 * Returns found (0 or 1), the tasks it holds and those of them with a cancel request.
 */
export const workerHeartbeat: Statement = {
  name: 'tf_worker_heartbeat',
  text: `
WITH clock AS (SELECT coalesce($3::timestamptz, now()) AS t),
w AS (
  UPDATE workers SET last_seen_at = c.t, expires_at = c.t + $2 * interval '1 millisecond', state = 'active'
    FROM clock c
   WHERE id = $1 AND state <> 'stopped'
  RETURNING id
),
renewed AS (
  UPDATE tasks t SET lease_expires_at = c.t + t.timeout_ms * interval '1 millisecond'
    FROM clock c, w
   WHERE t.worker_id = w.id AND t.state = 'running' AND ($4::bigint[] IS NULL OR t.id = ANY($4::bigint[]))
  RETURNING t.id
),
held AS (
  SELECT t.id, t.cancel_requested FROM tasks t, w WHERE t.worker_id = w.id AND t.state = 'running'
)
SELECT (SELECT count(*)::integer FROM w) AS found,
       (SELECT count(*)::integer FROM renewed) AS renewed,
       coalesce((SELECT array_agg(id::text) FROM held), '{}') AS held,
       coalesce((SELECT array_agg(id::text) FROM held WHERE cancel_requested), '{}') AS cancel`,
};

/** workerStop: marks a worker stopped (deregistered). $1 id, $2 now. Returns the row if it was not stopped. */
export const workerStop: Statement = {
  name: 'tf_worker_stop',
  text: `
UPDATE workers SET state = 'stopped', stopped_at = coalesce($2::timestamptz, now())
 WHERE id = $1 AND state <> 'stopped'
RETURNING id`,
};

/**
 * workerMarkLost: active workers whose heartbeat deadline passed become `lost`, at most $2
 * per call; safe on every node at once (SKIP LOCKED).
 * $1 now, $2 limit
 */
export const workerMarkLost: Statement = {
  name: 'tf_worker_mark_lost',
  text: `
WITH clock AS (SELECT coalesce($1::timestamptz, now()) AS t),
lost AS (
  SELECT id FROM workers, clock c
   WHERE state = 'active' AND expires_at <= c.t
   ORDER BY expires_at LIMIT $2 FOR UPDATE OF workers SKIP LOCKED
)
UPDATE workers w SET state = 'lost' FROM lost WHERE w.id = lost.id
RETURNING w.id`,
};

/** workerState: the state of one worker, for claim admission. $1 id */
export const workerState: Statement = {
  name: 'tf_worker_state',
  text: `SELECT state FROM workers WHERE id = $1`,
};

/** workerGet: one worker with its running-task count. $1 id */
export const workerGet: Statement = {
  name: 'tf_worker_get',
  text: `SELECT ${WORKER_COLUMNS} FROM workers w WHERE w.id = $1`,
};

/**
 * workerList: workers, most recently registered first. Unprepared (optional filters).
 * $1 text[] states or null, $2 cursor registered_at, $3 cursor id, $4 limit
 */
export const workerList = `
SELECT ${WORKER_COLUMNS} FROM workers w
 WHERE ($1::text[] IS NULL OR w.state = ANY($1::text[]))
   AND ($2::timestamptz IS NULL OR (w.registered_at, w.id) < ($2::timestamptz, $3::uuid))
 ORDER BY w.registered_at DESC, w.id DESC
 LIMIT $4`;
