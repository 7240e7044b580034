-- 0005_trace_context: W3C trace context carried by a task, and the trace of each attempt.
--
-- A producer may submit a task with its trace context (`traceparent`, `tracestate`, W3C Trace
-- Context); the task keeps it verbatim and every claim hands it to the worker, whose span for
-- the attempt links to it (docs/protocol.md, "Trace context"). The worker reports the trace id
-- of that span with the result: a success stores it in the task row (which holds the
-- successful attempt), any other attempt in `attempts`. All nullable and without defaults:
-- a table rewrite is not needed, and a task or attempt without tracing stores nothing.

ALTER TABLE tasks ADD COLUMN traceparent text;
ALTER TABLE tasks ADD COLUMN tracestate text;
ALTER TABLE tasks ADD COLUMN trace_id text;
ALTER TABLE attempts ADD COLUMN trace_id text;

-- The trace of the attempt the task row holds counts only once that attempt succeeded: the
-- success writes it; a running attempt has reported nothing yet.
CREATE OR REPLACE VIEW task_attempts AS
  SELECT task_id, attempt, worker_id, started_at, finished_at, outcome, error, logs, trace_id
    FROM attempts
  UNION ALL
  SELECT id, attempt, worker_id, started_at, finished_at,
         CASE state WHEN 'running' THEN 'running' ELSE 'succeeded' END, NULL, logs,
         CASE state WHEN 'succeeded' THEN trace_id END
    FROM tasks
   WHERE started_at IS NOT NULL AND state IN ('running', 'succeeded');
