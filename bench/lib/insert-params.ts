/**
 * The parameters of the engine's insert statements (taskInsertMany and its variants) for
 * no-op tasks that take every default, built by the engine's own insertColumns, for the
 * harnesses that run the statements alone (diagnose.ts, pg-instructions.ts).
 */
import { insertColumns, type ResolvedInput } from '../../packages/core/src/engine/insertColumns.ts';
import { DEFAULT_ENGINE_OPTIONS as O } from '../../packages/core/src/engine/options.ts';

/** `count` tasks of type `noop` with payloads `{"p":"d","i":from+k}`; now is the database's. */
export function noopInsertParams(from: number, count: number, queue = 'work'): unknown[] {
  const items: ResolvedInput[] = Array.from({ length: count }, (_, k) => ({
    queue, type: 'noop', payloadJson: `{"p":"d","i":${from + k}}`, priority: 0, maxAttempts: O.defaultMaxAttempts,
    backoff: O.defaultBackoff, timeoutMs: O.defaultTimeoutMs, tags: [], contentType: null,
  }));
  return [...insertColumns(items, O), null, O.defaultMaxAttempts, JSON.stringify(O.defaultBackoff), O.defaultTimeoutMs];
}
