/**
 * THE state-machine rule for an attempt that ends without success: where the task goes next.
 * docs/state-machine.md describes it ("Fail: the order of the decision", "Rescue"); this is
 * its one definition in code. Every statement that ends an attempt other than by success
 * (taskFailMany, and the four rescue statements of rescue.ts) sets the task's state with it.
 *
 * The first that applies:
 * 1. a cancel was requested: `cancelled`;
 * 2. the handler said not to retry: `dead`, reason `unrecoverable`;
 * 3. poisoned (this attempt, too, ended with its worker gone, `poisonAfter` times in all):
 *    `dead`, reason `poison`, whatever attempts are left;
 * 4. the retry budget is spent (`attempt - attempt_base >= max_attempts`): `dead`, reason
 *    `exhausted`;
 * 5. a delay above zero: `retrying`, due after the delay;
 * 6. otherwise `queued`: with `keep_place`, at its own run time, so that it goes back to its
 *    place in line (priority, run time, id) rather than behind the whole backlog; else due now.
 * A task that stops there (cancelled or dead) keeps its run time and is finished now.
 *
 * A SET list for `UPDATE tasks t ... FROM cur, clock c`, where the CTE `cur` gives, per task:
 * `cancel_requested`, `retryable`, `poisoned`, `exhausted`, `keep_place` (booleans; a
 * statement to which one does not apply gives it as a constant) and `delay_ms` (float8).
 * `keep_place` is set where the attempt ended without the handler's say (a lost or
 * deregistered worker, a release): the task did nothing to lose its place.
 */
export const NEXT_STATE_AFTER_FAILURE = `state = CASE WHEN cur.cancel_requested THEN 'cancelled'
                      WHEN NOT cur.retryable OR cur.poisoned OR cur.exhausted THEN 'dead'
                      WHEN cur.delay_ms > 0 THEN 'retrying'
                      ELSE 'queued' END,
         dead_reason = CASE WHEN cur.cancel_requested THEN NULL
                            WHEN NOT cur.retryable THEN 'unrecoverable'
                            WHEN cur.poisoned THEN 'poison'
                            WHEN cur.exhausted THEN 'exhausted' END,
         run_at = CASE WHEN cur.cancel_requested OR NOT cur.retryable OR cur.poisoned OR cur.exhausted THEN t.run_at
                       WHEN cur.delay_ms > 0 THEN c.t + cur.delay_ms * interval '1 millisecond'
                       WHEN cur.keep_place THEN t.run_at
                       ELSE c.t END,
         finished_at = CASE WHEN cur.cancel_requested OR NOT cur.retryable OR cur.poisoned OR cur.exhausted THEN c.t END`;
