/**
 * The service's logger: pino JSON on stdout, one line per event, the level from LOG_LEVEL.
 * Secrets never reach a line: the paths below are censored wherever a caller would put them
 * (explicit paths; pino's wildcards cost far more), and no code logs a payload, a result or a
 * request body in the first place (docs/operations.md, "Logs").
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { IncomingMessage } from 'node:http';
import pino, { type Logger } from 'pino';

export const REDACTED_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', 'res.headers["set-cookie"]',
  'headers.authorization', 'headers.cookie', 'headers["x-api-key"]',
  'authorization', 'apiKey', 'secret', 'password', 'token', 'payload', 'result',
];

export function createLogger(level: string, version: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid, hostname: hostname(), service: 'taskflow-server', version },
    redact: { paths: REDACTED_PATHS, censor: '[Redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** An inbound request id of this shape is kept (and echoed); any other is replaced. */
const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Fastify's genReqId: the caller's `x-request-id` if well-formed, else a new UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const inbound = req.headers['x-request-id'];
  return typeof inbound === 'string' && REQUEST_ID.test(inbound) ? inbound : randomUUID();
}
