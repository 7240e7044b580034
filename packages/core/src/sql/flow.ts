/**
 * Flow control: queue settings, the claim of a limited queue, admission and explain. Only the
 * engine calls these (engine/flow*.ts). See docs/flow-control.md.
 */
import type { Statement } from '../db/types.ts';
import { CLAIMED_COLUMNS, claimedUpdate, READY_AT } from './tasks/claim.ts';

/** The settings columns of `queues`, as read by queueSettingsGet and queueStats. */
export const SETTINGS_COLUMNS = `max_running, key_max_running, rate_limit, rate_interval_ms, rate_burst,
       key_rate_limit, key_rate_interval_ms, key_rate_burst, max_depth, max_age_ms,
       default_max_attempts, default_backoff, fair, limited`;

/**
 * queueSettingsGet: a queue's flow settings (no row: the queue does not exist, so has none).
 * $1 queue
 */
export const queueSettingsGet: Statement = {
  name: 'tf_queue_settings_get',
  text: `SELECT ${SETTINGS_COLUMNS} FROM queues WHERE name = $1`,
};

/**
 * queueSettingsPatch: changes a queue's settings (after queueEnsure). $2 is a JSON
 * object whose keys are the columns to change (a key with JSON null clears the setting); the
 * columns it does not name keep their value. The CHECK constraints of 0006 refuse a partial rate
 * limit and values below 1; the engine validates before.
 * $1 queue, $2 jsonb patch
 */
export const queueSettingsPatch: Statement = {
  name: 'tf_queue_settings_patch',
  text: `
WITH p AS (SELECT $2::jsonb AS j)
UPDATE queues q SET
  max_running          = CASE WHEN p.j ? 'max_running' THEN (p.j->>'max_running')::integer ELSE q.max_running END,
  key_max_running      = CASE WHEN p.j ? 'key_max_running' THEN (p.j->>'key_max_running')::integer ELSE q.key_max_running END,
  rate_limit           = CASE WHEN p.j ? 'rate_limit' THEN (p.j->>'rate_limit')::integer ELSE q.rate_limit END,
  rate_interval_ms     = CASE WHEN p.j ? 'rate_interval_ms' THEN (p.j->>'rate_interval_ms')::integer ELSE q.rate_interval_ms END,
  rate_burst           = CASE WHEN p.j ? 'rate_burst' THEN (p.j->>'rate_burst')::integer ELSE q.rate_burst END,
  key_rate_limit       = CASE WHEN p.j ? 'key_rate_limit' THEN (p.j->>'key_rate_limit')::integer ELSE q.key_rate_limit END,
  key_rate_interval_ms = CASE WHEN p.j ? 'key_rate_interval_ms' THEN (p.j->>'key_rate_interval_ms')::integer ELSE q.key_rate_interval_ms END,
  key_rate_burst       = CASE WHEN p.j ? 'key_rate_burst' THEN (p.j->>'key_rate_burst')::integer ELSE q.key_rate_burst END,
  max_depth            = CASE WHEN p.j ? 'max_depth' THEN (p.j->>'max_depth')::integer ELSE q.max_depth END,
  max_age_ms           = CASE WHEN p.j ? 'max_age_ms' THEN (p.j->>'max_age_ms')::bigint ELSE q.max_age_ms END,
  default_max_attempts = CASE WHEN p.j ? 'default_max_attempts' THEN (p.j->>'default_max_attempts')::integer ELSE q.default_max_attempts END,
  default_backoff      = CASE WHEN p.j ? 'default_backoff' THEN nullif(p.j->'default_backoff', 'null'::jsonb) ELSE q.default_backoff END,
  fair                 = CASE WHEN p.j ? 'fair' THEN (p.j->>'fair')::boolean ELSE q.fair END
  FROM p
 WHERE q.name = $1
RETURNING q.name`,
};

/** queueEnsure: creates a queue's row if it does not exist yet. $1 queue */
export const queueEnsure: Statement = {
  name: 'tf_queue_ensure',
  text: `INSERT INTO queues (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`,
};

/**
 * queueLock: locks a queue's row for the rest of the transaction, and reads its settings. Every
 * claim of a limited queue, and every submit to a queue with admission limits, takes it first,
 * in a statement of its own: under READ COMMITTED the statements after it see every claim (or
 * insert) committed by the holder before, so counts read under the lock are exact. The plain
 * claim does not lock (it reads the row without a lock, and skips limited queues).
 * $1 queue
 */
export const queueLock: Statement = {
  name: 'tf_queue_lock',
  text: `SELECT ${SETTINGS_COLUMNS}, paused FROM queues WHERE name = $1 FOR UPDATE`,
};

/**
 * queueLockForClaim: queueLock for a claim, whose transaction commits without waiting for the
 * WAL flush (see Database.relaxed: a claim lost in a crash of PostgreSQL is only run again).
 * $1 queue
 */
export const queueLockForClaim: Statement = {
  name: 'tf_queue_lock_for_claim',
  text: `SELECT ${SETTINGS_COLUMNS}, paused, set_config('synchronous_commit', 'off', true) AS relaxed
  FROM queues WHERE name = $1 FOR UPDATE`,
};

/**
 * Tokens a GCRA bucket holds at time `now` (at most `burst`): its theoretical arrival time
 * `tat` (null: a bucket never used, full), `limit` starts per `interval` ms. One start moves
 * `tat` on by interval / limit; the bucket admits while tat - now <= (burst - 1) * interval / limit.
 */
export function tokens(tat: string, now: string, limit: string, interval: string, burst: string): string {
  return `floor((date_part('epoch', ${now} - greatest(coalesce(${tat}, ${now}), ${now})) * 1000) * ${limit} / ${interval}
               + ${burst} + 1e-9)::integer`;
}

/**
 * The largest claim of a limited queue that tries the walk before the loose scan: the walk of
 * such a claim reads at most 2 × 32 + 16 ready tasks, fewer reads than the probes the capped
 * loose scan would make first whenever the queue has more keys than the claim wants tasks.
 */
const WALK_FIRST = 32;

/**
 * A candidate `r` of taskClaimLimited's `cand` whose concurrency key may start one more (`h`:
 * its key's row of `held`). A head (rn 1) is checked here; the tasks after a head come from a
 * read of its key limited to the key's free slots, so they fit by construction.
 */
const KEY_SLOT_FREE = `(r.concurrency_key IS NULL OR q.key_max_running IS NULL OR r.rn > 1 OR coalesce(h.n, 0) < q.key_max_running)`;

/**
 * One step of the loose scan of tasks_ready_flow: the first ready task with a key past key
 * `prev`.k (its depth `prev`.d + 1), or the very first (`prev` NULL, depth 1), for the
 * caller's ORDER BY ... LIMIT 1.
 */
function nextHead(prev: string): string {
  return `SELECT coalesce(concurrency_key, rate_key), id, ctid, priority, run_at, concurrency_key, rate_key, ${prev === 'NULL' ? '1' : `${prev}.d + 1`} FROM tasks
     WHERE state = 'queued' AND queue = $1 AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL)${prev === 'NULL' ? '' : `
       AND coalesce(concurrency_key, rate_key) > ${prev}.k`}`;
}

/**
 * taskClaimLimited: the claim of a limited queue, run after queueLock in the same transaction.
 * $1 queue, $2 limit, $3 worker id, $4 now
 *
 * Keeps: at most `max_running` attempts with an unexpired lease in the queue, at most
 * `key_max_running` per concurrency key (counted under the queue's lock, so concurrent
 * claimers never over-admit: slots are counted, never positions); starts within each GCRA
 * bucket (queue-wide, key ''; per rate key), whose new `tat` is written in the same statement
 * from the tasks actually claimed; fairness across keys: the distinct fairness keys (the
 * concurrency key, else the rate key) come from a loose scan of tasks_ready_flow, each gives
 * at most its share ceil(room / keys) from its head, and the claim takes them round by round
 * (the first of every key, then the second, ...), ties by priority, run time, id. Tasks without
 * a key form one more group, read from the first `limit` ready tasks in claim order (a queue
 * with limits should give every task a key, or none). Every filter that could refuse a task
 * counts it as taken: a claim may under-fill, never over-admit; the engine claims again.
 * The heads: for a claim of more than WALK_FIRST tasks, the loose scan of tasks_ready_flow
 * (`few`: each step is the first entry past the previous key, one index probe per key, which
 * finds both the key and its head) runs first, for at most room + 1 keys. When it ends sooner,
 * it has every key, and they are the heads (a claim larger than the keys: the usual drain, whose
 * claims of ~250 meet ~100 keys); the next tasks of each key are then read (`cand`, OFFSET 1, at
 * most its share). When there are more keys than room (`many`), or for a smaller claim at once,
 * the heads come from a short walk of the ready tasks in claim order (`walk`, the
 * first 2 * room + 16 of tasks_ready): the first task of each key there whose key has a slot and a
 * token (`walk_heads`) is that key's head, and those heads come in the order the loose scan would
 * rank them, so when the walk holds at least `room` of them (`walked`) they are the claim;
 * otherwise (the first tasks all of a few keys, or of keys at their limit) the loose scan goes on
 * past the last key `few` found, or starts (`rest`), over every key. Keyless tasks in the walk are one
 * group, as in `w`. A key's slots are counted once per key, not by ranking the candidates
 * (KEY_SLOT_FREE); the rank within each rate key (`ranked`, a sort of the candidates by key)
 * is computed only in a queue with a per-key rate limit: `admitted` has a branch for each case,
 * of which the one that does not apply is never run.
 * The candidates carry their row's address (`ctid`, as `tid`) from the scan that read them.
 * `picked` locks the admitted tasks by that address, SKIP LOCKED, and checks the state and
 * deadline of the version it locked after the lock (`locked`, materialized so that the check is
 * not pushed into it): the locking scan's only condition is the address, so its plan is a TID
 * scan whatever the statistics (with `state = 'queued'` beside it, a plan without statistics
 * read the whole of tasks_ready through its predicate and filtered the addresses: 2.3 million
 * instructions per task at claims of 5). A task changed since the statement's snapshot is
 * re-read at its newest version and dropped unless still queued (it stays locked, unclaimed,
 * until the commit); a task past its deadline (`expires_at`) is dropped there, like the claim's
 * other refusals: never started, cancelled by the expirer within its interval. `claimed` updates
 * the locked versions by their address too (claimedUpdate); a version it cannot see
 * (one changed after the snapshot, locked through its newer version) is left locked and
 * unclaimed until the commit: an under-filled claim, never a double one. Against a probe of the
 * primary key per id, this saves 4.4% of PostgreSQL's instructions per task claimed and settled
 * (`npm run pg-instructions -- --variants limited-analyzed --batch 450 --n 18000`).
 * A paused queue, a worker not active or not serving the queue: nothing. Returns the columns of
 * taskClaim, the parents' results (`parents_json`) among them, and `ready_at` as
 * taskClaimObserved does (the queue wait the metrics observe; a comparison per task when the
 * run time is the creation time).
 */
export const taskClaimLimited: Statement = {
  name: 'tf_task_claim_limited',
  text: `
WITH RECURSIVE clock AS (SELECT coalesce($4::timestamptz, now()) AS t),
${limitedClaimCtes()}
SELECT id, ${CLAIMED_COLUMNS}, ready_at FROM claimed ORDER BY priority DESC, run_at, id`,
};

/** The CTEs of taskClaimLimited after `clock`, through `claimed` and `charged`. */
function limitedClaimCtes(): string {
  return `q AS (
  SELECT q.*, c.t FROM queues q, clock c
   WHERE q.name = $1 AND NOT q.paused
     AND EXISTS (SELECT 1 FROM workers w WHERE w.id = $3 AND w.state = 'active'
                    AND w.queues @> jsonb_build_array(jsonb_build_object('name', $1::text)))
),
held AS (
  SELECT t.concurrency_key AS k, count(*)::integer AS n FROM tasks t, q
   WHERE t.state = 'running' AND t.queue = $1 AND t.lease_expires_at > q.t
     AND (q.max_running IS NOT NULL OR q.key_max_running IS NOT NULL)
   GROUP BY t.concurrency_key
),
room AS (
  SELECT greatest(0, least($2::integer,
           coalesce(q.max_running - (SELECT coalesce(sum(n), 0)::integer FROM held), $2::integer),
           CASE WHEN q.rate_limit IS NULL THEN $2::integer
                ELSE ${tokens('b.tat', 'q.t', 'q.rate_limit', 'q.rate_interval_ms', 'q.rate_burst')} END)) AS n
    FROM q LEFT JOIN rate_buckets b ON b.queue = $1 AND b.key = ''
),
few(k, id, tid, priority, run_at, concurrency_key, rate_key, d) AS (
  (${nextHead('NULL')}
    AND (SELECT n FROM room) > ${WALK_FIRST}
    ORDER BY coalesce(concurrency_key, rate_key), priority DESC, run_at, id LIMIT 1)
  UNION ALL
  SELECT nx.* FROM few h CROSS JOIN LATERAL (
    ${nextHead('h')}
     ORDER BY coalesce(concurrency_key, rate_key), priority DESC, run_at, id LIMIT 1
  ) nx
   WHERE h.d <= (SELECT n FROM room) AND h.d < 10000
),
many AS (SELECT count(*) > (SELECT n FROM room) AS more, max(d) AS last FROM few),
walk AS (
  SELECT id, ctid AS tid, priority, run_at, concurrency_key, rate_key FROM tasks
   WHERE state = 'queued' AND queue = $1 AND (SELECT n FROM room) > 0
     AND ((SELECT n FROM room) <= ${WALK_FIRST} OR (SELECT more FROM many))
   ORDER BY priority DESC, run_at, id
   LIMIT 2 * (SELECT n FROM room) + 16
),
walk_heads AS (
  SELECT DISTINCT ON (coalesce(w.concurrency_key, w.rate_key)) w.id, w.tid, w.priority, w.run_at, w.concurrency_key, w.rate_key
    FROM walk w CROSS JOIN q
    LEFT JOIN held h ON h.k = w.concurrency_key
    LEFT JOIN rate_buckets b ON b.queue = $1 AND b.key = w.rate_key
   WHERE (w.concurrency_key IS NULL OR q.key_max_running IS NULL OR coalesce(h.n, 0) < q.key_max_running)
     AND (w.rate_key IS NULL OR q.key_rate_limit IS NULL
          OR ${tokens('b.tat', 'q.t', 'q.key_rate_limit', 'q.key_rate_interval_ms', 'q.key_rate_burst')} >= 1)
   ORDER BY coalesce(w.concurrency_key, w.rate_key), w.priority DESC, w.run_at, w.id
),
walked AS (SELECT count(*) >= (SELECT n FROM room) AS enough FROM walk_heads),
rest(k, id, tid, priority, run_at, concurrency_key, rate_key, d) AS (
  (SELECT a.* FROM (
     SELECT f.* FROM few f WHERE f.d = (SELECT last FROM many) AND (SELECT more FROM many) AND NOT (SELECT enough FROM walked)
     UNION ALL
     (${nextHead('NULL')}
       AND (SELECT n FROM room) BETWEEN 1 AND ${WALK_FIRST} AND NOT (SELECT enough FROM walked)
       ORDER BY coalesce(concurrency_key, rate_key), priority DESC, run_at, id LIMIT 1)
   ) a)
  UNION ALL
  SELECT nx.* FROM rest h CROSS JOIN LATERAL (
    ${nextHead('h')}
     ORDER BY coalesce(concurrency_key, rate_key), priority DESC, run_at, id LIMIT 1
  ) nx
   WHERE h.d < 10000
),
heads AS (
  SELECT * FROM few WHERE NOT (SELECT enough FROM walked)
  UNION ALL
  SELECT * FROM rest WHERE d > coalesce((SELECT last FROM many), 0)
),
share AS (
  SELECT r.n AS room, ceil(r.n::float8 / greatest(count(h.k), 1))::integer AS take, count(h.k) AS keyed
    FROM room r LEFT JOIN heads h ON true GROUP BY r.n
),
cand AS (
  SELECT h.id, h.tid, h.priority, h.run_at, h.concurrency_key, h.rate_key, 1::bigint AS rn FROM walk_heads h
   WHERE (SELECT enough FROM walked)
  UNION ALL
  SELECT h.id, h.tid, h.priority, h.run_at, h.concurrency_key, h.rate_key, 1::bigint AS rn FROM heads h
  UNION ALL
  SELECT t.* FROM heads g CROSS JOIN share s CROSS JOIN q
   CROSS JOIN LATERAL (
     SELECT id, ctid AS tid, priority, run_at, concurrency_key, rate_key,
            1 + row_number() OVER (ORDER BY priority DESC, run_at, id) AS rn
       FROM tasks
      WHERE state = 'queued' AND queue = $1 AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL)
        AND coalesce(concurrency_key, rate_key) = g.k
      ORDER BY priority DESC, run_at, id
      OFFSET 1
      LIMIT greatest(0, least(s.take, coalesce(q.key_max_running - coalesce((SELECT n FROM held h WHERE h.k = g.k), 0), s.take)) - 1)
   ) t
   WHERE s.take > 1
  UNION ALL
  SELECT w.id, w.tid, w.priority, w.run_at, w.concurrency_key, w.rate_key,
         row_number() OVER (ORDER BY w.priority DESC, w.run_at, w.id)
    FROM (SELECT id, ctid AS tid, priority, run_at, concurrency_key, rate_key FROM tasks
           WHERE state = 'queued' AND queue = $1 AND (SELECT room FROM share) > 0 AND NOT (SELECT enough FROM walked)
           ORDER BY priority DESC, run_at, id
           LIMIT CASE WHEN (SELECT keyed FROM share) > 0 THEN (SELECT take FROM share) ELSE $2::integer END) w
   WHERE w.concurrency_key IS NULL AND w.rate_key IS NULL
),
ranked AS (
  SELECT c.*, row_number() OVER (PARTITION BY c.rate_key ORDER BY c.rn, c.priority DESC, c.run_at, c.id) AS rkn
    FROM cand c WHERE (SELECT key_rate_limit FROM q) IS NOT NULL
),
admitted AS (
  (SELECT r.tid FROM cand r CROSS JOIN q
     LEFT JOIN held h ON h.k = r.concurrency_key
    WHERE q.key_rate_limit IS NULL AND ${KEY_SLOT_FREE}
    ORDER BY r.rn, r.priority DESC, r.run_at, r.id
    LIMIT (SELECT n FROM room))
  UNION ALL
  (SELECT r.tid FROM ranked r CROSS JOIN q
     LEFT JOIN held h ON h.k = r.concurrency_key
     LEFT JOIN rate_buckets b ON b.queue = $1 AND b.key = r.rate_key
    WHERE ${KEY_SLOT_FREE}
      AND (r.rate_key IS NULL OR r.rkn <= ${tokens('b.tat', 'q.t', 'q.key_rate_limit', 'q.key_rate_interval_ms', 'q.key_rate_burst')})
    ORDER BY r.rn, r.priority DESC, r.run_at, r.id
    LIMIT (SELECT n FROM room))
),
locked AS MATERIALIZED (
  SELECT ctid AS tid, state, expires_at FROM tasks WHERE ctid = ANY(ARRAY(SELECT tid FROM admitted)) FOR UPDATE SKIP LOCKED
),
picked AS (
  SELECT tid FROM locked WHERE state = 'queued' AND (expires_at IS NULL OR expires_at > (SELECT t FROM clock))
),
${claimedUpdate('$3', ` t.rate_key, ${READY_AT} AS ready_at,`)},
charges AS (
  SELECT '' AS key, count(*)::float8 * q.rate_interval_ms / q.rate_limit AS ms
    FROM claimed, q WHERE q.rate_limit IS NOT NULL
   GROUP BY q.rate_interval_ms, q.rate_limit HAVING count(*) > 0
  UNION ALL
  SELECT cl.rate_key, count(*)::float8 * q.key_rate_interval_ms / q.key_rate_limit
    FROM claimed cl, q WHERE cl.rate_key IS NOT NULL AND q.key_rate_limit IS NOT NULL
   GROUP BY cl.rate_key, q.key_rate_interval_ms, q.key_rate_limit
),
charged AS (
  INSERT INTO rate_buckets AS b (queue, key, tat)
  SELECT $1, ch.key, c.t + ch.ms * interval '1 millisecond' FROM charges ch, clock c
  ON CONFLICT (queue, key) DO UPDATE
     SET tat = greatest(b.tat, (SELECT t FROM clock)) + (excluded.tat - (SELECT t FROM clock))
)`;
}

/**
 * flowNextWake: when a limited queue with ready tasks may admit again: the soonest unexpired
 * lease of the queue (its slot frees then at the latest) or refill of one of its rate buckets
 * (the time its tokens reach one). Null when nothing is ready or nothing is pending.
 * $1 queue, $2 now
 */
export const flowNextWake: Statement = {
  name: 'tf_flow_next_wake',
  text: `
WITH c AS (SELECT coalesce($2::timestamptz, now()) AS t),
q AS (SELECT * FROM queues WHERE name = $1)
SELECT date_part('epoch', least(
         (SELECT min(t.lease_expires_at) FROM tasks t, c, q
           WHERE t.state = 'running' AND t.queue = $1 AND t.lease_expires_at > c.t
             AND (q.max_running IS NOT NULL OR q.key_max_running IS NOT NULL)),
         (SELECT min(r.at) FROM (
            SELECT b.tat - (CASE WHEN b.key = '' THEN (q.rate_burst - 1)::float8 * q.rate_interval_ms / q.rate_limit
                                 ELSE (q.key_rate_burst - 1)::float8 * q.key_rate_interval_ms / q.key_rate_limit END)
                           * interval '1 millisecond' AS at
              FROM rate_buckets b, q WHERE b.queue = $1) r, c
           WHERE r.at > c.t)
       ) - c.t) * 1000 AS in_ms
  FROM c
 WHERE EXISTS (SELECT 1 FROM tasks WHERE state = 'queued' AND queue = $1)`,
};

/**
 * queueAdmission: what admission control weighs, read under queueLock: the waiting tasks of
 * the queue (not started, not finished: blocked, scheduled, queued, retrying), counted up to
 * $2 (the most that matters), and how long its oldest ready task has waited, ms (only when $4;
 * null when none is ready).
 * $1 queue, $2 count cap, $3 now, $4 whether to read the age
 */
export const queueAdmission: Statement = {
  name: 'tf_queue_admission',
  text: `
WITH c AS (SELECT coalesce($3::timestamptz, now()) AS t)
SELECT (SELECT count(*)::integer FROM (SELECT 1 FROM tasks WHERE queue = $1
          AND state IN ('blocked', 'scheduled', 'queued', 'retrying') LIMIT $2) d) AS depth,
       CASE WHEN $4::boolean THEN
         (SELECT date_part('epoch', c.t - min(run_at)) * 1000 FROM tasks WHERE state = 'queued' AND queue = $1)
       END AS oldest_age_ms
  FROM c`,
};

/**
 * taskExplain: what a task's explain answer weighs (engine/explain.ts): the task, its queue's
 * pause and settings, the slots held in the queue and by its concurrency key (unexpired leases)
 * and the soonest of those leases to expire, its rate buckets, and the ready tasks ahead of it
 * in claim order. An operator's call: the counts read the queue's running and ready tasks.
 * $1 task id, $2 now
 */
export const taskExplain: Statement = {
  name: 'tf_task_explain',
  text: `
WITH c AS (SELECT coalesce($2::timestamptz, now()) AS t),
tk AS (SELECT id, queue, state, run_at, priority, concurrency_key, rate_key FROM tasks WHERE id = $1)
SELECT tk.id::text AS id, tk.queue, tk.state, tk.run_at, tk.concurrency_key, tk.rate_key, c.t AS now,
       coalesce(q.paused, false) AS paused, ${SETTINGS_COLUMNS.replace(/(\w+)/g, 'q.$1')},
       (SELECT count(*)::integer FROM tasks t WHERE t.state = 'running' AND t.queue = tk.queue AND t.lease_expires_at > c.t) AS running,
       (SELECT min(t.lease_expires_at) FROM tasks t WHERE t.state = 'running' AND t.queue = tk.queue AND t.lease_expires_at > c.t) AS running_frees_at,
       (SELECT count(*)::integer FROM tasks t WHERE t.state = 'running' AND t.queue = tk.queue
           AND t.concurrency_key = tk.concurrency_key AND t.lease_expires_at > c.t) AS key_running,
       (SELECT min(t.lease_expires_at) FROM tasks t WHERE t.state = 'running' AND t.queue = tk.queue
           AND t.concurrency_key = tk.concurrency_key AND t.lease_expires_at > c.t) AS key_frees_at,
       (SELECT b.tat FROM rate_buckets b WHERE b.queue = tk.queue AND b.key = '') AS queue_tat,
       (SELECT b.tat FROM rate_buckets b WHERE b.queue = tk.queue AND b.key = tk.rate_key) AS key_tat,
       CASE WHEN tk.state = 'queued' THEN
         (SELECT count(*)::integer FROM tasks t WHERE t.state = 'queued' AND t.queue = tk.queue
             AND (t.priority > tk.priority OR (t.priority = tk.priority AND (t.run_at, t.id) < (tk.run_at, tk.id))))
       END AS ahead
  FROM tk CROSS JOIN c LEFT JOIN queues q ON q.name = tk.queue`,
};
