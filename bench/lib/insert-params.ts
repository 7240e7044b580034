/**
 * The parameters of the engine's insert statements (`statements.insert…` of
 * `@taskflow/core/internal`) for no-op tasks that take every default, for the harnesses that
 * run the statements alone (diagnose/, pg-instructions.ts).
 */
import { DEFAULT_ENGINE_OPTIONS as O } from '@taskflow/core';
import { insertParams, type ResolvedInput } from '@taskflow/core/internal';

/** `count` tasks of type `noop` with payloads `{"p":"d","i":from+k}`; now is the database's. */
export function noopInsertParams(from: number, count: number, queue = 'work'): unknown[] {
  const items: ResolvedInput[] = Array.from({ length: count }, (_, k) => ({
    queue, type: 'noop', payloadJson: `{"p":"d","i":${from + k}}`, priority: 0, maxAttempts: O.defaultMaxAttempts,
    backoff: O.defaultBackoff, timeoutMs: O.defaultTimeoutMs, tags: [], contentType: null,
  }));
  return insertParams(items);
}
