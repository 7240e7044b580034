/**
 * Every error response is RFC 9457 problem JSON with a stable `code`. This is the one place
 * errors become responses: validation failures name each field and what was expected; engine
 * errors map by class; anything unexpected is a 500 that is logged with its stack.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorObject } from 'ajv';
import {
  AdmissionRefusedError, AlreadyExistsError, classifyDatabaseError, DatabaseUnavailableError, InvalidGraphError, InvalidInputError,
  InvalidStateError, mapStorageError, NotFoundError, ResultTooLargeError, StaleAttemptError,
} from '@taskflow/core';
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

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  errors?: FieldError[];
  /** 429 `queue_full`: the tasks admission control refused. */
  refused?: AdmissionRefusedError['refused'];
}

/** A problem and how long a client should wait before retrying (`Retry-After`, seconds; every 503 has one). */
const retryAfters = new WeakMap<ProblemBody, number>();

function problem(status: number, code: string, title: string, detail: string, errors?: FieldError[]): ProblemBody {
  return { type: `urn:taskflow:problem:${code}`, title, status, detail, code, ...(errors && errors.length ? { errors } : {}) };
}

/** The `Retry-After` of a problem, in seconds: its own, or 1 for any 503; undefined for other statuses. */
export function retryAfterOf(body: ProblemBody): number | undefined {
  return retryAfters.get(body) ?? (body.status === 503 ? 1 : undefined);
}

/**
 * The database cannot answer now (down, restarting, out of connections, a statement timeout):
 * 503 with Retry-After, on every route. What the request did is unknown when it was a write;
 * a client repeats it safely with an idempotency key (docs/protocol.md).
 */
function unavailable(err: DatabaseUnavailableError): ProblemBody {
  const body = problem(503, 'database_unavailable', 'Database unavailable', `the database cannot answer now (${err.message}); retry after ${err.retryAfterSeconds} s`);
  retryAfters.set(body, err.retryAfterSeconds);
  return body;
}

/**
 * The longest path parameter the router accepts, characters as sent (percent-encoded). Three
 * times the contract's longest (a queue name of 100): a parameter within that is checked by
 * the contract, which names the field; a longer one is a 414.
 */
export const MAX_PARAM_LENGTH = 300;

const FASTIFY_CODES: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large', 'Payload too large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'Unsupported media type'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_content_length', 'Invalid Content-Length'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json', 'Invalid JSON'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json', 'Invalid JSON'],
  // Answered by the router before any route (the `frameworkErrors` option sends them here).
  FST_ERR_BAD_URL: [400, 'invalid_url', 'Invalid URL'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'uri_too_long', 'URI too long'],
};

function fastifyDetail(code: string, fe: FastifyError, maxBodyBytes: number): string {
  switch (code) {
    case 'payload_too_large':
      return `the request body is larger than the limit of ${maxBodyBytes} bytes for this endpoint`;
    case 'invalid_json':
      return `the request body is not valid JSON: ${fe.message}`;
    case 'invalid_url':
      return 'the path is not a valid URL: a percent-encoded sequence (%XX) does not decode to UTF-8';
    case 'uri_too_long':
      return `a segment of the path is longer than ${MAX_PARAM_LENGTH} characters`;
    default:
      return fe.message;
  }
}

/** The problem for an error thrown anywhere in a request. */
export function toProblem(err: unknown, maxBodyBytes: number): ProblemBody {
  if (err instanceof HttpProblem) return problem(err.status, err.code, err.title, err.message, err.errors);
  if (err instanceof NotFoundError) return problem(404, 'not_found', 'Not found', err.message);
  if (err instanceof StaleAttemptError) return problem(409, 'stale_attempt', 'Stale attempt', err.message);
  if (err instanceof AlreadyExistsError) {
    const field = `/body/${err.field}`;
    return problem(409, 'already_exists', 'Already exists', `${field} is taken: ${err.message}`, [{ field, message: 'is taken' }]);
  }
  if (err instanceof AdmissionRefusedError) {
    const body: ProblemBody = { ...problem(429, 'queue_full', 'Queue full', err.message), refused: err.refused };
    retryAfters.set(body, Math.ceil(err.retryAfterMs / 1000));
    return body;
  }
  if (err instanceof InvalidStateError) return problem(409, 'invalid_state', 'Conflict with the current state', err.message);
  if (err instanceof WorkerNotActiveError) return problem(409, err.code, err.title, err.message);
  if (err instanceof ResultTooLargeError) return problem(413, 'result_too_large', 'Result too large', err.message);
  if (err instanceof InvalidGraphError) {
    const errors = err.problems.map((p) => ({ field: `/body/${p.field}`, message: p.message }));
    return problem(400, 'invalid_graph', 'Invalid workflow', errors.map((e) => `${e.field} ${e.message}`).join('; '), errors);
  }
  if (err instanceof InvalidInputError) return problem(400, 'invalid_input', 'Invalid input', err.message, [{ field: `/${err.field}`, message: err.message }]);
  if (err instanceof DatabaseUnavailableError) return unavailable(err);
  const fe = err as FastifyError & { validationContext?: string };
  if (fe.validation) {
    const errors = fieldErrors(fe.validation as ErrorObject[], fe.validationContext ?? 'body');
    const detail = errors.map((e) => `${e.field} ${e.message}`).join('; ');
    return problem(400, 'validation_failed', 'Invalid request', detail, errors);
  }
  const known = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (known) {
    const [status, code, title] = known;
    return problem(status, code, title, fastifyDetail(code, fe, maxBodyBytes));
  }
  if (err instanceof SyntaxError) return problem(400, 'invalid_json', 'Invalid JSON', `the request body is not valid JSON: ${err.message}`);
  // A value the database refused as data that no edge check caught is still the caller's input.
  const stored = mapStorageError(err);
  if (stored instanceof InvalidInputError) return problem(400, 'invalid_input', 'Invalid input', stored.message);
  // A driver error that reached here unclassified (a connection error outside a statement).
  const driver = classifyDatabaseError(err);
  if (driver instanceof DatabaseUnavailableError) return unavailable(driver);
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return problem(fe.statusCode, 'bad_request', 'Bad request', fe.message);
  }
  return problem(500, 'internal_error', 'Internal error', 'the server failed to handle this request; it has been logged');
}

/** The methods a path allows, for a 405 (`Allow`). */
export function methodNotAllowed(method: string, path: string, allowed: string[]): HttpProblem {
  return new HttpProblem(405, 'method_not_allowed', 'Method not allowed', `${method} is not allowed on ${path}; it allows ${allowed.join(', ')}`);
}

/** A request's query string has more parameters than any route takes. */
export function tooManyParameters(count: number, limit: number): HttpProblem {
  return new HttpProblem(400, 'too_many_parameters', 'Too many parameters', `the query string has ${count} parameters; at most ${limit} are accepted`);
}

/** A node that is stopping: the client should retry, on this node once it is back or on another. */
export function shuttingDown(): HttpProblem {
  return new HttpProblem(503, 'shutting_down', 'Service shutting down', 'this node is stopping; retry the request (on another node, or on this one once it is back)');
}

/** An HTTP/1.1 request without a Host header (RFC 9112 section 3.2), which Node would answer with an empty 400. */
export function missingHost(): HttpProblem {
  return new HttpProblem(400, 'missing_host', 'Missing Host header', 'an HTTP/1.1 request must carry a Host header');
}

type ParserError = NodeJS.ErrnoException & { rawPacket?: Buffer; reason?: string };

/**
 * The problem for a request Node's HTTP parser refused before Fastify saw it (the server's
 * `clientError`): a malformed request line or header, a bad Content-Length or chunk, headers
 * over the size limit, a request that took too long. Undefined when there is nobody to answer
 * (the connection was reset).
 */
export function parserProblem(err: ParserError): ProblemBody | undefined {
  const code = err.code ?? '';
  if (code === 'ECONNRESET' || code === 'EPIPE') return undefined;
  const reason = err.reason ?? err.message;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return problem(408, 'request_timeout', 'Request timeout', 'the request was not received in time');
  }
  if (code === 'HPE_HEADER_OVERFLOW') {
    // Node counts the request line in the header size: a request line that never ended is a URL over the limit.
    const raw = err.rawPacket?.subarray(0, 65_536).toString('latin1') ?? '';
    const lineEnd = raw.indexOf('\r\n');
    if (/^[A-Z]+ \S/.test(raw) && (lineEnd === -1 || lineEnd > 8192)) {
      return problem(414, 'uri_too_long', 'URI too long', 'the request line (method and URL) is longer than the server accepts');
    }
    return problem(431, 'headers_too_large', 'Request header fields too large', 'the request line and headers are larger than the server accepts (16 KiB)');
  }
  if (code === 'HPE_INVALID_CONTENT_LENGTH' || code === 'HPE_UNEXPECTED_CONTENT_LENGTH') {
    return problem(400, 'invalid_content_length', 'Invalid Content-Length', `the Content-Length header is not valid (${reason})`);
  }
  return problem(400, 'malformed_request', 'Malformed request', `the request is not valid HTTP/1.1 (${code ? `${code}: ` : ''}${reason})`);
}

/** A whole HTTP response carrying `body`, for a socket Fastify never turned into a request. */
export function rawProblemResponse(body: ProblemBody): string {
  const json = JSON.stringify(body);
  return [
    `HTTP/1.1 ${body.status} ${STATUS_CODES[body.status] ?? 'Error'}`,
    'Content-Type: application/problem+json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(json)}`,
    'Connection: close',
    '',
    json,
  ].join('\r\n');
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, body: ProblemBody): FastifyReply {
  const retryAfter = retryAfterOf(body);
  if (retryAfter !== undefined && !reply.hasHeader('retry-after')) reply.header('Retry-After', String(retryAfter));
  return reply
    .code(body.status)
    .type('application/problem+json')
    .send({ ...body, instance: request.url.split('?')[0] });
}
