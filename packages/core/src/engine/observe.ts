/**
 * Turns the rows the engine's statements return into telemetry observations (telemetry.ts).
 * Called only when an observer is set: without one, none of this runs.
 */
import type { Row } from './rows.ts';
import { errorTypeOf, type AttemptObservation, type AttemptOutcome, type ClaimObservation, type EngineTelemetry } from './telemetry.ts';
import type { TaskResultReport } from './types.ts';

/**
 * Claimed rows: the claim time is the lease's end less the timeout (the statement sets one from
 * the other), the ready time the run time (`ready_at`, null when it is the creation time:
 * `created_at`), all epoch seconds of the database.
 */
export function observeClaimed(t: EngineTelemetry, rows: readonly Row[]): void {
  if (rows.length === 0) return;
  const out: ClaimObservation[] = [];
  for (const r of rows) {
    if (r.kind === 'settled') continue;
    const claimedAt = r.lease_expires_at - r.timeout_ms / 1000;
    out.push({ queue: r.queue, type: r.type, waitSeconds: Math.max(0, claimedAt - (r.ready_at ?? r.created_at)) });
  }
  if (out.length > 0) t.claimed(out);
}

/** The 'settled' row of taskSucceedAndClaimObserved: queues, types and seconds listed in the order of the ids. */
export function observeSucceededLists(t: EngineTelemetry, rows: readonly Row[]): void {
  const r = rows.find((row) => row.kind === 'settled');
  if (!r?.took) return;
  const queues = (r.queue as string).split('\u001f');
  const types = (r.type as string).split('\u001f');
  const out = (r.took as string).split(',').map((took, i): AttemptObservation => (
    { queue: queues[i]!, type: types[i]!, outcome: 'succeeded', seconds: Number(took), next: 'succeeded' }
  ));
  t.settled(out);
}

/**
 * Rows of attempts ended by one statement (`id`, `queue`, `type`, `state` after, `took`; rows of
 * kind 'dependent' are skipped): taskSucceedMany, taskFailMany
 * (with the reports, for the error class), the rescue statements.
 */
export function observeEnded(
  t: EngineTelemetry, rows: readonly Row[], outcome: AttemptOutcome, reports?: readonly TaskResultReport[],
): void {
  if (rows.length === 0) return;
  const errors = reports ? new Map(reports.map((r) => [r.id, r])) : undefined;
  // Rows of kind 'dependent' are children a statement changed, not attempts it ended.
  const out = rows.filter((r) => r.kind !== 'dependent').map((r): AttemptObservation => {
    // A failure reported for a task whose cancel was requested ends the attempt `cancelled`.
    const o: AttemptOutcome = outcome === 'failed' && r.state === 'cancelled' ? 'cancelled' : outcome;
    const report = errors?.get(String(r.id));
    const errorType = o === 'failed' && report?.status === 'failed' ? errorTypeOf(report.error) : undefined;
    return { queue: r.queue, type: r.type, outcome: o, seconds: Number(r.took) || 0, next: r.state, errorType };
  });
  t.settled(out);
}
