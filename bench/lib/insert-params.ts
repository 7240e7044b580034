/**
 * The parameters of the engine's insert statements (`statements.insert…` of
 * `@taskflow/core/internal`) for no-op tasks that take every default, for the harnesses that
 * run the statements alone (diagnose/, pg-instructions.ts).
 */
import { createHash } from 'node:crypto';
import { DEFAULT_ENGINE_OPTIONS as O } from '@taskflow/core';
import { insertParams, type ResolvedInput } from '@taskflow/core/internal';

/**
 * `count` tasks of type `noop` with payloads `{"p":"d","i":from+k}`; now is the database's.
 * `keyed`: each with an idempotency key shaped as the SDK makes them up (`sdk:` and a UUID),
 * spread as random ones are, but the same from run to run (a hash of the task's number).
 * `concurrencyKeys` > 0: each with a concurrency key, `tenant-<n mod concurrencyKeys>`.
 */
export function noopInsertParams(from: number, count: number, queue = 'work', keyed = false, concurrencyKeys = 0): unknown[] {
  const items: ResolvedInput[] = Array.from({ length: count }, (_, k) => ({
    queue, type: 'noop', payloadJson: `{"p":"d","i":${from + k}}`, priority: 0, maxAttempts: O.defaultMaxAttempts,
    backoff: O.defaultBackoff, timeoutMs: O.defaultTimeoutMs, tags: [], contentType: null,
    ...(keyed ? { idempotencyKey: uuidLike(from + k) } : {}),
    ...(concurrencyKeys > 0 ? { concurrencyKey: `tenant-${(from + k) % concurrencyKeys}` } : {}),
  }));
  return insertParams(items);
}

function uuidLike(n: number): string {
  const h = createHash('sha1').update(String(n)).digest('hex');
  return `sdk:${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
