/**
 * The engine's typed errors. Each has a stable `code` that the HTTP layer maps to a problem
 * type and status; callers branch on the class, never on the message.
 */

export class TaskflowError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The entity does not exist. */
export class NotFoundError extends TaskflowError {
  readonly entity: string;
  readonly id: string;
  constructor(entity: string, id: string) {
    super('not_found', `${entity} ${id} does not exist`);
    this.entity = entity;
    this.id = id;
  }
}

/** The entity exists but its state does not allow the operation. */
export class InvalidStateError extends TaskflowError {
  readonly state: string;
  constructor(message: string, state: string) {
    super('invalid_state', message);
    this.state = state;
  }
}

/** An entity with this unique value exists already (a schedule's name). */
export class AlreadyExistsError extends TaskflowError {
  readonly field: string;
  constructor(entity: string, field: string, value: string) {
    super('already_exists', `a ${entity} with ${field} ${JSON.stringify(value)} exists already`);
    this.field = field;
  }
}

/** A result carried a fencing token (attempt) that is no longer current. */
export class StaleAttemptError extends TaskflowError {
  constructor(taskId: string, attempt: number) {
    super('stale_attempt', `attempt ${attempt} of task ${taskId} is not the current attempt held by this worker; its result was refused`);
  }
}

/**
 * A success whose result is too large to hand to the task's children (MAX_PARENT_RESULT_BYTES);
 * nothing of the report it came in was recorded.
 */
export class ResultTooLargeError extends TaskflowError {
  readonly taskId: string;
  constructor(taskId: string, bytes: number, limit: number) {
    super('result_too_large', `the result of task ${taskId} is ${bytes} bytes of JSON; a task with children may return at most ${limit} bytes, which its children receive in their claims (docs/workflows.md)`);
    this.taskId = taskId;
  }
}

/** Input the engine cannot store (what schema validation at the edge could not see). */
export class InvalidInputError extends TaskflowError {
  readonly field: string;
  constructor(field: string, message: string, options?: ErrorOptions) {
    super('invalid_input', message, options);
    this.field = field;
  }
}

/**
 * A workflow whose graph cannot be stored: duplicate or unknown references, a cycle, or too
 * large. `problems` names every offending field (pointers relative to the input, e.g.
 * `tasks/3/dependsOn/0`).
 */
export class InvalidGraphError extends InvalidInputError {
  readonly problems: readonly { field: string; message: string }[];
  constructor(problems: readonly { field: string; message: string }[]) {
    super(problems[0]!.field, problems.map((p) => `${p.field} ${p.message}`).join('; '));
    this.problems = problems;
  }
}

/** The database holds a schema newer than this build knows; refusing to run on it. */
export class SchemaTooNewError extends TaskflowError {
  constructor(schema: string, databaseVersion: number, codeVersion: number) {
    super(
      'schema_too_new',
      `schema "${schema}" is at migration ${databaseVersion}, but this build of Taskflow knows migrations up to ${codeVersion}. ` +
        'Upgrade Taskflow to the version that migrated this database (or point it at another schema); refusing to start.',
    );
  }
}

/**
 * The database cannot answer now: unreachable, shutting down or starting up, out of
 * connections, a statement that timed out, or a race lost more often than the engine retries.
 * Nothing the caller did is wrong; the same request may pass in a moment (HTTP: 503 with
 * Retry-After). Whether a write that failed so was committed is unknown.
 */
export class DatabaseUnavailableError extends TaskflowError {
  /** The SQLSTATE, or the driver's error code (ECONNREFUSED), when there is one. */
  readonly sqlState: string | undefined;
  /** The named statement that failed, when known. */
  readonly statement: string | undefined;
  /** How long a client should wait before trying again, seconds. */
  readonly retryAfterSeconds: number;
  constructor(message: string, opts: { cause?: unknown; sqlState?: string; statement?: string; retryAfterSeconds?: number } = {}) {
    super('database_unavailable', message, { cause: opts.cause });
    this.sqlState = opts.sqlState;
    this.statement = opts.statement;
    this.retryAfterSeconds = opts.retryAfterSeconds ?? 1;
  }
}

/** PostgreSQL error codes the engine reacts to (SQLSTATE). */
export const PG_ERROR = {
  uniqueViolation: '23505',
  checkViolation: '23514',
  notNullViolation: '23502',
  invalidTextRepresentation: '22P02',
  numericValueOutOfRange: '22003',
  datetimeFieldOverflow: '22008',
  invalidDatetimeFormat: '22007',
  invalidParameterValue: '22023',
  stringDataRightTruncation: '22001',
  untranslatableCharacter: '22P05',
  characterNotInRepertoire: '22021',
  deadlockDetected: '40P01',
  serializationFailure: '40001',
} as const;

const INPUT_CODES = new Set<string>([
  PG_ERROR.invalidTextRepresentation,
  PG_ERROR.numericValueOutOfRange,
  PG_ERROR.datetimeFieldOverflow,
  PG_ERROR.invalidDatetimeFormat,
  PG_ERROR.invalidParameterValue,
  PG_ERROR.stringDataRightTruncation,
  PG_ERROR.untranslatableCharacter,
  PG_ERROR.characterNotInRepertoire,
  PG_ERROR.checkViolation,
  PG_ERROR.notNullViolation,
]);

/** The SQLSTATE of a driver error, if it has one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Whether PostgreSQL aborted a statement because it lost a race with another transaction (a
 * deadlock, or a serialization failure): nothing it did remains, and run again it may pass.
 */
export function lostRace(err: unknown): boolean {
  const state = sqlState(err) ?? (err as { sqlState?: string } | null)?.sqlState;
  return state === PG_ERROR.deadlockDetected || state === PG_ERROR.serializationFailure;
}

/**
 * The one place storage errors become user-facing ones: a value PostgreSQL rejects as data
 * (out of range, malformed, a \u0000 in text) is the caller's input, not a server fault.
 */
export function mapStorageError(err: unknown, field = 'body'): unknown {
  const state = sqlState(err);
  if (state && INPUT_CODES.has(state)) {
    const message = (err as Error).message;
    return new InvalidInputError(field, `the database refused a value: ${message}`, { cause: err });
  }
  return err;
}

/** Why a database is unavailable, by SQLSTATE or SQLSTATE class (two characters), and the Retry-After for it. */
const UNAVAILABLE_STATES: Record<string, { why: string; retryAfter: number }> = {
  '08': { why: 'the connection to the database failed', retryAfter: 2 },
  '57P01': { why: 'the database is shutting down', retryAfter: 2 },
  '57P02': { why: 'the database crashed and is restarting', retryAfter: 2 },
  '57P03': { why: 'the database is starting up or shutting down', retryAfter: 2 },
  '57P05': { why: 'the database closed an idle session', retryAfter: 1 },
  '57014': { why: 'the statement timed out or was cancelled', retryAfter: 1 },
  '53': { why: 'the database is out of a resource (connections, memory or disk)', retryAfter: 2 },
  '40P01': { why: 'the statement lost a race with another (deadlock)', retryAfter: 1 },
  '40001': { why: 'the statement lost a race with another (serialization failure)', retryAfter: 1 },
  '55P03': { why: 'a lock was not available in time', retryAfter: 1 },
  '25P03': { why: 'the database ended an idle transaction', retryAfter: 1 },
  '25006': { why: 'the database is read-only (a standby, or failing over)', retryAfter: 2 },
};

/** Socket errors of a database connection that could not be made or broke. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED',
]);

/**
 * The messages of driver errors that carry no code: node-postgres and its pool (a connection
 * ended under a query, the pool's connect timeout, a client or pool already closed) and PGlite
 * (an instance closing or closed).
 */
const DRIVER_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed|Cannot use a pool after calling end|Query read timeout|PGlite is clos)/;

/**
 * The one place driver errors are classified, for both drivers (db/postgres.ts, db/pglite.ts
 * call it on every failure). A database that cannot answer now, whatever the driver says, becomes
 * a DatabaseUnavailableError (503 with Retry-After at the HTTP edge); any other error is
 * returned as it is, with the statement's name attached for the log (see errorLog.ts).
 */
export function classifyDatabaseError(err: unknown, statement?: string): unknown {
  if (err instanceof DatabaseUnavailableError || err instanceof TaskflowError) return err;
  const e = err as { code?: unknown; message?: unknown; errno?: unknown } | null;
  const state = sqlState(err);
  const known = state ? (UNAVAILABLE_STATES[state] ?? UNAVAILABLE_STATES[state.slice(0, 2)]) : undefined;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : '';
  let why: string | undefined;
  let retryAfter = 2;
  if (known) ({ why, retryAfter } = known);
  else if (code && NETWORK_CODES.has(code)) why = `the database cannot be reached (${code})`;
  else if (DRIVER_MESSAGES.test(message)) why = 'the connection to the database failed or timed out';
  if (why === undefined) {
    if (statement !== undefined && err !== null && typeof err === 'object') attachStatement(err, statement);
    return err;
  }
  const detail = message ? `: ${message.length > 200 ? `${message.slice(0, 200)}…` : message}` : '';
  return new DatabaseUnavailableError(`${why}${detail}`, { cause: err, sqlState: state ?? code, statement, retryAfterSeconds: retryAfter });
}

const STATEMENT = Symbol.for('taskflow.statement');

/** Notes which named statement an error came from (not enumerable: never dumped by a logger). */
function attachStatement(err: object, statement: string): void {
  if (Object.isExtensible(err) && !(STATEMENT in err)) Object.defineProperty(err, STATEMENT, { value: statement, enumerable: false });
}

/** The named statement an error came from, when a driver knew it. */
export function statementOf(err: unknown): string | undefined {
  if (err instanceof DatabaseUnavailableError) return err.statement;
  const value = err !== null && typeof err === 'object' ? (err as Record<symbol, unknown>)[STATEMENT] : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** One task of a submission that admission control refused. */
export interface RefusedItem {
  /** Its position in the submission (0-based). */
  index: number;
  queue: string;
  /** `max_depth`: the queue holds its maxDepth of waiting tasks; `max_age`: its oldest ready task waited longer than maxAgeMs. */
  reason: 'max_depth' | 'max_age';
}

/**
 * A submission refused by a queue's admission control (maxDepth, maxAgeMs): nothing of it was
 * written. Retry after `retryAfterMs`, or submit fewer (`refused` names the tasks that did not fit).
 */
export class AdmissionRefusedError extends TaskflowError {
  readonly refused: RefusedItem[];
  readonly retryAfterMs: number;
  constructor(refused: RefusedItem[], retryAfterMs: number, detail: string) {
    super('queue_full', detail);
    this.refused = refused;
    this.retryAfterMs = retryAfterMs;
  }
}
