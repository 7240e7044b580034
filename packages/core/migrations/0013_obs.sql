-- 0013_obs: a 6-hour tier of the analytics rollups, between the hour and the day rows.
--
-- An answer over a window merges the histograms of every rollup row in it, and that merge is
-- what an analytics answer costs (bench/analytics.ts): a 24-hour window of hour rows is 24
-- rows per (queue, type) of about a hundred histogram buckets each. The reads cover a window
-- with the coarsest rows that fit inside it and the finer ones only at its edges
-- (analytics/tiers.ts): with 6-hour rows a sliding 24-hour window is at most 9 rows per
-- (queue, type), a 48-hour one at most 10 (with a day row), instead of 24 and 48. Day rows
-- are rolled up from the 6-hour rows (4 per day instead of 24 hour rows).
-- The totals rows (queue and type '', one per minute, hour, ...) by time alone: the unfiltered
-- throughput of a day in minutes reads 1,440 of them, where the primary key's range held the
-- 73,000 rows of every (queue, type) of those minutes to step over (80 ms of a 90 ms query on
-- the loaded bench machine). A fiftieth of the rollup's writes, on a table the hot path never
-- touches; the counts are included so that a vacuumed range is read from the index alone.
CREATE INDEX analytics_rollups_totals ON analytics_rollups (resolution, bucket)
  INCLUDE (submitted, succeeded, failed, dead) WHERE queue = '' AND type = '';

ALTER TABLE analytics_rollups DROP CONSTRAINT analytics_rollups_resolution_check,
  ADD CONSTRAINT analytics_rollups_resolution_check CHECK (resolution IN ('minute', 'hour', '6h', 'day'));
ALTER TABLE analytics_worker_rollups DROP CONSTRAINT analytics_worker_rollups_resolution_check,
  ADD CONSTRAINT analytics_worker_rollups_resolution_check CHECK (resolution IN ('minute', 'hour', '6h', 'day'));

-- The 6-hour rows of the hour rows already kept (the duty keeps them from here on): counts
-- summed, histograms merged bucket by bucket, as the duty does (sql/analytics.ts, rollupLevel).
WITH m AS (
  SELECT date_bin('6 hours', bucket, timestamptz 'epoch') AS b, * FROM analytics_rollups WHERE resolution = 'hour'
),
hist AS (
  SELECT b, queue, type, array_agg(ix ORDER BY ix) AS hist_ix, array_agg(n ORDER BY ix) AS hist_n
    FROM (SELECT b, queue, type, u.ix, sum(u.n)::integer AS n FROM m, unnest(m.hist_ix, m.hist_n) AS u(ix, n)
           GROUP BY b, queue, type, u.ix) h
   GROUP BY b, queue, type
)
INSERT INTO analytics_rollups (resolution, bucket, queue, type, submitted, succeeded, failed, dead, cancelled, hist_ix, hist_n)
SELECT '6h', c.b, c.queue, c.type, c.submitted, c.succeeded, c.failed, c.dead, c.cancelled,
       coalesce(h.hist_ix, '{}'), coalesce(h.hist_n, '{}')
  FROM (SELECT b, queue, type, sum(submitted)::integer AS submitted, sum(succeeded)::integer AS succeeded,
               sum(failed)::integer AS failed, sum(dead)::integer AS dead, sum(cancelled)::integer AS cancelled
          FROM m GROUP BY b, queue, type) c
  LEFT JOIN hist h USING (b, queue, type);

WITH wm AS (
  SELECT date_bin('6 hours', bucket, timestamptz 'epoch') AS b, * FROM analytics_worker_rollups WHERE resolution = 'hour'
),
worker_hist AS (
  SELECT b, worker_id, array_agg(ix ORDER BY ix) AS hist_ix, array_agg(n ORDER BY ix) AS hist_n
    FROM (SELECT b, worker_id, u.ix, sum(u.n)::integer AS n FROM wm, unnest(wm.hist_ix, wm.hist_n) AS u(ix, n)
           GROUP BY b, worker_id, u.ix) h
   GROUP BY b, worker_id
)
INSERT INTO analytics_worker_rollups (resolution, bucket, worker_id, succeeded, failed, hist_ix, hist_n)
SELECT '6h', c.b, c.worker_id, c.succeeded, c.failed, coalesce(h.hist_ix, '{}'), coalesce(h.hist_n, '{}')
  FROM (SELECT b, worker_id, sum(succeeded)::integer AS succeeded, sum(failed)::integer AS failed
          FROM wm GROUP BY b, worker_id) c
  LEFT JOIN worker_hist h USING (b, worker_id);
