/**
 * The task's shape is defined once, in core's TASK_FIELDS; the HTTP contract (contracts
 * cannot import core) and the server's serialisers are written apart from it. This test fails
 * when they drift: a field added, dropped, renamed, made nullable or turned into a time on one
 * side only. It needs no database: rows are made up, in the form the drivers return them.
 */
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import * as C from '@taskflow/contracts';
import { TASK_FIELDS, type TaskFieldKind } from '@taskflow/core';
import { toClaimedTask, toTask } from '@taskflow/core/internal';
import { claimedTaskJson, taskJson } from '../src/http/serialize.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));

function valid(schema: object, value: unknown): boolean {
  const ok = ajv.validate(schema, value);
  if (!ok) expect.soft(ajv.errors, `${JSON.stringify(value)} against ${JSON.stringify(schema)}`).toEqual(null);
  return ok;
}

const fields = Object.entries(TASK_FIELDS);
const sorted = (names: Iterable<string>) => [...names].sort();

/** A value of each kind as a driver returns its column. */
const SAMPLE: Record<TaskFieldKind, unknown> = {
  id: '42',
  text: 'text',
  integer: 3,
  boolean: true,
  json: { any: ['json'] },
  bytes: Buffer.from('bytes'),
  textList: ['a', 'b'],
  time: new Date('2030-01-01T00:00:00.123Z'),
};

/** Columns whose values the contract constrains beyond their kind. */
const SAMPLE_COLUMN: Record<string, unknown> = {
  state: 'dead',
  dead_reason: 'poison',
  cancel_reason: 'expired',
  backoff: { type: 'exponential', delayMs: 1000, factor: 2 },
  last_error: { message: 'boom', stack: 'Error: boom', attempt: 2 },
};

/** A `tasks` row as a task read returns it, every nullable column set (or, `nulls`, null). */
function taskRow(nulls = false): Record<string, unknown> {
  return Object.fromEntries(
    fields.map(([, f]) => [f.column, nulls && f.nullable ? null : (SAMPLE_COLUMN[f.column] ?? SAMPLE[f.kind])]),
  );
}

/** A row as the claim statement returns it (sql/tasks/claim.ts), every column set. */
const CLAIM_ROW = {
  id: '42', queue: 'q', type: 't', attempt: 2, attempt_base: 0, max_attempts: 5, priority: 1,
  payload_json: '{"any":["json"]}', payload_bytes: Buffer.from('bytes'), content_type: 'text/plain', timeout_ms: 30_000,
  lease_expires_at: 1_893_456_000.123, tags: ['a', 'b'], created_at: 1_893_456_000.5,
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'rojo=00f067aa0ba902b7',
};

/** The claim answer's fields that are absent, rather than null, when the task has none. */
const CLAIM_OPTIONAL = ['traceparent', 'tracestate', 'parents'];

describe('the task shape: core, contract and serialisers agree', () => {
  it('the contract names exactly core\'s fields, every one required', () => {
    expect(sorted(Object.keys(C.Task.properties))).toEqual(sorted(Object.keys(TASK_FIELDS)));
    expect(sorted(C.Task.required ?? [])).toEqual(sorted(Object.keys(TASK_FIELDS)));
  });

  it('a field is nullable in the contract exactly when it is in core', () => {
    const properties = C.Task.properties as Record<string, object>;
    for (const [name, f] of fields) {
      expect(ajv.validate(properties[name]!, null), `${name} accepts null`).toBe(f.nullable);
    }
  });

  it('a field is an RFC 3339 time in the contract exactly when core reads a timestamptz', () => {
    const properties = C.Task.properties as Record<string, object>;
    for (const [name, f] of fields) {
      const accepts = ajv.validate(properties[name]!, '2030-01-01T00:00:00.000Z') && !ajv.validate(properties[name]!, 'not a time');
      expect(accepts, `${name} is a time`).toBe(f.kind === 'time');
    }
  });

  it('taskJson of a fully populated task has exactly the contract\'s properties, and validates', () => {
    const json = taskJson(toTask(taskRow()));
    expect(sorted(Object.keys(json))).toEqual(sorted(Object.keys(C.Task.properties)));
    for (const [name, value] of Object.entries(json)) expect(value, name).not.toBeNull();
    expect(valid(C.Task, json)).toBe(true);
  });

  it('taskJson of a task whose nullable fields are null validates', () => {
    const json = taskJson(toTask(taskRow(true)));
    expect(sorted(Object.keys(json))).toEqual(sorted(Object.keys(C.Task.properties)));
    expect(valid(C.Task, json)).toBe(true);
  });

  it('core\'s claimed task and the contract\'s ClaimedTask have the same fields', () => {
    // The engine carries the payload as the JSON text the database returned (`payloadJson`);
    // the claim answer splices it in as `payload`.
    // `parents` (`parentsJson`) only for a task with parents, set after the row's mapping
    // (engine/claim.ts, claimedTasks): the one optional field.
    const core = Object.keys(withParents(toClaimedTask(CLAIM_ROW))).map((k) => (k === 'payloadJson' ? 'payload' : k === 'parentsJson' ? 'parents' : k));
    expect(sorted(core)).toEqual(sorted(Object.keys(C.ClaimedTask.properties)));
    expect(sorted(C.ClaimedTask.required ?? [])).toEqual(sorted(Object.keys(C.ClaimedTask.properties).filter((k) => !CLAIM_OPTIONAL.includes(k))));
  });

  it('claimedTaskJson of a fully populated claim has exactly the contract\'s properties, and validates', () => {
    const json = JSON.parse(claimedTaskJson(withParents(toClaimedTask(CLAIM_ROW))));
    expect(sorted(Object.keys(json))).toEqual(sorted(Object.keys(C.ClaimedTask.properties)));
    for (const [name, value] of Object.entries(json)) expect(value, name).not.toBeNull();
    expect(json.payload).toEqual({ any: ['json'] });
    expect(json.parents).toEqual({ a: { r: 1 }, '17': null });
    expect(valid(C.ClaimedTask, json)).toBe(true);
  });

  it('claimedTaskJson of a claim without payload, content type or trace context validates', () => {
    const row = { ...CLAIM_ROW, payload_json: null, payload_bytes: null, content_type: null, tags: [], traceparent: null, tracestate: null };
    const json = JSON.parse(claimedTaskJson(toClaimedTask(row)));
    expect(sorted(Object.keys(json))).toEqual(sorted(Object.keys(C.ClaimedTask.properties).filter((k) => !CLAIM_OPTIONAL.includes(k))));
    expect(valid(C.ClaimedTask, json)).toBe(true);
  });
});

/** A claimed task with its parents' results, as engine/claim.ts attaches them. */
function withParents<T extends object>(t: T): T & { parentsJson: string } {
  return { ...t, parentsJson: '{"a": {"r": 1}, "17": null}' };
}
