/**
 * Results as workers send them (`results` in full, `succeeded` compact) into the engine's
 * reports, each checked before any is settled (a 400 names the item); and the engine's
 * outcomes back into the answer's shape.
 */
import type { SettleOutcome, TaskResultReport } from '@taskflow/core';
import type { ResultOutcome, SucceededOutcomes, TaskResult } from '@taskflow/contracts';
import { badRequest } from './problems.ts';
import { assertStorableText, storableJson } from './storable.ts';

/** One result as a report; `at` is where it sits in the request, for the 400 naming it. */
export function toReport(r: TaskResult, at: string, maxPayloadBytes: number): TaskResultReport {
  r.logs?.forEach((line, i) => {
    assertStorableText(line.level, `${at}/logs/${i}/level`);
    assertStorableText(line.message, `${at}/logs/${i}/message`);
  });
  if (r.status === 'released') {
    for (const field of ['result', 'error', 'retryable', 'retryAfterMs', 'logs', 'traceId'] as const) {
      if (r[field] !== undefined) throw badRequest(`${at}/${field}`, 'is not allowed when status is released');
    }
    return { id: r.id, attempt: r.attempt, status: 'released' };
  }
  if (r.status === 'failed') {
    if (!r.error) throw badRequest(`${at}/error`, 'is required when status is failed');
    if (r.result !== undefined) throw badRequest(`${at}/result`, 'is only allowed when status is succeeded');
    assertStorableText(r.error.message, `${at}/error/message`);
    assertStorableText(r.error.stack, `${at}/error/stack`);
    return {
      id: r.id, attempt: r.attempt, status: 'failed', error: r.error, retryable: r.retryable, retryAfterMs: r.retryAfterMs, logs: r.logs,
      traceId: r.traceId,
    };
  }
  for (const field of ['error', 'retryable', 'retryAfterMs'] as const) {
    if (r[field] !== undefined) throw badRequest(`${at}/${field}`, 'is only allowed when status is failed');
  }
  const resultJson = r.result === undefined ? undefined : storableJson(r.result, `${at}/result`, maxPayloadBytes);
  return { id: r.id, attempt: r.attempt, status: 'succeeded', resultJson, logs: r.logs, traceId: r.traceId };
}

/** Validates the results of a request (400 naming the item) before any of them is settled. */
export function reportsOf(results: TaskResult[], at: (i: number) => string, maxPayloadBytes: number): TaskResultReport[] {
  return results.map((r, i) => toReport(r, at(i), maxPayloadBytes));
}

/**
 * The compact successes of a request (`succeeded`: "41:1,42:1", or with trace ids
 * "41:1:0af7…319c", its form checked by the
 * schema) as reports, after those of `results`. Splitting one string makes no object per
 * result to parse and no interned id per result, which the JSON form costs.
 */
export function compactReports(list: string | undefined): TaskResultReport[] {
  if (!list) return [];
  const items = list.split(',');
  if (items.length > 1000) throw badRequest('/body/succeeded', 'holds more than 1000 results');
  return items.map((item) => {
    const colon = item.indexOf(':');
    // `id:attempt`, or `id:attempt:traceId` (a trace id is 32 characters, its form checked by the schema).
    const traced = item.length > 33 && item.charCodeAt(item.length - 33) === 58;
    const attempt = Number(item.slice(colon + 1, traced ? item.length - 33 : item.length));
    if (attempt > 2147483647) throw badRequest('/body/succeeded', `has an attempt over 2147483647 (${item})`);
    return traced
      ? { id: item.slice(0, colon), attempt, status: 'succeeded', traceId: item.slice(item.length - 32) }
      : { id: item.slice(0, colon), attempt, status: 'succeeded' };
  });
}

/** The outcomes of the compact successes: a count, and the exceptions by id. */
export function compactOutcomes(reports: readonly TaskResultReport[], outcomes: readonly SettleOutcome[]): SucceededOutcomes {
  const out: SucceededOutcomes = { accepted: 0, duplicate: [], stale: [] };
  reports.forEach((r, i) => {
    const o = outcomes[i];
    if (o === 'accepted') out.accepted++;
    else out[o === 'duplicate' ? 'duplicate' : 'stale'].push(r.id);
  });
  return out;
}

/**
 * The outcomes of a request's results, settled as `[...full, ...compact]`: one per item of
 * `results` (`full`), then those of `succeeded` (`compact`) as a count and the exceptions.
 */
export function outcomesOf(
  full: readonly TaskResultReport[], compact: readonly TaskResultReport[], outcomes: readonly SettleOutcome[],
): { results: ResultOutcome[]; succeeded: SucceededOutcomes } {
  return {
    results: full.map((r, i) => ({ id: r.id, status: outcomes[i]! })),
    succeeded: compactOutcomes(compact, outcomes.slice(full.length)),
  };
}
