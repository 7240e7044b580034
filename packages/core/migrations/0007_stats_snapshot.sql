-- The queue gauges the metrics export (tasks per state, oldest ready and running ages, workers
-- and slots per queue, paused), in one row that one node at a time refreshes (engine/stats.ts)
-- and every node reads: scraping ten nodes counts the tasks once, not ten times.
CREATE TABLE stats_snapshot (
  id       boolean PRIMARY KEY DEFAULT true CHECK (id),
  taken_at timestamptz NOT NULL,
  -- [{queue, paused, counts: {state: n}, oldest_ready_age, oldest_running_age, workers, slots}]
  queues   jsonb NOT NULL,
  -- live (active, unexpired) workers
  workers  integer NOT NULL
);
