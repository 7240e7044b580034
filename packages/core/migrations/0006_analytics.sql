-- 0006_analytics: rollups of finished attempts for the analytics API, and the time indexes
-- the rollup duty reads them by.
--
-- The analytics API answers from rollup rows (per minute and per hour), never from `tasks` or
-- `attempts` directly: with 10,000,000 attempts recorded, a window of a day is a few thousand
-- rollup rows instead of millions of task rows. The rollup duty (packages/core/src/analytics/)
-- recomputes the rows of the last few minutes from the raw tables on every pass; nothing on
-- the claim or settle path writes them.
--
-- The duty finds the tasks finished in a window by `finished_at`, which no index covered.
-- BRIN, partial: a summary per 32 pages, changed only when a row falls outside its range's
-- bounds (a new row version lands where the recent ones are: the table's end, or space vacuum
-- freed among recent pages), and only settled rows (finished_at set) are indexed, so inserts
-- and claims skip it. PostgreSQL's instructions per task, `cd bench && npm run pg-instructions
-- -- --variants base,no-finished-index,brin-every-row,btree-finished`, N = 20,000):
--   no index on finished_at        insert 67,186   claim + settle 212,323
--   this BRIN (partial)            insert 67,435   claim + settle 216,801  (+0.4%, +2.1%)
--   BRIN on every row              insert 69,972   claim + settle 219,116  (+4.1%, +3.2%)
--   B-tree WHERE finished_at IS NOT NULL         claim + settle 221,170  (+4.2% over 212,332
--                                                                         in its own run)
-- `autosummarize` has autovacuum summarize each range as it fills (without autovacuum, the
-- rollup duty does: rollup.ts), so only the newest ranges are read whole. `attempts` is
-- insert-only, in `finished_at` order: its BRIN is exact, and failures are the rare path.
CREATE INDEX tasks_finished_brin ON tasks USING brin (finished_at)
  WITH (pages_per_range = 32, autosummarize = on) WHERE finished_at IS NOT NULL;
CREATE INDEX attempts_finished_brin ON attempts USING brin (finished_at)
  WITH (pages_per_range = 32, autosummarize = on);

-- One row per (resolution, bucket start, queue, type): what happened in that minute, hour or
-- UTC day.
--   submitted  tasks created (created_at in the bucket)
--   succeeded  attempts that succeeded (= tasks that finished succeeded)
--   failed     attempts that ended without success, the worker's failure or its loss
--              (outcomes failed, lease_expired, worker_lost; not abandoned nor cancelled)
--   dead       tasks that entered the dead-letter queue
--   cancelled  tasks that finished cancelled
-- hist_ix/hist_n: the durations of the attempts a worker reported (succeeded and failed), as a
-- sparse histogram: hist_n[k] attempts fell in bucket hist_ix[k] (ascending). Bucket i holds
-- durations d (microseconds) with floor(8 * log2(max(d, 1))) = i: eight buckets per doubling,
-- so any percentile read from merged rows is within a factor 2^(1/16) (about 4.4%) of the
-- exact one (docs/analytics.md).
CREATE TABLE analytics_rollups (
  resolution text NOT NULL CHECK (resolution IN ('minute', 'hour', 'day')),
  bucket     timestamptz NOT NULL,
  queue      text NOT NULL,
  type       text NOT NULL,
  submitted  integer NOT NULL DEFAULT 0,
  succeeded  integer NOT NULL DEFAULT 0,
  failed     integer NOT NULL DEFAULT 0,
  dead       integer NOT NULL DEFAULT 0,
  cancelled  integer NOT NULL DEFAULT 0,
  hist_ix    smallint[] NOT NULL DEFAULT '{}',
  hist_n     integer[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (resolution, bucket, queue, type)
);

-- The same per worker (attempts by the worker that ran them), for per-worker performance.
CREATE TABLE analytics_worker_rollups (
  resolution text NOT NULL CHECK (resolution IN ('minute', 'hour', 'day')),
  bucket     timestamptz NOT NULL,
  worker_id  uuid NOT NULL,
  succeeded  integer NOT NULL DEFAULT 0,
  failed     integer NOT NULL DEFAULT 0,
  hist_ix    smallint[] NOT NULL DEFAULT '{}',
  hist_n     integer[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (resolution, bucket, worker_id)
);

-- The duty's watermark (one row): minutes before `final_through` are final and not recomputed.
-- `id_mark` is max(tasks.id) as seen at `id_mark_at` (at or before final_through): every task
-- created since has a greater id, so counting the tasks submitted in a window scans the
-- primary key from there instead of the table. `pending_mark` is the next such mark, taken at
-- a pass and promoted once final_through has passed its time.
CREATE TABLE analytics_state (
  singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  final_through   timestamptz,
  id_mark         bigint NOT NULL DEFAULT 0,
  id_mark_at      timestamptz,
  pending_mark    bigint,
  pending_mark_at timestamptz,
  updated_at      timestamptz
);
INSERT INTO analytics_state DEFAULT VALUES;
