-- 0002_lean_indexes: fewer index entries written per state change.
--
-- Every claim and every settlement changes `state`, so neither update is HOT: each new row
-- version gets an entry in every index whose predicate it matches. tasks_state_id indexed
-- every row in every state, and cost one entry per transition on the hot path (measured:
-- about 10% of the database time of a claim-and-settle cycle). Listing by state now uses:
-- the primary key, newest first, for the common states (succeeded rows dominate and are
-- recent), and small partial indexes for the states an operator looks for among many
-- finished tasks.
DROP INDEX tasks_state_id;
CREATE INDEX tasks_dead ON tasks (id) WHERE state = 'dead';
CREATE INDEX tasks_unfinished ON tasks (state, id) WHERE state IN ('blocked', 'cancelled', 'retrying', 'scheduled');
