/**
 * Bad input over HTTP: malformed JSON, wrong types, unknown fields, oversized payloads,
 * unknown ids, missing or wrong-scope keys. Each case gets the right 4xx problem response
 * (RFC 9457, `application/problem+json`, a stable code, a detail naming the field) and
 * nothing is written: row counts and a digest of every task and attempt are compared
 * before and after each case and the whole table.
 *
 * The table below is the list of cases tried. Requests go out through raw `fetch`, so the
 * bytes sent are exactly the case's. The service runs with small limits
 * (maxPayloadBytes 1024, maxBodyBytes 128 KiB) so that oversized input is cheap to send.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DriverName } from '@taskflow/core';
import { startTestService, type TestService } from './support/service.ts';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';

/** Which credentials a case sends. */
type Auth =
  | 'admin' | 'producer' | 'worker' // keys of these scopes
  | 'revoked' // a producer key, used once, then revoked
  | 'unknown' // a well-formed key the server never issued
  | 'none' // no Authorization header
  | 'token' // `Authorization: Token x`
  | 'bearer-empty'; // `Authorization: Bearer`

/** Things the cases point at, created before the table runs. */
interface Fixtures {
  /** An active worker (queues bad.running, bad.done) holding `running`. */
  workerId: string;
  /** A deregistered worker. */
  stoppedWorkerId: string;
  running: { id: string; attempt: number };
  /** A succeeded task. */
  doneId: string;
  /** A queued task (queue bad.queued). */
  queuedId: string;
}

type FromFixtures<T> = T | ((f: Fixtures) => T);

interface Case {
  name: string;
  method: Method;
  path: FromFixtures<string>;
  auth: Auth;
  /** Sent as JSON (JSON.stringify). */
  body?: Record<string, unknown> | unknown[] | ((f: Fixtures) => Record<string, unknown>);
  /** Sent as is, instead of `body`. */
  raw?: FromFixtures<string>;
  /** @defaultValue application/json when there is a body */
  contentType?: string;
  status: number;
  code: string;
  /** The field the problem names: in `detail` and in `errors[].field` (for 400/413 with errors). */
  field?: string;
  /** More text the detail must contain. */
  detailIncludes?: string;
}

const LIMITS = { maxPayloadBytes: 1024, maxBodyBytes: 128 * 1024 };
/** The body limit of POST /api/v1/tasks: maxPayloadBytes + 64 KiB of envelope (app.ts). */
const CREATE_TASK_BODY_LIMIT = LIMITS.maxPayloadBytes + 64 * 1024;
const UNKNOWN_UUID = '00000000-0000-4000-8000-000000000000';
const BIG = 'x'.repeat(2048);
const BIG_BASE64 = Buffer.alloc(2049, 7).toString('base64');
const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** JSON text of arrays nested 5000 deep: built as text, since JSON.stringify cannot. */
const DEEP = '['.repeat(5000) + ']'.repeat(5000);
const many = (n: number) => Array.from({ length: n }, (_, i) => ({ type: 'bad.many', payload: { i } }));

// ---------------------------------------------------------------------------------------
// The table: every case tried.
// ---------------------------------------------------------------------------------------
const T = '/api/v1/tasks';
const cases: Case[] = [
  // ---- malformed bodies
  { name: 'malformed JSON', method: 'POST', path: T, auth: 'producer', raw: '{"type": "a",', status: 400, code: 'invalid_json' },
  { name: 'empty body with content-type json', method: 'POST', path: T, auth: 'producer', raw: '', status: 400, code: 'invalid_json' },
  { name: 'wrong content-type (text/plain)', method: 'POST', path: T, auth: 'producer', raw: '{"type":"a"}', contentType: 'text/plain', status: 415, code: 'unsupported_media_type' },
  { name: 'body is an array, not an object', method: 'POST', path: T, auth: 'producer', raw: '[{"type":"a"}]', status: 400, code: 'validation_failed', field: '/body' },
  { name: 'body is a JSON string', method: 'POST', path: T, auth: 'producer', raw: '"a"', status: 400, code: 'validation_failed', field: '/body' },
  { name: 'type missing', method: 'POST', path: T, auth: 'producer', body: { payload: 1 }, status: 400, code: 'validation_failed', field: '/body/type' },

  // ---- wrong types and out-of-range values
  { name: 'priority "high"', method: 'POST', path: T, auth: 'producer', body: { type: 'a', priority: 'high' }, status: 400, code: 'validation_failed', field: '/body/priority' },
  { name: 'priority 1.5', method: 'POST', path: T, auth: 'producer', body: { type: 'a', priority: 1.5 }, status: 400, code: 'validation_failed', field: '/body/priority' },
  { name: 'priority beyond int32', method: 'POST', path: T, auth: 'producer', body: { type: 'a', priority: 2 ** 31 }, status: 400, code: 'validation_failed', field: '/body/priority' },
  { name: 'maxAttempts 0', method: 'POST', path: T, auth: 'producer', body: { type: 'a', maxAttempts: 0 }, status: 400, code: 'validation_failed', field: '/body/maxAttempts' },
  { name: 'maxAttempts "3" (no coercion of bodies)', method: 'POST', path: T, auth: 'producer', body: { type: 'a', maxAttempts: '3' }, status: 400, code: 'validation_failed', field: '/body/maxAttempts' },
  { name: 'tags not an array', method: 'POST', path: T, auth: 'producer', body: { type: 'a', tags: 'urgent' }, status: 400, code: 'validation_failed', field: '/body/tags' },
  { name: 'tag empty', method: 'POST', path: T, auth: 'producer', body: { type: 'a', tags: ['ok', ''] }, status: 400, code: 'validation_failed', field: '/body/tags/1' },
  { name: 'runAt not a date', method: 'POST', path: T, auth: 'producer', body: { type: 'a', runAt: 'tomorrow' }, status: 400, code: 'validation_failed', field: '/body/runAt' },
  { name: 'runAt 30 February', method: 'POST', path: T, auth: 'producer', body: { type: 'a', runAt: '2030-02-30T00:00:00Z' }, status: 400, code: 'validation_failed', field: '/body/runAt' },
  { name: 'delayMs negative', method: 'POST', path: T, auth: 'producer', body: { type: 'a', delayMs: -1 }, status: 400, code: 'validation_failed', field: '/body/delayMs' },
  { name: 'timeoutMs below 100', method: 'POST', path: T, auth: 'producer', body: { type: 'a', timeoutMs: 50 }, status: 400, code: 'validation_failed', field: '/body/timeoutMs' },
  { name: 'queue with spaces', method: 'POST', path: T, auth: 'producer', body: { type: 'a', queue: 'my queue' }, status: 400, code: 'validation_failed', field: '/body/queue' },
  { name: 'type empty', method: 'POST', path: T, auth: 'producer', body: { type: '' }, status: 400, code: 'validation_failed', field: '/body/type' },
  { name: 'type a number', method: 'POST', path: T, auth: 'producer', body: { type: 42 }, status: 400, code: 'validation_failed', field: '/body/type' },
  { name: 'backoff.type unknown', method: 'POST', path: T, auth: 'producer', body: { type: 'a', backoff: { type: 'random', delayMs: 10 } }, status: 400, code: 'validation_failed', field: '/body/backoff/type' },
  { name: 'backoff.delayMs missing', method: 'POST', path: T, auth: 'producer', body: { type: 'a', backoff: { type: 'fixed' } }, status: 400, code: 'validation_failed', field: '/body/backoff/delayMs' },
  { name: 'backoff.jitter 2', method: 'POST', path: T, auth: 'producer', body: { type: 'a', backoff: { type: 'fixed', delayMs: 10, jitter: 2 } }, status: 400, code: 'validation_failed', field: '/body/backoff/jitter' },
  { name: 'payloadBase64 not base64', method: 'POST', path: T, auth: 'producer', body: { type: 'a', payloadBase64: 'not base64!' }, status: 400, code: 'validation_failed', field: '/body/payloadBase64' },
  { name: 'payloadBase64 unpadded', method: 'POST', path: T, auth: 'producer', body: { type: 'a', payloadBase64: 'abc' }, status: 400, code: 'validation_failed', field: '/body/payloadBase64' },
  { name: 'idempotencyKey empty', method: 'POST', path: T, auth: 'producer', body: { type: 'a', idempotencyKey: '' }, status: 400, code: 'validation_failed', field: '/body/idempotencyKey' },

  // ---- unknown fields
  { name: 'unknown top-level field', method: 'POST', path: T, auth: 'producer', body: { type: 'a', colour: 'red' }, status: 400, code: 'validation_failed', field: '/body/colour' },
  { name: 'unknown nested field (backoff.extra)', method: 'POST', path: T, auth: 'producer', body: { type: 'a', backoff: { type: 'fixed', delayMs: 10, extra: 1 } }, status: 400, code: 'validation_failed', field: '/body/backoff/extra' },

  // ---- fields that exclude each other
  { name: 'payload and payloadBase64 together', method: 'POST', path: T, auth: 'producer', body: { type: 'a', payload: {}, payloadBase64: 'AAAA' }, status: 400, code: 'validation_failed', field: '/body/payloadBase64' },
  { name: 'runAt and delayMs together', method: 'POST', path: T, auth: 'producer', body: { type: 'a', runAt: '2030-01-01T00:00:00Z', delayMs: 10 }, status: 400, code: 'validation_failed', field: '/body/delayMs' },
  { name: 'contentType without payloadBase64', method: 'POST', path: T, auth: 'producer', body: { type: 'a', payload: 1, contentType: 'text/plain' }, status: 400, code: 'validation_failed', field: '/body/contentType' },

  // ---- unique keys and expiry
  { name: 'uniqueForMs without uniqueKey', method: 'POST', path: T, auth: 'producer', body: { type: 'a', uniqueForMs: 1000 }, status: 400, code: 'validation_failed', field: '/body/uniqueForMs' },
  { name: 'uniqueForMs 0', method: 'POST', path: T, auth: 'producer', body: { type: 'a', uniqueKey: 'k', uniqueForMs: 0 }, status: 400, code: 'validation_failed', field: '/body/uniqueForMs' },
  { name: 'uniqueKey empty', method: 'POST', path: T, auth: 'producer', body: { type: 'a', uniqueKey: '' }, status: 400, code: 'validation_failed', field: '/body/uniqueKey' },
  { name: 'uniqueKey with a NUL', method: 'POST', path: T, auth: 'producer', body: { type: 'a', uniqueKey: 'k\u0000' }, status: 400, code: 'validation_failed', field: '/body/uniqueKey' },
  { name: 'ttlMs 0', method: 'POST', path: T, auth: 'producer', body: { type: 'a', ttlMs: 0 }, status: 400, code: 'validation_failed', field: '/body/ttlMs' },
  { name: 'ttlMs negative', method: 'POST', path: T, auth: 'producer', body: { type: 'a', ttlMs: -5 }, status: 400, code: 'validation_failed', field: '/body/ttlMs' },
  { name: 'ttlMs not above delayMs', method: 'POST', path: T, auth: 'producer', body: { type: 'a', delayMs: 5000, ttlMs: 5000 }, status: 400, code: 'validation_failed', field: '/body/ttlMs' },
  { name: 'expiresAt and ttlMs together', method: 'POST', path: T, auth: 'producer', body: { type: 'a', expiresAt: '2999-01-01T00:00:00Z', ttlMs: 10 }, status: 400, code: 'validation_failed', field: '/body/ttlMs' },
  { name: 'expiresAt in the past', method: 'POST', path: T, auth: 'producer', body: { type: 'a', expiresAt: '2001-01-01T00:00:00Z' }, status: 400, code: 'validation_failed', field: '/body/expiresAt', detailIncludes: 'future' },
  { name: 'expiresAt not after runAt', method: 'POST', path: T, auth: 'producer', body: { type: 'a', runAt: '2999-01-02T00:00:00Z', expiresAt: '2999-01-01T00:00:00Z' }, status: 400, code: 'validation_failed', field: '/body/expiresAt' },
  { name: 'expiresAt not a date', method: 'POST', path: T, auth: 'producer', body: { type: 'a', expiresAt: 'soon' }, status: 400, code: 'validation_failed', field: '/body/expiresAt' },
  { name: 'batch item uniqueForMs without uniqueKey', method: 'POST', path: `${T}/batch`, auth: 'producer', body: { tasks: [{ type: 'bad.good', uniqueKey: 'k' }, { type: 'a', uniqueForMs: 10 }] }, status: 400, code: 'validation_failed', field: '/body/tasks/1/uniqueForMs' },

  // ---- NUL characters (PostgreSQL cannot store U+0000 in text or jsonb)
  { name: 'type with a NUL', method: 'POST', path: T, auth: 'producer', body: { type: 'a\u0000b' }, status: 400, code: 'validation_failed', field: '/body/type' },
  { name: 'payload string with a NUL', method: 'POST', path: T, auth: 'producer', body: { type: 'a', payload: { note: 'a\u0000b' } }, status: 400, code: 'validation_failed', field: '/body/payload/note' },
  { name: 'payload array item with a NUL', method: 'POST', path: T, auth: 'producer', body: { type: 'a', payload: ['ok', '\u0000'] }, status: 400, code: 'validation_failed', field: '/body/payload/1' },
  { name: 'idempotencyKey with a NUL', method: 'POST', path: T, auth: 'producer', body: { type: 'a', idempotencyKey: 'k\u0000' }, status: 400, code: 'validation_failed', field: '/body/idempotencyKey' },
  { name: 'tag with a NUL', method: 'POST', path: T, auth: 'producer', body: { type: 'a', tags: ['a\u0000'] }, status: 400, code: 'validation_failed', field: '/body/tags/0' },
  { name: 'batch item payload with a NUL', method: 'POST', path: `${T}/batch`, auth: 'producer', body: { tasks: [{ type: 'a' }, { type: 'a', payload: '\u0000' }] }, status: 400, code: 'validation_failed', field: '/body/tasks/1/payload' },
  { name: 'worker name with a NUL', method: 'POST', path: '/api/v1/workers', auth: 'worker', body: { name: 'w\u0000', queues: ['q'] }, status: 400, code: 'validation_failed', field: '/body/name' },
  { name: 'worker metadata with a NUL', method: 'POST', path: '/api/v1/workers', auth: 'worker', body: { name: 'w', queues: ['q'], metadata: { host: '\u0000' } }, status: 400, code: 'validation_failed', field: '/body/metadata/host' },
  { name: 'API key name with a NUL', method: 'POST', path: '/api/v1/api-keys', auth: 'admin', body: { name: 'k\u0000', scopes: ['producer'] }, status: 400, code: 'validation_failed', field: '/body/name' },
  {
    name: 'result error message with a NUL', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/results`, auth: 'worker',
    body: (f) => ({ results: [{ id: f.running.id, attempt: f.running.attempt, status: 'failed', error: { message: 'boom\u0000' } }] }),
    status: 400, code: 'validation_failed', field: '/body/results/0/error/message',
  },

  { name: 'payload with an unpaired surrogate', method: 'POST', path: T, auth: 'producer', body: { type: 'a', payload: { s: 'x\ud800' } }, status: 400, code: 'validation_failed', field: '/body/payload/s' },
  { name: 'type with an unpaired surrogate', method: 'POST', path: T, auth: 'producer', body: { type: '\udc00' }, status: 400, code: 'validation_failed', field: '/body/type' },
  { name: 'worker metadata with an unpaired surrogate', method: 'POST', path: '/api/v1/workers', auth: 'worker', body: { name: 'w', queues: ['q'], metadata: { host: '\ud800' } }, status: 400, code: 'validation_failed', field: '/body/metadata/host' },

  // ---- JSON nested deeper than anything can serialise or store (5000 levels)
  { name: 'payload nested 5000 deep', method: 'POST', path: T, auth: 'producer', raw: `{"type":"a","payload":${DEEP}}`, status: 400, code: 'validation_failed', field: '/body/payload' },
  { name: 'batch item payload nested 5000 deep', method: 'POST', path: `${T}/batch`, auth: 'producer', raw: `{"tasks":[{"type":"bad.good"},{"type":"a","payload":${DEEP}}]}`, status: 400, code: 'validation_failed', field: '/body/tasks/1/payload' },
  { name: 'worker metadata nested 5000 deep', method: 'POST', path: '/api/v1/workers', auth: 'worker', raw: `{"name":"w","queues":["q"],"metadata":{"x":${DEEP}}}`, status: 400, code: 'validation_failed', field: '/body/metadata' },
  {
    name: 'result nested 5000 deep', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/results`, auth: 'worker',
    raw: (f) => `{"results":[{"id":"${f.running.id}","attempt":${f.running.attempt},"status":"succeeded","result":${DEEP}}]}`,
    status: 400, code: 'validation_failed', field: '/body/results/0/result',
  },

  // ---- dates PostgreSQL or JavaScript cannot hold
  { name: 'runAt year 20000', method: 'POST', path: T, auth: 'producer', body: { type: 'a', runAt: '+020000-01-01T00:00:00Z' }, status: 400, code: 'validation_failed', field: '/body/runAt' },
  { name: 'runAt year 0001', method: 'POST', path: T, auth: 'producer', body: { type: 'a', runAt: '0001-01-01T00:00:00Z' }, status: 400, code: 'validation_failed', field: '/body/runAt' },
  { name: 'PATCH runAt year 0001', method: 'PATCH', path: (f) => `${T}/${f.queuedId}`, auth: 'producer', body: { runAt: '0001-01-01T00:00:00Z' }, status: 400, code: 'validation_failed', field: '/body/runAt' },
  { name: 'list createdFrom year 0001', method: 'GET', path: `${T}?createdFrom=0001-01-01T00:00:00Z`, auth: 'producer', status: 400, code: 'validation_failed', field: '/query/createdFrom' },

  // ---- oversized input (maxPayloadBytes 1024, maxBodyBytes 128 KiB)
  { name: 'payload over maxPayloadBytes', method: 'POST', path: T, auth: 'producer', body: { type: 'a', payload: { blob: BIG } }, status: 413, code: 'payload_too_large', field: '/body/payload', detailIncludes: '1024' },
  { name: 'payloadBase64 over maxPayloadBytes', method: 'POST', path: T, auth: 'producer', body: { type: 'a', payloadBase64: BIG_BASE64 }, status: 413, code: 'payload_too_large', field: '/body/payloadBase64', detailIncludes: '1024' },
  { name: 'batch item 1 over maxPayloadBytes', method: 'POST', path: `${T}/batch`, auth: 'producer', body: { tasks: [{ type: 'bad.good' }, { type: 'a', payload: BIG }] }, status: 413, code: 'payload_too_large', field: '/body/tasks/1/payload' },
  { name: 'request body over maxBodyBytes (batch)', method: 'POST', path: `${T}/batch`, auth: 'producer', raw: JSON.stringify({ tasks: [{ type: 'a', payload: 'x'.repeat(LIMITS.maxBodyBytes) }] }), status: 413, code: 'payload_too_large', detailIncludes: String(LIMITS.maxBodyBytes) },
  { name: 'request body over the createTask limit', method: 'POST', path: T, auth: 'producer', raw: JSON.stringify({ type: 'a', payload: 'x'.repeat(CREATE_TASK_BODY_LIMIT) }), status: 413, code: 'payload_too_large', detailIncludes: String(CREATE_TASK_BODY_LIMIT) },
  { name: 'request body over maxBodyBytes (worker registration)', method: 'POST', path: '/api/v1/workers', auth: 'worker', raw: JSON.stringify({ name: 'w', queues: ['q'], metadata: { blob: 'x'.repeat(LIMITS.maxBodyBytes) } }), status: 413, code: 'payload_too_large' },
  {
    name: 'result over maxPayloadBytes', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/results`, auth: 'worker',
    body: (f) => ({ results: [{ id: f.running.id, attempt: f.running.attempt, status: 'succeeded', result: BIG }] }),
    status: 413, code: 'payload_too_large', field: '/body/results/0/result',
  },

  // ---- batches
  { name: 'batch with 0 items', method: 'POST', path: `${T}/batch`, auth: 'producer', body: { tasks: [] }, status: 400, code: 'validation_failed', field: '/body/tasks' },
  { name: 'batch with 1001 items', method: 'POST', path: `${T}/batch`, auth: 'producer', body: { tasks: many(1001) }, status: 400, code: 'validation_failed', field: '/body/tasks' },
  { name: 'batch with one bad item among good ones', method: 'POST', path: `${T}/batch`, auth: 'producer', body: { tasks: [{ type: 'bad.good' }, { type: 'bad.good' }, { type: 'bad.good', priority: 'x' }] }, status: 400, code: 'validation_failed', field: '/body/tasks/2/priority' },
  { name: 'batch item with payload and payloadBase64', method: 'POST', path: `${T}/batch`, auth: 'producer', body: { tasks: [{ type: 'bad.good' }, { type: 'a', payload: 1, payloadBase64: 'AAAA' }] }, status: 400, code: 'validation_failed', field: '/body/tasks/1/payloadBase64' },
  { name: 'batch item runAt year 0001', method: 'POST', path: `${T}/batch`, auth: 'producer', body: { tasks: [{ type: 'bad.good' }, { type: 'a', runAt: '0001-01-01T00:00:00Z' }] }, status: 400, code: 'validation_failed', field: '/body/tasks/1/runAt' },
  { name: 'batch without tasks', method: 'POST', path: `${T}/batch`, auth: 'producer', body: [{ type: 'a' }], status: 400, code: 'validation_failed', field: '/body' },

  // ---- unknown and malformed ids
  { name: 'unknown task id', method: 'GET', path: `${T}/999999`, auth: 'producer', status: 404, code: 'not_found' },
  { name: 'task id beyond bigint', method: 'GET', path: `${T}/9999999999999999999`, auth: 'producer', status: 404, code: 'not_found' },
  { name: 'malformed task id', method: 'GET', path: `${T}/abc`, auth: 'producer', status: 400, code: 'validation_failed', field: '/path/id' },
  { name: 'task id 0', method: 'GET', path: `${T}/0`, auth: 'producer', status: 400, code: 'validation_failed', field: '/path/id' },
  { name: 'PATCH unknown task', method: 'PATCH', path: `${T}/999999`, auth: 'producer', body: { priority: 1 }, status: 404, code: 'not_found' },
  { name: 'cancel unknown task', method: 'POST', path: `${T}/999999/cancel`, auth: 'producer', status: 404, code: 'not_found' },
  { name: 'retry unknown task', method: 'POST', path: `${T}/999999/retry`, auth: 'producer', status: 404, code: 'not_found' },
  { name: 'requeue unknown dead task', method: 'POST', path: '/api/v1/dlq/999999/requeue', auth: 'admin', status: 404, code: 'not_found' },
  { name: 'unknown worker id', method: 'GET', path: `/api/v1/workers/${UNKNOWN_UUID}`, auth: 'worker', status: 404, code: 'not_found' },
  { name: 'malformed worker id', method: 'GET', path: '/api/v1/workers/not-a-uuid', auth: 'worker', status: 400, code: 'validation_failed', field: '/path/id' },
  { name: 'heartbeat of an unknown worker', method: 'POST', path: `/api/v1/workers/${UNKNOWN_UUID}/heartbeat`, auth: 'worker', status: 404, code: 'not_found' },
  { name: 'claim by an unknown worker', method: 'POST', path: `/api/v1/workers/${UNKNOWN_UUID}/claim`, auth: 'worker', body: {}, status: 404, code: 'not_found' },
  { name: 'deregister an unknown worker', method: 'DELETE', path: `/api/v1/workers/${UNKNOWN_UUID}`, auth: 'worker', status: 404, code: 'not_found' },
  { name: 'results from an unknown worker', method: 'POST', path: `/api/v1/workers/${UNKNOWN_UUID}/results`, auth: 'worker', body: { results: [{ id: '999999', attempt: 1, status: 'succeeded' }] }, status: 404, code: 'not_found' },
  { name: 'single result from an unknown worker', method: 'POST', path: `/api/v1/workers/${UNKNOWN_UUID}/tasks/999999/result`, auth: 'worker', body: { attempt: 1, status: 'succeeded' }, status: 404, code: 'not_found' },
  { name: 'single result for an unknown task', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/tasks/999999/result`, auth: 'worker', body: { attempt: 1, status: 'succeeded' }, status: 404, code: 'not_found' },
  { name: 'unknown queue', method: 'GET', path: '/api/v1/queues/no.such.queue', auth: 'producer', status: 404, code: 'not_found' },
  { name: 'malformed queue name', method: 'POST', path: '/api/v1/queues/bad%20name/pause', auth: 'admin', status: 400, code: 'validation_failed', field: '/path/name' },
  { name: 'revoke an unknown API key', method: 'DELETE', path: `/api/v1/api-keys/${UNKNOWN_UUID}`, auth: 'admin', status: 404, code: 'not_found' },
  { name: 'revoke a malformed API key id', method: 'DELETE', path: '/api/v1/api-keys/abc', auth: 'admin', status: 400, code: 'validation_failed', field: '/path/id' },

  // ---- list queries
  { name: 'cursor not base64 JSON', method: 'GET', path: `${T}?cursor=garbage`, auth: 'producer', status: 400, code: 'validation_failed', field: '/query/cursor' },
  { name: 'cursor with a bad id', method: 'GET', path: `${T}?cursor=${cursorOf({ id: 'abc' })}`, auth: 'producer', status: 400, code: 'validation_failed', field: '/query/cursor' },
  { name: 'DLQ cursor not base64 JSON', method: 'GET', path: '/api/v1/dlq?cursor=garbage', auth: 'admin', status: 400, code: 'validation_failed', field: '/query/cursor' },
  { name: 'workers cursor with a bad date', method: 'GET', path: `/api/v1/workers?cursor=${cursorOf({ at: 'never', id: UNKNOWN_UUID })}`, auth: 'admin', status: 400, code: 'validation_failed', field: '/query/cursor' },
  { name: 'limit 0', method: 'GET', path: `${T}?limit=0`, auth: 'producer', status: 400, code: 'validation_failed', field: '/query/limit' },
  { name: 'limit 501', method: 'GET', path: `${T}?limit=501`, auth: 'producer', status: 400, code: 'validation_failed', field: '/query/limit' },
  { name: 'limit not a number', method: 'GET', path: '/api/v1/dlq?limit=ten', auth: 'admin', status: 400, code: 'validation_failed', field: '/query/limit' },
  { name: 'state=bogus', method: 'GET', path: `${T}?state=bogus`, auth: 'producer', status: 400, code: 'validation_failed', field: '/query/state/0' },
  { name: 'second state bogus', method: 'GET', path: `${T}?state=queued&state=bogus`, auth: 'producer', status: 400, code: 'validation_failed', field: '/query/state/1' },
  { name: 'createdFrom not a date', method: 'GET', path: `${T}?createdFrom=yesterday`, auth: 'producer', status: 400, code: 'validation_failed', field: '/query/createdFrom' },
  { name: 'unknown query parameter', method: 'GET', path: `${T}?colour=red`, auth: 'producer', status: 400, code: 'validation_failed', field: '/query/colour' },
  { name: 'worker list state=bogus', method: 'GET', path: '/api/v1/workers?state=bogus', auth: 'admin', status: 400, code: 'validation_failed', field: '/query/state/0' },

  // ---- authentication and scopes
  { name: 'no Authorization header', method: 'POST', path: T, auth: 'none', body: { type: 'a' }, status: 401, code: 'unauthorized' },
  { name: 'Authorization "Token x"', method: 'POST', path: T, auth: 'token', body: { type: 'a' }, status: 401, code: 'unauthorized' },
  { name: 'Authorization "Bearer" without a key', method: 'GET', path: T, auth: 'bearer-empty', status: 401, code: 'unauthorized' },
  { name: 'unknown key', method: 'POST', path: T, auth: 'unknown', body: { type: 'a' }, status: 401, code: 'unauthorized' },
  { name: 'revoked key', method: 'POST', path: T, auth: 'revoked', body: { type: 'a' }, status: 401, code: 'unauthorized' },
  { name: 'no key, on an admin route', method: 'GET', path: '/api/v1/api-keys', auth: 'none', status: 401, code: 'unauthorized' },
  { name: 'no key, with an invalid body (auth comes first)', method: 'POST', path: T, auth: 'none', body: { type: 42 }, status: 401, code: 'unauthorized' },
  { name: 'no key, with malformed JSON (auth comes first)', method: 'POST', path: T, auth: 'none', raw: '{', status: 401, code: 'unauthorized' },
  { name: 'worker key submitting a task', method: 'POST', path: T, auth: 'worker', body: { type: 'a' }, status: 403, code: 'forbidden', detailIncludes: 'producer' },
  { name: 'worker key listing tasks', method: 'GET', path: T, auth: 'worker', status: 403, code: 'forbidden' },
  { name: 'worker key, with an invalid body (scope comes first)', method: 'POST', path: T, auth: 'worker', body: { type: 42 }, status: 403, code: 'forbidden' },
  { name: 'producer key on the DLQ', method: 'GET', path: '/api/v1/dlq', auth: 'producer', status: 403, code: 'forbidden', detailIncludes: 'admin' },
  { name: 'producer key purging the DLQ', method: 'DELETE', path: '/api/v1/dlq', auth: 'producer', status: 403, code: 'forbidden' },
  { name: 'producer key registering a worker', method: 'POST', path: '/api/v1/workers', auth: 'producer', body: { name: 'w', queues: ['q'] }, status: 403, code: 'forbidden', detailIncludes: 'worker' },
  { name: 'producer key pausing a queue', method: 'POST', path: '/api/v1/queues/bad.queued/pause', auth: 'producer', status: 403, code: 'forbidden' },
  { name: 'producer key creating an API key', method: 'POST', path: '/api/v1/api-keys', auth: 'producer', body: { name: 'k', scopes: ['admin'] }, status: 403, code: 'forbidden' },
  { name: 'worker key revoking an API key', method: 'DELETE', path: `/api/v1/api-keys/${UNKNOWN_UUID}`, auth: 'worker', status: 403, code: 'forbidden' },
  { name: 'worker key listing workers', method: 'GET', path: '/api/v1/workers', auth: 'worker', status: 403, code: 'forbidden' },

  // ---- unknown routes
  { name: 'unknown route', method: 'GET', path: '/api/v1/nope', auth: 'admin', status: 404, code: 'route_not_found' },
  { name: 'unknown route without a key', method: 'GET', path: '/api/v2/tasks', auth: 'none', status: 404, code: 'route_not_found' },
  { name: 'unknown method on a known path', method: 'PUT', path: T, auth: 'admin', body: { type: 'a' }, status: 405, code: 'method_not_allowed' },

  // ---- state conflicts
  { name: 'PATCH a running task', method: 'PATCH', path: (f) => `${T}/${f.running.id}`, auth: 'producer', body: { priority: 5 }, status: 409, code: 'invalid_state' },
  { name: 'PATCH with nothing to change', method: 'PATCH', path: (f) => `${T}/${f.queuedId}`, auth: 'producer', body: {}, status: 400, code: 'validation_failed', field: '/body' },
  { name: 'PATCH an unknown field', method: 'PATCH', path: (f) => `${T}/${f.queuedId}`, auth: 'producer', body: { queue: 'elsewhere' }, status: 400, code: 'validation_failed', field: '/body/queue' },
  { name: 'cancel a finished task', method: 'POST', path: (f) => `${T}/${f.doneId}/cancel`, auth: 'producer', status: 409, code: 'invalid_state' },
  { name: 'retry a running task', method: 'POST', path: (f) => `${T}/${f.running.id}/retry`, auth: 'producer', status: 409, code: 'invalid_state' },
  { name: 'requeue a task that is not dead', method: 'POST', path: (f) => `/api/v1/dlq/${f.doneId}/requeue`, auth: 'admin', status: 409, code: 'invalid_state' },
  { name: 'heartbeat of a deregistered worker', method: 'POST', path: (f) => `/api/v1/workers/${f.stoppedWorkerId}/heartbeat`, auth: 'worker', status: 409, code: 'worker_stopped', detailIncludes: 'register again' },
  { name: 'claim by a deregistered worker', method: 'POST', path: (f) => `/api/v1/workers/${f.stoppedWorkerId}/claim`, auth: 'worker', body: { waitMs: 0 }, status: 409, code: 'worker_stopped', detailIncludes: 'register again' },

  // ---- routes that take no body refuse any field (validated before the handler: nothing happens)
  { name: 'cancel with a field', method: 'POST', path: (f) => `${T}/${f.queuedId}/cancel`, auth: 'producer', body: { reason: 'x' }, status: 400, code: 'validation_failed', field: '/body/reason' },
  { name: 'retry with a field', method: 'POST', path: (f) => `${T}/${f.doneId}/retry`, auth: 'producer', body: { delayMs: 5 }, status: 400, code: 'validation_failed', field: '/body/delayMs' },
  { name: 'requeue one dead task with a field', method: 'POST', path: (f) => `/api/v1/dlq/${f.doneId}/requeue`, auth: 'admin', body: { queue: 'q' }, status: 400, code: 'validation_failed', field: '/body/queue' },
  { name: 'purge the DLQ with a body field', method: 'DELETE', path: '/api/v1/dlq', auth: 'admin', body: { queue: 'bad.queued' }, status: 400, code: 'validation_failed', field: '/body/queue' },
  { name: 'pause a queue with a field', method: 'POST', path: '/api/v1/queues/bad.queued/pause', auth: 'admin', body: { forMs: 10 }, status: 400, code: 'validation_failed', field: '/body/forMs' },
  { name: 'resume a queue with a body that is not an object', method: 'POST', path: '/api/v1/queues/bad.queued/resume', auth: 'admin', body: [], status: 400, code: 'validation_failed', field: '/body' },
  { name: 'revoke an API key with a field', method: 'DELETE', path: `/api/v1/api-keys/${UNKNOWN_UUID}`, auth: 'admin', body: { force: true }, status: 400, code: 'validation_failed', field: '/body/force' },
  // ---- the DLQ's bulk requeue
  { name: 'DLQ requeue naming nothing', method: 'POST', path: '/api/v1/dlq/requeue', auth: 'admin', body: {}, status: 400, code: 'validation_failed', field: '/body' },
  { name: 'DLQ requeue ids with a queue', method: 'POST', path: '/api/v1/dlq/requeue', auth: 'admin', body: { ids: ['1'], queue: 'q' }, status: 400, code: 'validation_failed', field: '/body/ids' },
  { name: 'DLQ requeue a malformed id', method: 'POST', path: '/api/v1/dlq/requeue', auth: 'admin', body: { ids: ['1', 'x'] }, status: 400, code: 'validation_failed', field: '/body/ids/1' },
  { name: 'DLQ requeue all: false', method: 'POST', path: '/api/v1/dlq/requeue', auth: 'admin', body: { all: false }, status: 400, code: 'validation_failed', field: '/body' },

  // ---- worker protocol
  { name: 'register with no queues', method: 'POST', path: '/api/v1/workers', auth: 'worker', body: { name: 'w', queues: [] }, status: 400, code: 'validation_failed', field: '/body/queues' },
  { name: 'register a queue twice', method: 'POST', path: '/api/v1/workers', auth: 'worker', body: { name: 'w', queues: ['q', { name: 'q', weight: 2 }] }, status: 400, code: 'validation_failed', field: '/body/queues/1' },
  { name: 'register with weight 0', method: 'POST', path: '/api/v1/workers', auth: 'worker', body: { name: 'w', queues: [{ name: 'q', weight: 0 }] }, status: 400, code: 'validation_failed', field: '/body/queues/0' },
  { name: 'deregister with a field', method: 'DELETE', path: (f) => `/api/v1/workers/${f.workerId}`, auth: 'worker', body: { force: true }, status: 400, code: 'validation_failed', field: '/body/force' },
  { name: 'deregister listing a malformed task id', method: 'DELETE', path: (f) => `/api/v1/workers/${f.workerId}`, auth: 'worker', body: { started: [{ id: 'x', attempt: 1 }] }, status: 400, code: 'validation_failed', field: '/body/started/0/id' },
  { name: 'deregister listing a task without its attempt', method: 'DELETE', path: (f) => `/api/v1/workers/${f.workerId}`, auth: 'worker', body: { started: [{ id: '1' }] }, status: 400, code: 'validation_failed', field: '/body/started/0/attempt' },
  { name: 'deregister with a body that is not an object', method: 'DELETE', path: (f) => `/api/v1/workers/${f.workerId}`, auth: 'worker', body: [], status: 400, code: 'validation_failed', field: '/body' },
  { name: 'claim max 0', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/claim`, auth: 'worker', body: { max: 0 }, status: 400, code: 'validation_failed', field: '/body/max' },
  { name: 'claim waitMs over a minute', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/claim`, auth: 'worker', body: { waitMs: 60_001 }, status: 400, code: 'validation_failed', field: '/body/waitMs' },
  { name: 'claim a queue not registered', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/claim`, auth: 'worker', body: { queues: ['bad.elsewhere'] }, status: 400, code: 'validation_failed', field: '/body/queues/0' },
  {
    name: 'result failed without error', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/results`, auth: 'worker',
    body: (f) => ({ results: [{ id: f.running.id, attempt: f.running.attempt, status: 'failed' }] }),
    status: 400, code: 'validation_failed', field: '/body/results/0/error',
  },
  {
    name: 'result succeeded with an error', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/results`, auth: 'worker',
    body: (f) => ({ results: [{ id: f.running.id, attempt: f.running.attempt, status: 'succeeded', error: { message: 'no' } }] }),
    status: 400, code: 'validation_failed', field: '/body/results/0/error',
  },
  {
    name: 'result succeeded with retryable', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/results`, auth: 'worker',
    body: (f) => ({ results: [{ id: f.running.id, attempt: f.running.attempt, status: 'succeeded', retryable: false }] }),
    status: 400, code: 'validation_failed', field: '/body/results/0/retryable',
  },
  {
    name: 'result failed with a result', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/results`, auth: 'worker',
    body: (f) => ({ results: [{ id: f.running.id, attempt: f.running.attempt, status: 'failed', error: { message: 'x' }, result: 1 }] }),
    status: 400, code: 'validation_failed', field: '/body/results/0/result',
  },
  {
    name: 'second result of a batch invalid (first not settled)', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/results`, auth: 'worker',
    body: (f) => ({ results: [{ id: f.running.id, attempt: f.running.attempt, status: 'succeeded' }, { id: f.doneId, attempt: 1, status: 'bogus' }] }),
    status: 400, code: 'validation_failed', field: '/body/results/1/status',
  },
  {
    name: 'result piggybacked on a claim, invalid (nothing settled, nothing claimed)', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/claim`, auth: 'worker',
    body: (f) => ({ max: 10, results: [{ id: f.running.id, attempt: f.running.attempt, status: 'failed' }] }),
    status: 400, code: 'validation_failed', field: '/body/results/0/error',
  },
  { name: 'results with 0 items', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/results`, auth: 'worker', body: { results: [] }, status: 400, code: 'validation_failed', field: '/body/results' },
  { name: 'results with neither results nor succeeded', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/results`, auth: 'worker', body: {}, status: 400, code: 'validation_failed', field: '/body/results' },
  {
    name: 'compact successes not id:attempt pairs', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/results`, auth: 'worker',
    body: (f) => ({ succeeded: `${f.running.id}:${f.running.attempt},,7:1` }),
    status: 400, code: 'validation_failed', field: '/body/succeeded',
  },
  {
    name: 'compact successes on a claim with an attempt over int4 (nothing settled, nothing claimed)', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/claim`, auth: 'worker',
    body: (f) => ({ max: 10, succeeded: `${f.running.id}:${f.running.attempt},${f.running.id}:9999999999` }),
    status: 400, code: 'validation_failed', field: '/body/succeeded',
  },
  {
    name: 'compact successes, 1001 of them', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/results`, auth: 'worker',
    body: (f) => ({ succeeded: [`${f.running.id}:${f.running.attempt}`, ...Array.from({ length: 1000 }, (_, i) => `${i + 1}:1`)].join(',') }),
    status: 400, code: 'validation_failed', field: '/body/succeeded',
  },
  {
    name: 'compact successes valid, a result beside them invalid (nothing settled, nothing claimed)', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/claim`, auth: 'worker',
    body: (f) => ({ max: 10, succeeded: `${f.running.id}:${f.running.attempt}`, results: [{ id: f.running.id, attempt: f.running.attempt, status: 'failed' }] }),
    status: 400, code: 'validation_failed', field: '/body/results/0/error',
  },
  {
    name: 'single result failed without error', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/tasks/${f.running.id}/result`, auth: 'worker',
    body: (f) => ({ attempt: f.running.attempt, status: 'failed' }),
    status: 400, code: 'validation_failed', field: '/body/error',
  },
  {
    name: 'single result with a stale attempt', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/tasks/${f.running.id}/result`, auth: 'worker',
    body: (f) => ({ attempt: f.running.attempt + 1, status: 'succeeded', result: 'late' }),
    status: 409, code: 'stale_attempt',
  },
  {
    name: 'single result from the wrong worker', method: 'POST', path: (f) => `/api/v1/workers/${f.stoppedWorkerId}/tasks/${f.running.id}/result`, auth: 'worker',
    body: (f) => ({ attempt: f.running.attempt, status: 'succeeded' }),
    status: 409, code: 'stale_attempt',
  },
  {
    name: 'single result with attempt 0', method: 'POST', path: (f) => `/api/v1/workers/${f.workerId}/tasks/${f.running.id}/result`, auth: 'worker',
    body: { attempt: 0, status: 'succeeded' },
    status: 400, code: 'validation_failed', field: '/body/attempt',
  },

  // ---- API keys
  { name: 'API key with an unknown scope', method: 'POST', path: '/api/v1/api-keys', auth: 'admin', body: { name: 'k', scopes: ['root'] }, status: 400, code: 'validation_failed', field: '/body/scopes/0' },
  { name: 'API key without scopes', method: 'POST', path: '/api/v1/api-keys', auth: 'admin', body: { name: 'k', scopes: [] }, status: 400, code: 'validation_failed', field: '/body/scopes' },
  { name: 'API key without a name', method: 'POST', path: '/api/v1/api-keys', auth: 'admin', body: { scopes: ['worker'] }, status: 400, code: 'validation_failed', field: '/body/name' },
];

// ---------------------------------------------------------------------------------------

const PROBLEM_JSON = /^application\/problem\+json/;

interface Snapshot {
  counts: Record<string, number>;
  /** Digest of every row of tasks and attempts: any update shows. */
  digest: string;
}

async function snapshot(svc: TestService): Promise<Snapshot> {
  const counts: Record<string, number> = {};
  for (const table of ['tasks', 'attempts', 'workers', 'api_keys', 'queues']) {
    const { rows } = await svc.service.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    counts[table] = rows[0]!.n;
  }
  const { rows } = await svc.service.db.query<{ d: string }>(
    `SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t.id)), '') || ':' ||
            coalesce((SELECT md5(string_agg(a::text, '|' ORDER BY a.task_id, a.attempt)) FROM attempts a), '') AS d
       FROM tasks t`,
  );
  return { counts, digest: rows[0]!.d };
}

/** Raw HTTP: `fetch` without the SDK. */
async function http(svc: TestService, method: string, path: string, opts: { auth?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (opts.auth) headers.authorization = `Bearer ${opts.auth}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(svc.url + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as any;
}

function describeBadInput(driver: DriverName): void {
  describe(`bad input gets a 4xx problem and writes nothing (${driver})`, () => {
    let svc: TestService;
    let fx: Fixtures;
    const authHeader = {} as Record<Auth, string | undefined>;
    let before: Snapshot;

    beforeAll(async () => {
      // A worker stays alive for an hour and the running task's lease is ten minutes, so that
      // no background duty writes while the table runs.
      svc = await startTestService(driver, { ...LIMITS, workerTtlMs: 3_600_000 });
      const newKey = async (scope: string) =>
        (await http(svc, 'POST', '/api/v1/api-keys', { auth: svc.adminKey, body: { name: `bad-input ${scope}`, scopes: [scope] } })) as {
          key: { id: string };
          secret: string;
        };
      const producer = await newKey('producer');
      const worker = await newKey('worker');
      const revoked = await newKey('producer');
      // Used once (so the node has verified and cached it), then revoked.
      await http(svc, 'GET', '/api/v1/queues', { auth: revoked.secret });
      await http(svc, 'DELETE', `/api/v1/api-keys/${revoked.key.id}`, { auth: svc.adminKey });
      Object.assign(authHeader, {
        admin: `Bearer ${svc.adminKey}`,
        producer: `Bearer ${producer.secret}`,
        worker: `Bearer ${worker.secret}`,
        revoked: `Bearer ${revoked.secret}`,
        unknown: `Bearer tf_${'A'.repeat(32)}`,
        none: undefined,
        token: 'Token x',
        'bearer-empty': 'Bearer',
      });

      const w = worker.secret;
      const p = producer.secret;
      const reg = await http(svc, 'POST', '/api/v1/workers', { auth: w, body: { name: 'bad-input', queues: ['bad.running', 'bad.done'] } });
      const stopped = await http(svc, 'POST', '/api/v1/workers', { auth: w, body: { name: 'bad-input stopped', queues: ['bad.running'] } });
      await http(svc, 'DELETE', `/api/v1/workers/${stopped.id}`, { auth: w });

      const done = await http(svc, 'POST', T, { auth: p, body: { type: 'bad.done', queue: 'bad.done' } });
      const claimedDone = await http(svc, 'POST', `/api/v1/workers/${reg.id}/claim`, { auth: w, body: { queues: ['bad.done'] } });
      expect(claimedDone.tasks.map((t: { id: string }) => t.id)).toEqual([done.id]);
      await http(svc, 'POST', `/api/v1/workers/${reg.id}/results`, {
        auth: w, body: { results: [{ id: done.id, attempt: 1, status: 'succeeded', result: 'ok' }] },
      });

      const running = await http(svc, 'POST', T, { auth: p, body: { type: 'bad.running', queue: 'bad.running', timeoutMs: 600_000 } });
      const claimed = await http(svc, 'POST', `/api/v1/workers/${reg.id}/claim`, { auth: w, body: { queues: ['bad.running'] } });
      expect(claimed.tasks.map((t: { id: string }) => t.id)).toEqual([running.id]);

      const queued = await http(svc, 'POST', T, { auth: p, body: { type: 'bad.queued', queue: 'bad.queued' } });
      fx = {
        workerId: reg.id,
        stoppedWorkerId: stopped.id,
        running: { id: running.id, attempt: claimed.tasks[0].attempt },
        doneId: done.id,
        queuedId: queued.id,
      };
      expect((await svc.admin.getTask(fx.doneId)).state).toBe('succeeded');
      expect((await svc.admin.getTask(fx.running.id)).state).toBe('running');
      before = await snapshot(svc);
    });

    afterAll(async () => {
      await svc?.stop();
    });

    it.each(cases)('$name → $status $code', async (c) => {
      const path = typeof c.path === 'function' ? c.path(fx) : c.path;
      const body = typeof c.body === 'function' ? c.body(fx) : c.body;
      const raw = typeof c.raw === 'function' ? c.raw(fx) : c.raw;
      const payload = raw ?? (body === undefined ? undefined : JSON.stringify(body));
      const headers: Record<string, string> = {};
      const auth = authHeader[c.auth];
      if (auth !== undefined) headers.authorization = auth;
      if (payload !== undefined) headers['content-type'] = c.contentType ?? 'application/json';
      const ahead = await snapshot(svc);

      const res = await fetch(svc.url + path, { method: c.method, headers, body: payload });
      const text = await res.text();
      expect(await snapshot(svc), 'nothing was written').toEqual(ahead);

      expect(res.status, text.slice(0, 500)).toBe(c.status);
      expect(res.headers.get('content-type')).toMatch(PROBLEM_JSON);
      const problem = JSON.parse(text) as {
        type: string; title: string; status: number; detail: string; code: string; instance?: string;
        errors?: { field: string; message: string }[];
      };
      expect(problem.code).toBe(c.code);
      expect(problem.type).toBe(`urn:taskflow:problem:${c.code}`);
      expect(problem.status).toBe(c.status);
      expect(typeof problem.title).toBe('string');
      expect(problem.title.length).toBeGreaterThan(0);
      expect(typeof problem.detail).toBe('string');
      expect(problem.detail.length).toBeGreaterThan(0);
      expect(problem.instance).toBe(path.split('?')[0]);
      if (c.field !== undefined) {
        expect(problem.detail).toContain(c.field);
        expect(problem.errors?.map((e) => e.field)).toContain(c.field);
        for (const e of problem.errors ?? []) expect(e.message.length).toBeGreaterThan(0);
      }
      if (c.detailIncludes !== undefined) expect(problem.detail).toContain(c.detailIncludes);
    });

    it('wrote nothing over the whole table: no task, attempt, worker, key or queue; no task changed', async () => {
      const after = await snapshot(svc);
      expect(after).toEqual(before);
      // The good items of the rejected batches were not written either.
      const { rows } = await svc.service.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks WHERE type IN ('bad.good', 'bad.many')`);
      expect(rows[0]!.n).toBe(0);
      // The fixtures are as they were: the stale result and the refused PATCH changed nothing.
      const running = await svc.admin.getTask(fx.running.id);
      expect(running).toMatchObject({ state: 'running', attempt: fx.running.attempt, priority: 0, result: null, workerId: fx.workerId });
      expect(running.attempts.map((a) => a.outcome)).toEqual(['running']);
      expect((await svc.admin.getTask(fx.doneId)).result).toBe('ok');
    });
  });
}

describeBadInput('pglite');
describeBadInput('postgres');
