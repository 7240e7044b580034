/**
 * The rule state machine, as a pure function: from the state a rule is in, whether its
 * condition holds now, and the time, the state it moves to (or none). The evaluation
 * (evaluate.ts) applies it with a compare-and-set.
 *
 *   inactive ──holds, forMs > 0──▶ pending ──held forMs──▶ firing ──clears──▶ inactive
 *      │                             │                       ▲      (recorded: resolved)
 *      └──────holds, forMs = 0───────┼───────────────────────┘
 *                                    └──clears──▶ inactive (nothing recorded)
 *
 * Only the moves into firing and out of it are recorded and notified.
 */
import type { AlertState } from './types.ts';

export interface Move {
  to: AlertState;
  /** The new state_since. */
  since: Date | null;
  /** What the history records: a move into firing, or out of it. */
  record: 'firing' | 'resolved' | null;
}

export function nextMove(state: AlertState, since: Date | null, holds: boolean, forMs: number, now: Date): Move | null {
  if (state === 'inactive') {
    if (!holds) return null;
    return forMs <= 0 ? { to: 'firing', since: now, record: 'firing' } : { to: 'pending', since: now, record: null };
  }
  if (state === 'pending') {
    if (!holds) return { to: 'inactive', since: null, record: null };
    const start = since ?? now;
    return now.getTime() - start.getTime() >= forMs ? { to: 'firing', since: now, record: 'firing' } : null;
  }
  return holds ? null : { to: 'inactive', since: null, record: 'resolved' };
}
