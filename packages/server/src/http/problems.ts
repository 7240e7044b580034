/**
 * Every error response is RFC 9457 problem JSON with a stable `code`. This is the one place
 * errors become responses: validation failures name each field and what was expected; engine
 * errors map by class; anything unexpected is a 500 that is logged with its stack.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorObject } from 'ajv';
import { AlreadyExistsError, InvalidInputError, InvalidStateError, mapStorageError, NotFoundError, StaleAttemptError } from '@taskflow/core';
import { WorkerNotActiveError } from '../claims/longPoll.ts';

export interface FieldError {
  field: string;
  message: string;
}

/** An error that already knows its response. Route code throws these for edge-only checks. */
export class HttpProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly errors: FieldError[] | undefined;
  constructor(status: number, code: string, title: string, detail: string, errors?: FieldError[]) {
    super(detail);
    this.status = status;
    this.code = code;
    this.title = title;
    this.errors = errors;
  }
}

export function badRequest(field: string, message: string): HttpProblem {
  return new HttpProblem(400, 'validation_failed', 'Invalid request', `${field} ${message}`, [{ field, message }]);
}

export function tooLarge(field: string, message: string): HttpProblem {
  return new HttpProblem(413, 'payload_too_large', 'Payload too large', `${field} ${message}`, [{ field, message }]);
}

const PART: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'headers' };

/** Turns ajv errors into field errors: `/body/tasks/0/priority must be integer`. */
export function fieldErrors(errors: ErrorObject[], context: string): FieldError[] {
  const base = `/${PART[context] ?? context}`;
  // A value that matched no branch of a union: one message for it, not one per branch.
  const unionPaths = errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath);
  const out: FieldError[] = [];
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && unionPaths.some((p) => e.instancePath.startsWith(p) && e.schemaPath.includes('anyOf'))) continue;
    const field = base + e.instancePath;
    switch (e.keyword) {
      case 'required':
        out.push({ field: `${field}/${e.params.missingProperty}`, message: 'is required' });
        break;
      case 'additionalProperties':
        out.push({ field: `${field}/${e.params.additionalProperty}`, message: 'is not a known field' });
        break;
      case 'enum':
        out.push({ field, message: `must be one of: ${(e.params.allowedValues as unknown[]).join(', ')}` });
        break;
      case 'anyOf':
        out.push({ field, message: `does not match any allowed form${e.parentSchema?.description ? ` (${e.parentSchema.description})` : ''}` });
        break;
      case 'format':
        out.push({ field, message: `must be a valid ${e.params.format}` });
        break;
      case 'pattern':
        out.push({ field, message: `must match ${e.params.pattern}${e.parentSchema?.description ? ` (${e.parentSchema.description})` : ''}` });
        break;
      default:
        out.push({ field, message: e.message ?? 'is invalid' });
    }
  }
  return dedupe(out);
}

function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.field}\u0000${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  errors?: FieldError[];
}

function problem(status: number, code: string, title: string, detail: string, errors?: FieldError[]): ProblemBody {
  return { type: `urn:taskflow:problem:${code}`, title, status, detail, code, ...(errors && errors.length ? { errors } : {}) };
}

const FASTIFY_CODES: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large', 'Payload too large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'Unsupported media type'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_content_length', 'Invalid Content-Length'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json', 'Invalid JSON'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json', 'Invalid JSON'],
};

/** The problem for an error thrown anywhere in a request. */
export function toProblem(err: unknown, maxBodyBytes: number): ProblemBody {
  if (err instanceof HttpProblem) return problem(err.status, err.code, err.title, err.message, err.errors);
  if (err instanceof NotFoundError) return problem(404, 'not_found', 'Not found', err.message);
  if (err instanceof StaleAttemptError) return problem(409, 'stale_attempt', 'Stale attempt', err.message);
  if (err instanceof AlreadyExistsError) {
    const field = `/body/${err.field}`;
    return problem(409, 'already_exists', 'Already exists', `${field} is taken: ${err.message}`, [{ field, message: 'is taken' }]);
  }
  if (err instanceof InvalidStateError) return problem(409, 'invalid_state', 'Conflict with the current state', err.message);
  if (err instanceof WorkerNotActiveError) return problem(409, err.code, err.title, err.message);
  if (err instanceof InvalidInputError) return problem(400, 'invalid_input', 'Invalid input', err.message, [{ field: `/${err.field}`, message: err.message }]);
  const fe = err as FastifyError & { validationContext?: string };
  if (fe.validation) {
    const errors = fieldErrors(fe.validation as ErrorObject[], fe.validationContext ?? 'body');
    const detail = errors.map((e) => `${e.field} ${e.message}`).join('; ');
    return problem(400, 'validation_failed', 'Invalid request', detail, errors);
  }
  const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (known) {
    const [status, code, title] = known;
    const detail = code === 'payload_too_large'
      ? `the request body is larger than the limit of ${maxBodyBytes} bytes for this endpoint`
      : code === 'invalid_json' ? `the request body is not valid JSON: ${fe.message}` : fe.message;
    return problem(status, code, title, detail);
  }
  if (err instanceof SyntaxError) return problem(400, 'invalid_json', 'Invalid JSON', `the request body is not valid JSON: ${err.message}`);
  // A value the database refused as data that no edge check caught is still the caller's input.
  const stored = mapStorageError(err);
  if (stored instanceof InvalidInputError) return problem(400, 'invalid_input', 'Invalid input', stored.message);
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return problem(fe.statusCode, 'bad_request', 'Bad request', fe.message);
  }
  return problem(500, 'internal_error', 'Internal error', 'the server failed to handle this request; it has been logged');
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, body: ProblemBody): FastifyReply {
  return reply
    .code(body.status)
    .type('application/problem+json')
    .send({ ...body, instance: request.url.split('?')[0] });
}
