/**
 * Idempotency keys the client makes up for a task without one (ClientOptions.idempotencyKeys):
 * a repeat of a submission whose answer was lost then answers the first task instead of making
 * a second one.
 */
import { randomUUID } from 'node:crypto';

/** `sdk:` and a random UUID (randomUUID draws from a cached pool of random bytes: ~0.1 µs). */
export function generateKey(): string {
  return `sdk:${randomUUID()}`;
}

/** `json`, a task serialised, with `"idempotencyKey": key` added: no copy of the task object. */
export function withKey(json: string, key: string): string {
  return `${json.slice(0, -1)}${json.length > 2 ? ',' : ''}"idempotencyKey":"${key}"}`;
}
