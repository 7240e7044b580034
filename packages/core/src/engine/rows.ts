/**
 * Row → domain mapping, where column names meet the public types: a task's by TASK_FIELDS
 * (taskFields.ts), the others here.
 */
import { TASK_FIELD_LIST, type TaskField } from './taskFields.ts';
import { settingsOf, toFlowState } from './flowSettings.ts';
import type { Attempt, ClaimedTask, QueueInfo, Task, WorkerInfo } from './types.ts';

/** A row as a driver returns it. */
export type Row = Record<string, any>;

/**
 * A row of a settle or rescue statement about a task it settled, rather than about a dependent
 * it changed (kind 'dependent', see sql/tasks/dependents.ts).
 */
export function isSettled(r: Row): boolean {
  return r.kind !== 'dependent';
}

/** bytea (a Buffer from node-postgres, a Uint8Array from PGlite) as base64, or null. */
function base64(bytes: Uint8Array | null | undefined): string | null {
  return bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') : null;
}

/** How a column of each kind is read into its field (see TaskFieldKind). */
function readerOf(f: TaskField): (value: any) => unknown {
  switch (f.kind) {
    case 'id':
      return f.nullable ? (v) => (v === null || v === undefined ? null : String(v)) : String;
    case 'bytes':
      return base64;
    case 'textList':
      return (v) => v ?? [];
    default:
      return f.nullable ? (v) => v ?? null : (v) => v;
  }
}

const TASK_READERS = TASK_FIELD_LIST.map((f) => ({ name: f.name, column: f.column, read: readerOf(f) }));

/** A task read with TASK_COLUMNS, field by field as TASK_FIELDS says. */
export function toTask(r: Row): Task {
  const task: Record<string, unknown> = {};
  for (const f of TASK_READERS) task[f.name] = f.read(r[f.column]);
  return task as unknown as Task;
}

/**
 * RFC 3339 (to the millisecond, truncated, as PostgreSQL's to_char with MS) of a time given as
 * seconds since the epoch by date_part('epoch', …): the float8 holds the microseconds to within
 * a fraction of one, so rounding to whole microseconds first makes the millisecond exact.
 */
export function isoOfEpoch(seconds: number): string {
  return new Date(Math.floor(Math.round(seconds * 1e6) / 1000)).toISOString();
}

/**
 * isoOfEpoch keeping its last answer: formatting a Date is not free, and values come in runs
 * (the tasks of one claim share the end of their lease, the tasks of one insert their
 * creation time).
 */
function lastIsoOfEpoch(): (seconds: number) => string {
  let last = NaN;
  let iso = '';
  return (seconds) => {
    if (seconds !== last) {
      iso = isoOfEpoch(seconds);
      last = seconds;
    }
    return iso;
  };
}
const isoOfLease = lastIsoOfEpoch();
const isoOfCreation = lastIsoOfEpoch();

export function toClaimedTask(r: Row): ClaimedTask {
  const task: ClaimedTask = {
    id: String(r.id),
    queue: r.queue,
    type: r.type,
    attempt: r.attempt,
    attemptsLeft: r.max_attempts - (r.attempt - r.attempt_base),
    priority: r.priority,
    payloadJson: r.payload_json ?? null,
    payloadBase64: base64(r.payload_bytes),
    contentType: r.content_type ?? null,
    timeoutMs: r.timeout_ms,
    leaseExpiresAt: isoOfLease(r.lease_expires_at),
    tags: r.tags ?? [],
    createdAt: isoOfCreation(r.created_at),
    traceparent: r.traceparent ?? null,
    tracestate: r.tracestate ?? null,
  };
  // Only a task with parents has them (sql/tasks/dependents.ts, parentsJson).
  if (r.parents_json != null) task.parentsJson = r.parents_json;
  return task;
}

export function toAttempt(r: Row): Attempt {
  return {
    attempt: r.attempt,
    workerId: r.worker_id ?? null,
    startedAt: r.started_at,
    finishedAt: r.finished_at ?? null,
    outcome: r.outcome,
    error: r.error ?? null,
    logs: r.logs ?? null,
    traceId: r.trace_id ?? null,
  };
}

export function toWorker(r: Row): WorkerInfo {
  return {
    id: r.id,
    name: r.name,
    queues: r.queues,
    concurrency: r.concurrency,
    metadata: r.metadata ?? {},
    state: r.state,
    registeredAt: r.registered_at,
    lastSeenAt: r.last_seen_at,
    expiresAt: r.expires_at,
    stoppedAt: r.stopped_at ?? null,
    running: r.running ?? 0,
  };
}

export function toQueue(r: Row): QueueInfo {
  const oldest: Date | null = r.oldest_ready_at ?? null;
  return {
    name: r.name,
    paused: r.paused,
    pausedAt: r.paused_at ?? null,
    createdAt: r.created_at,
    counts: r.counts ?? {},
    oldestReadyAt: oldest,
    oldestReadyAgeMs: oldest ? Math.max(0, new Date(r.now).getTime() - oldest.getTime()) : 0,
    settings: settingsOf(toFlowState(r)),
  };
}
