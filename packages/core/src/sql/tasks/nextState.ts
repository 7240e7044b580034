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
 * 6. otherwise `queued`, due now.
 * A task that stops there (cancelled or dead) keeps its run time and is finished now.
 *
 * A SET list for `UPDATE tasks t ... FROM cur, clock c`, where the CTE `cur` gives, per task:
 * `cancel_requested`, `retryable`, `poisoned`, `exhausted` (booleans; a statement to which
 * one does not apply gives it as a constant) and `delay_ms` (float8).
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
                       ELSE c.t + greatest(cur.delay_ms, 0) * interval '1 millisecond' END,
         finished_at = CASE WHEN cur.cancel_requested OR NOT cur.retryable OR cur.poisoned OR cur.exhausted THEN c.t END`;
