/**
 * Admission control (docs/flow-control.md): a submission to a queue with `maxDepth` or
 * `maxAgeMs` is weighed under the queue's lock, in the transaction of its insert, so two
 * concurrent submissions cannot both take the last places. All or nothing: a refused task
 * refuses the whole submission, and the error names every task that did not fit.
 */
import type { Executor } from '../db/types.ts';
import { AdmissionRefusedError, type RefusedItem } from '../errors.ts';
import * as F from '../sql/flow.ts';
import type { EngineContext } from './context.ts';
import { toFlowState, type FlowState } from './flowSettings.ts';

/** How long a refused producer is told to wait before submitting again, ms. */
export const ADMISSION_RETRY_AFTER_MS = 1000;

/**
 * The settings of the batch's queues (`queues`: each task's, in batch order) that have some,
 * or null when none has (the usual case). Synchronous when every queue's settings are known,
 * so that a submission is sent in the same turn it is made (see EnqueueBatcher); a queue seen
 * for the first time is read first.
 */
export function flowsOf(ctx: EngineContext, queues: readonly string[], executor: Executor): Map<string, FlowState> | null | Promise<Map<string, FlowState> | null> {
  let out: Map<string, FlowState> | null = null;
  let unknown: string[] | undefined;
  let last: string | undefined;
  for (const queue of queues) {
    if (queue === last) continue;
    last = queue;
    const f = ctx.flow.peek(queue);
    if (f === undefined) (unknown ??= []).push(queue);
    else if (hasSettings(f)) (out ??= new Map()).set(queue, f);
  }
  if (unknown === undefined) return out;
  return (async () => {
    for (const queue of unknown) {
      const f = await ctx.flow.get(executor, queue);
      if (hasSettings(f)) (out ??= new Map()).set(queue, f);
    }
    return out;
  })();
}

function hasSettings(f: FlowState): boolean {
  return f.limited || f.admission || f.defaultMaxAttempts !== null || f.defaultBackoff !== null;
}

/**
 * Locks the admission-controlled queues of a batch (in name order, so that two batches never
 * wait on each other in a cycle) and refuses the batch if any task does not fit. `queues` is the
 * queue of each task, in batch order. Run in the transaction that then inserts the batch.
 */
export async function admit(ctx: EngineContext, tx: Executor, queues: readonly string[], flows: Map<string, FlowState>): Promise<void> {
  const names = [...flows.keys()].filter((q) => flows.get(q)!.admission).sort();
  const refused: RefusedItem[] = [];
  const details: string[] = [];
  for (const queue of names) {
    const { rows: lock } = await tx.query(F.queueLock, [queue]);
    const f = ctx.flow.set(queue, toFlowState(lock[0]));
    if (!f.admission) continue;
    const mine = queues.flatMap((q, index) => (q === queue ? [index] : []));
    const cap = f.maxDepth ?? 0;
    const { rows } = await tx.query(F.queueAdmission, [queue, cap, ctx.now(), f.maxAgeMs !== null]);
    const ageMs = rows[0]!.oldest_age_ms === null ? null : Number(rows[0]!.oldest_age_ms);
    if (f.maxAgeMs !== null && ageMs !== null && ageMs > f.maxAgeMs) {
      for (const index of mine) refused.push({ index, queue, reason: 'max_age' });
      details.push(`queue ${queue}: its oldest ready task has waited ${Math.round(ageMs)} ms, longer than its maxAgeMs of ${f.maxAgeMs}`);
      continue;
    }
    if (f.maxDepth === null) continue;
    const room = Math.max(0, f.maxDepth - (rows[0]!.depth as number));
    if (mine.length <= room) continue;
    for (const index of mine.slice(room)) refused.push({ index, queue, reason: 'max_depth' });
    details.push(`queue ${queue} holds ${f.maxDepth - room} waiting tasks of its maxDepth ${f.maxDepth}: room for ${room}, ${mine.length} submitted`);
  }
  if (refused.length === 0) return;
  refused.sort((a, b) => a.index - b.index);
  throw new AdmissionRefusedError(refused, ADMISSION_RETRY_AFTER_MS,
    `the submission was refused, nothing of it was written: ${details.join('; ')}; retry later or submit fewer`);
}
