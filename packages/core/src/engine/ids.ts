/** Ids as the API sees them: task ids are bigint decimal strings, worker ids are UUIDs. */

const MAX_BIGINT = 9223372036854775807n;

/** A string PostgreSQL will accept as a task id (else the task cannot exist). */
export function isTaskId(id: string): boolean {
  return /^[1-9][0-9]{0,18}$/.test(id) && BigInt(id) <= MAX_BIGINT;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(id: string): boolean {
  return UUID.test(id);
}
