/** Ids as the API sees them: task ids are bigint decimal strings, worker ids are UUIDs. */

const MAX_BIGINT = '9223372036854775807';

/**
 * A string PostgreSQL will accept as a task id (else the task cannot exist). Decimals of equal
 * length compare as strings do: only one of 19 digits is compared, and no BigInt is made (this
 * runs for every result a worker reports).
 */
export function isTaskId(id: string): boolean {
  return /^[1-9][0-9]{0,18}$/.test(id) && (id.length < MAX_BIGINT.length || id <= MAX_BIGINT);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(id: string): boolean {
  return UUID.test(id);
}
