-- 0003_vacuum: vacuum the tasks table sooner than PostgreSQL's default, and always its indexes.
--
-- Every claim and every settlement leaves the task's previous row version behind, and with it
-- that version's entry in the ready index (tasks_ready). A claim starts at the beginning of
-- its queue's range and steps over those entries until a vacuum removes them: in bench/
-- (`npm run scaling -- --hot 100000`, autovacuum off), the 200,000 tasks claimed from a queue
-- since the last vacuum cost its next drain 31-43% more of PostgreSQL's CPU and 13-20% of its
-- rate; with a VACUUM before it, nothing.
--
-- * Autovacuum's default trigger is a fifth of the table changed. Finished tasks are kept, so
--   a table of 10,000,000 rows would wait for about a million tasks. Here: 2% plus 10,000 dead
--   versions (about 100,000 tasks on that table; each task leaves two).
-- * Since PostgreSQL 14 a vacuum skips the indexes when under 2% of the table's pages hold dead
--   versions (vacuum_index_cleanup 'auto'), the usual case on a large table of kept history:
--   measured on 4,000,000 rows after 20,000 tasks, the vacuum left tasks_ready's dead entries
--   (an empty queue's claim scan read 107 buffers after it, 1 with them gone). With
--   vacuum_index_cleanup on, it removed them, in 133 ms against 88 ms for that vacuum.
--
-- Operators may change these for their table (docs/operations.md, "Vacuum and the ready index").
ALTER TABLE tasks SET (
  autovacuum_vacuum_scale_factor = 0.02,
  autovacuum_vacuum_threshold = 10000,
  vacuum_index_cleanup = on
);
