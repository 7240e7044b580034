import type { Engine, EnqueueBatcher, TaskInput as EngineTaskInput } from '@taskflow/core';
import { isTaskId } from '@taskflow/core';
import type { TaskInput } from '@taskflow/contracts';
import type { Handlers } from '../http/route.ts';
import { badRequest, tooLarge } from '../http/problems.ts';
import { attemptJson, explanationJson, taskJson } from '../http/serialize.ts';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';
import { assertStorableText, storableJson } from '../http/storable.ts';
import type { ServerSpans } from '../tracing/spans.ts';

export interface TaskRouteDeps {
  engine: Engine;
  /** Group commit for single submissions. */
  batcher: EnqueueBatcher;
  maxPayloadBytes: number;
  /** Records `send` spans; undefined without tracing. */
  spans?: ServerSpans;
}

/**
 * The checks a JSON schema cannot express well: exclusive fields, and the payload size limit
 * (measured on the JSON text the engine will store). `at` is the field path of the task.
 */
export function toEngineInput(input: TaskInput, at: string, maxPayloadBytes: number): EngineTaskInput {
  if (input.payload !== undefined && input.payloadBase64 !== undefined) {
    throw badRequest(`${at}/payloadBase64`, 'cannot be given together with payload (choose one)');
  }
  if (input.contentType !== undefined && input.payloadBase64 === undefined) {
    throw badRequest(`${at}/contentType`, 'is only allowed with payloadBase64');
  }
  if (input.runAt !== undefined && input.delayMs !== undefined) {
    throw badRequest(`${at}/delayMs`, 'cannot be given together with runAt (choose one)');
  }
  const lifetime = lifetimeOf(input, at);
  assertStorableText(input.type, `${at}/type`);
  assertStorableText(input.idempotencyKey, `${at}/idempotencyKey`);
  assertStorableText(input.uniqueKey, `${at}/uniqueKey`);
  assertStorableText(input.contentType, `${at}/contentType`);
  assertStorableText(input.concurrencyKey, `${at}/concurrencyKey`);
  assertStorableText(input.rateKey, `${at}/rateKey`);
  input.tags?.forEach((tag, i) => assertStorableText(tag, `${at}/tags/${i}`));
  if (input.traceparent !== undefined) checkTraceparent(input.traceparent, `${at}/traceparent`);
  else if (input.tracestate !== undefined) throw badRequest(`${at}/tracestate`, 'is only allowed with traceparent');
  let payloadJson: string | undefined;
  if (input.payloadBase64 !== undefined) {
    if (input.payloadBase64.length % 4 !== 0) throw badRequest(`${at}/payloadBase64`, 'must be padded base64 (length a multiple of 4)');
    const bytes = (input.payloadBase64.length / 4) * 3;
    if (bytes > maxPayloadBytes) throw tooLarge(`${at}/payloadBase64`, `is larger than the limit of ${maxPayloadBytes} bytes`);
  } else if (input.payload !== undefined) {
    payloadJson = storableJson(input.payload, `${at}/payload`, maxPayloadBytes);
  }
  const { runAt, expiresAt: _expiresAt, ...rest } = input;
  return { ...rest, payloadJson, ...lifetime, ...(runAt !== undefined ? { runAt: parseTime(runAt, `${at}/runAt`) } : {}) };
}

/**
 * The unique key's window and the deadline, checked: a window needs a key; a deadline is
 * given one way, is in the future (by this server's clock) and after the run time, so that
 * the task can start at all.
 */
function lifetimeOf(input: TaskInput, at: string): Pick<EngineTaskInput, 'expiresAt'> {
  if (input.uniqueForMs !== undefined && input.uniqueKey === undefined) {
    throw badRequest(`${at}/uniqueForMs`, 'is only allowed with uniqueKey');
  }
  if (input.expiresAt !== undefined && input.ttlMs !== undefined) {
    throw badRequest(`${at}/ttlMs`, 'cannot be given together with expiresAt (choose one)');
  }
  if (input.ttlMs !== undefined && input.delayMs !== undefined && input.ttlMs <= input.delayMs) {
    throw badRequest(`${at}/ttlMs`, 'must be more than delayMs (the task would expire before its run time)');
  }
  if (input.expiresAt === undefined) return {};
  const expiresAt = parseTime(input.expiresAt, `${at}/expiresAt`);
  if (expiresAt.getTime() <= Date.now()) throw badRequest(`${at}/expiresAt`, 'must be in the future');
  if (input.runAt !== undefined && expiresAt.getTime() <= new Date(input.runAt).getTime()) {
    throw badRequest(`${at}/expiresAt`, 'must be after runAt (the task would expire before its run time)');
  }
  return { expiresAt };
}

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_PARENT_ID = '0'.repeat(16);

/**
 * What the schema's pattern leaves to check in a W3C traceparent: version ff and all-zero trace
 * or parent ids are invalid (W3C Trace Context §3.2.2).
 */
function checkTraceparent(value: string, field: string): void {
  if (value.startsWith('ff-')) throw badRequest(field, 'has version ff, which W3C Trace Context forbids');
  if (value.startsWith(ZERO_TRACE_ID, 3)) throw badRequest(field, 'has an all-zero trace id');
  if (value.startsWith(ZERO_PARENT_ID, 36)) throw badRequest(field, 'has an all-zero parent id');
}


/** An RFC 3339 time JavaScript and PostgreSQL both understand, else a 400 naming the field. */
export function parseTime(value: string, field: string): Date {
  const d = new Date(value);
  const year = d.getUTCFullYear();
  if (Number.isNaN(d.getTime()) || year < 1970 || year > 9999) throw badRequest(field, 'must be a date-time between 1970 and 9999');
  return d;
}

/** Whether a `Prefer` header (RFC 7240: comma-separated preferences) asks for `return=minimal`. */
function prefersMinimal(prefer: string | string[] | undefined): boolean {
  if (prefer === undefined) return false;
  const all = Array.isArray(prefer) ? prefer.join(',') : prefer;
  return all.split(',').some((p) => /^\s*return\s*=\s*"?minimal"?\s*(;|$)/i.test(p));
}

export function taskHandlers(deps: TaskRouteDeps): Pick<Handlers, 'createTask' | 'createTasks' | 'listTasks' | 'getTask' | 'explainTask' | 'updateTask' | 'cancelTask' | 'retryTask'> {
  const { engine, batcher, maxPayloadBytes, spans } = deps;
  return {
    async createTask(req, reply) {
      const input = toEngineInput(req.body, '/body', maxPayloadBytes);
      // A task with dependencies is inserted in a transaction of its own (engine/dependencies.ts).
      const send = input.dependsOn?.length ? async () => (await engine.enqueue([input]))[0]! : () => batcher.enqueue(input);
      const r = spans ? await spans.traceSend(req, [input], send, (x) => [x.task.id]) : await send();
      if (r.deduplicated === 'idempotency') reply.header('idempotent-replayed', 'true');
      if (r.deduplicated) reply.header('deduplicated', r.deduplicated);
      reply.code(r.created ? 201 : 200).header('location', `/api/v1/tasks/${r.task.id}`);
      return taskJson(r.task);
    },
    async createTasks(req, reply) {
      const inputs = req.body.tasks.map((t, i) => toEngineInput(t, `/body/tasks/${i}`, maxPayloadBytes));
      // Joins the group commit with concurrent submissions (all or nothing for this request).
      const send = inputs.some((i) => i.dependsOn?.length) ? () => engine.enqueue(inputs) : () => batcher.enqueueMany(inputs);
      const results = spans ? await spans.traceSend(req, inputs, send, (x) => x.map((r) => r.ref.id)) : await send();
      reply.code(201).type('application/json; charset=utf-8').header('vary', 'Prefer');
      // Sent as text: the route's 201 is one of two shapes, and a serializer compiled for the
      // union would test each answer against both schemas first.
      if (!prefersMinimal(req.headers.prefer)) return reply.send(JSON.stringify({ items: results.map((r) => (r.deduplicated ? { created: r.created, deduplicated: r.deduplicated, task: r.ref } : { created: r.created, task: r.ref })) }));
      const existing: number[] = [];
      let ids = '';
      results.forEach((r, i) => {
        ids += i === 0 ? r.ref.id : `,${r.ref.id}`;
        if (!r.created) existing.push(i);
      });
      return reply.header('preference-applied', 'return=minimal').send(`{"ids":"${ids}","existing":[${existing.join(',')}]}`);
    },
    async listTasks(req) {
      const q = req.query;
      const cursor = decodeCursor(q.cursor, ['id'] as const);
      if (cursor && !isTaskId(cursor.id)) throw badRequest('/query/cursor', 'is not a cursor this server issued');
      const limit = q.limit ?? 50;
      const tasks = await engine.listTasks({
        states: q.state, queue: q.queue, type: q.type, tag: q.tag,
        createdFrom: q.createdFrom ? parseTime(q.createdFrom, '/query/createdFrom') : undefined,
        createdBefore: q.createdBefore ? parseTime(q.createdBefore, '/query/createdBefore') : undefined,
        beforeId: cursor?.id, limit,
      });
      return { items: tasks.map(taskJson), nextCursor: tasks.length === limit ? encodeCursor({ id: tasks.at(-1)!.id }) : null };
    },
    async getTask(req) {
      const [task, attempts] = await Promise.all([engine.getTask(req.params.id), engine.getAttempts(req.params.id)]);
      return { ...taskJson(task), attempts: attempts.map(attemptJson) };
    },
    async explainTask(req) {
      return explanationJson(await engine.explainTask(req.params.id));
    },
    async updateTask(req) {
      const { priority, runAt } = req.body;
      return taskJson(await engine.updateTask(req.params.id, { priority, runAt: runAt ? parseTime(runAt, '/body/runAt') : undefined }));
    },
    async cancelTask(req) {
      return taskJson(await engine.cancelTask(req.params.id));
    },
    async retryTask(req) {
      return taskJson(await engine.retryTask(req.params.id));
    },
  };
}
