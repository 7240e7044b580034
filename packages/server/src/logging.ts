/**
 * The service's logger: pino, JSON lines, with errors written by core's `errorLog` (message,
 * SQLSTATE or code, the failed statement's name, a short stack; never a driver's client object
 * or SQL text, and no line over 2 KB). Every logger the service uses goes through here.
 */
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import pino, { type Logger as PinoLogger } from 'pino';
import { errorLog } from '@taskflow/core';

const serializers = { err: (err: unknown) => errorLog(err) };

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * Censored (`[Redacted]`) wherever a careless line would put a secret: explicit paths, since
 * pino's wildcards cost far more. No code logs a payload, a result or a request body in the
 * first place (docs/operations.md, "Logs").
 */
export const REDACTED_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', 'res.headers["set-cookie"]',
  'headers.authorization', 'headers.cookie', 'headers["x-api-key"]',
  'authorization', 'apiKey', 'secret', 'password', 'token', 'payload', 'result',
];

/** A new logger at `level` writing to stdout (or to `destination`: tests read what it writes). */
export function createLogger(level: string, destination?: pino.DestinationStream): PinoLogger {
  const options: pino.LoggerOptions = {
    level, serializers,
    base: { pid: process.pid, hostname: hostname(), service: 'taskflow-server', version },
    redact: { paths: REDACTED_PATHS, censor: '[Redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** `logger` (one a caller made, such as a test's) with the service's error serializer. */
export function withReadableErrors(logger: PinoLogger): PinoLogger {
  return logger.child({}, { serializers });
}
