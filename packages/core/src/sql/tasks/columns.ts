/** How task columns come back: the columns of a full read, and times as RFC 3339 text. */
import { TASK_FIELD_LIST } from '../../engine/taskFields.ts';

/**
 * Columns a task read returns: the column of every field of TASK_FIELDS, in order (`id, queue,
 * type, state, priority, run_at, payload, payload_bytes, ...`). Payload and result are parsed
 * by the driver; bytes come as bytea, encoded to base64 in Node (PostgreSQL's encode() wraps
 * lines every 76 characters).
 */
export const TASK_COLUMNS = TASK_FIELD_LIST.map((f) => f.column).join(', ');

/**
 * RFC 3339 text of a timestamptz, made by PostgreSQL (no Date parse and re-format in Node).
 * Not on the claim, where each task has two times: there they come back as seconds since the
 * epoch (`date_part`, a float8) and Node formats them (engine/rows.ts, isoOfEpoch; see
 * claimCtes for why).
 */
export const iso = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
