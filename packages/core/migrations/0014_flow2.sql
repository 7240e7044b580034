-- 0014_flow2: a schedule's fire that the engine refuses is recorded as such, with the reason.
--
-- A fire whose task cannot be created (its queue's admission control refuses it, or the
-- template is no longer a valid task) is recorded with outcome `refused` and the reason, and
-- the schedule moves on to its next fire time (docs/schedules.md, "Refused fires"), instead of
-- being tried again, and logged, on every pass of the firing duty.

ALTER TABLE schedule_fires
  DROP CONSTRAINT schedule_fires_outcome_check,
  ADD CONSTRAINT schedule_fires_outcome_check
    CHECK (outcome IN ('created', 'replaced', 'skipped_overlap', 'skipped_misfire', 'refused')),
  -- `refused`: why (the error's code, then its message).
  ADD COLUMN reason text;
