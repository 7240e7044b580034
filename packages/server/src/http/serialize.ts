/** Engine objects → contract JSON (dates as RFC 3339 strings). The one place they meet. */
import type { Attempt, ClaimedTask, QueueInfo, Task, TaskExplanation, WorkerInfo, ApiKey } from '@taskflow/core';
import type * as C from '@taskflow/contracts';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function taskJson(t: Task): C.Task {
  return {
    ...t,
    runAt: t.runAt.toISOString(),
    leaseExpiresAt: iso(t.leaseExpiresAt),
    createdAt: t.createdAt.toISOString(),
    startedAt: iso(t.startedAt),
    finishedAt: iso(t.finishedAt),
    fireTime: iso(t.fireTime),
    expiresAt: iso(t.expiresAt),
  };
}

export function attemptJson(a: Attempt): C.Attempt {
  return {
    ...a,
    startedAt: a.startedAt.toISOString(),
    finishedAt: iso(a.finishedAt),
    durationMs: a.finishedAt ? a.finishedAt.getTime() - a.startedAt.getTime() : null,
  };
}

export function workerJson(w: WorkerInfo): C.Worker {
  return {
    ...w,
    registeredAt: w.registeredAt.toISOString(),
    lastSeenAt: w.lastSeenAt.toISOString(),
    expiresAt: w.expiresAt.toISOString(),
    stoppedAt: iso(w.stoppedAt),
  };
}

export function queueJson(q: QueueInfo): C.Queue {
  return {
    ...q,
    counts: q.counts as Record<string, number>,
    pausedAt: iso(q.pausedAt),
    createdAt: q.createdAt.toISOString(),
    oldestReadyAt: iso(q.oldestReadyAt),
  };
}

export function explanationJson(x: TaskExplanation): C.TaskExplanation {
  return { ...x, blockers: x.blockers.map((b) => ({ ...b, until: iso(b.until) })) };
}

export function apiKeyJson(k: ApiKey): C.ApiKey {
  return { ...k, createdAt: k.createdAt.toISOString(), lastUsedAt: iso(k.lastUsedAt), revokedAt: iso(k.revokedAt) };
}

/**
 * JSON.stringify of a string, keeping its last answer: the tasks of a claim share their queue
 * and mostly their type, and this runs for every task of every claim.
 */
function lastJsonString(): (value: string) => string {
  let last: string | undefined;
  let json = '';
  return (value) => {
    if (value !== last) {
      json = JSON.stringify(value);
      last = value;
    }
    return json;
  };
}
const queueNameJson = lastJsonString();
const typeJson = lastJsonString();

/**
 * A claimed task as JSON text, with the payload spliced in as the database returned it: the
 * claim path never parses and re-serialises payloads. The trace context only when the task has
 * one (the traceparent was checked against its pattern when it was submitted).
 */
export function claimedTaskJson(t: ClaimedTask): string {
  return (
    `{"id":"${t.id}","queue":${queueNameJson(t.queue)},"type":${typeJson(t.type)},` +
    `"attempt":${t.attempt},"attemptsLeft":${t.attemptsLeft},"priority":${t.priority},` +
    `"payload":${t.payloadJson ?? 'null'},"payloadBase64":${t.payloadBase64 === null ? 'null' : `"${t.payloadBase64}"`},` +
    `"contentType":${t.contentType === null ? 'null' : JSON.stringify(t.contentType)},"timeoutMs":${t.timeoutMs},` +
    `"leaseExpiresAt":"${t.leaseExpiresAt}","tags":${t.tags.length === 0 ? '[]' : JSON.stringify(t.tags)},` +
    `"createdAt":"${t.createdAt}"${t.parentsJson === undefined ? '' : `,"parents":${t.parentsJson}`}` +
    (t.traceparent === null ? '}' : `,"traceparent":"${t.traceparent}"${t.tracestate === null ? '' : `,"tracestate":${JSON.stringify(t.tracestate)}`}}`)
  );
}
