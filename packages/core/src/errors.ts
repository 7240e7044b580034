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

/** Input the engine cannot store (what schema validation at the edge could not see). */
export class InvalidInputError extends TaskflowError {
  readonly field: string;
  constructor(field: string, message: string, options?: ErrorOptions) {
    super('invalid_input', message, options);
    this.field = field;
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
