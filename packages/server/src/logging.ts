/**
 * The service's logger: pino, JSON lines, with errors written by core's `errorLog` (message,
 * SQLSTATE or code, the failed statement's name, a short stack; never a driver's client object
 * or SQL text, and no line over 2 KB). Every logger the service uses goes through here.
 */
import pino, { type Logger as PinoLogger } from 'pino';
import { errorLog } from '@taskflow/core';

const serializers = { err: (err: unknown) => errorLog(err) };

/** A new logger at `level` writing to stdout (or to `destination`: tests read what it writes). */
export function createLogger(level: string, destination?: pino.DestinationStream): PinoLogger {
  return destination ? pino({ level, serializers }, destination) : pino({ level, serializers });
}

/** `logger` (one a caller made, such as a test's) with the service's error serializer. */
export function withReadableErrors(logger: PinoLogger): PinoLogger {
  return logger.child({}, { serializers });
}
