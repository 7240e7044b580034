/** How task columns come back: the columns of a full read, and times as RFC 3339 text. */

/**
 * Columns a task read returns (payload and result parsed by the driver; bytes as bytea, encoded
 * to base64 in Node: PostgreSQL's encode() wraps lines every 76 characters).
 */
export const TASK_COLUMNS = `id, queue, type, state, priority, run_at, payload, payload_bytes, content_type, result, attempt, attempt_base,
  max_attempts, backoff, timeout_ms, tags, idempotency_key, worker_id, lease_expires_at,
  cancel_requested, lease_losses, last_error, dead_reason, created_at, started_at, finished_at`;

/**
 * RFC 3339 text of a timestamptz, made by PostgreSQL (no Date parse and re-format in Node).
 * Not on the claim, where each task has two times: there they come back as seconds since the
 * epoch (`date_part`, a float8) and Node formats them (engine/rows.ts, isoOfEpoch). to_char was
 * 3.3% of the database's instructions for a claim and settlement of each task.
 */
export const iso = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
