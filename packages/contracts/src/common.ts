import { Type, type Static } from 'typebox';

/** RFC 9457 problem details, as every error response carries them. */
export const Problem = Type.Object(
  {
    type: Type.String({ description: 'A stable URI for the kind of problem: `urn:taskflow:problem:<code>`.' }),
    title: Type.String({ description: 'Short summary of the kind of problem.' }),
    status: Type.Integer({ description: 'The HTTP status code.' }),
    detail: Type.String({ description: 'What went wrong with this request, naming the field and what was expected.' }),
    code: Type.String({ description: 'The stable machine-readable code (the last part of `type`).' }),
    instance: Type.Optional(Type.String({ description: 'The request path.' })),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          field: Type.String({ description: 'JSON pointer into the request (`/body/priority`, `/query/limit`).' }),
          message: Type.String(),
        }),
      ),
    ),
  },
  { description: 'RFC 9457 problem details' },
);
export type Problem = Static<typeof Problem>;

/**
 * A problem whose `code` is one of `codes`: what a route answers with a given status, stated
 * in the contract so that a client branches on a code the route can give (`worker_lost`,
 * `worker_stopped`), not on the text of `detail`.
 */
export function ProblemOf<const C extends string[]>(codes: [...C], description: string) {
  return Type.Object(
    { ...Problem.properties, code: Type.Enum(codes, { description: 'The stable machine-readable code (the last part of `type`): branch on it.' }) },
    { description },
  );
}

export const TaskId = Type.String({
  pattern: '^[1-9][0-9]{0,18}$',
  description: 'Task id: a positive integer, as a string.',
  examples: ['42'],
});

export const WorkerId = Type.String({ format: 'uuid', description: 'Worker id (UUID).' });

export const QueueName = Type.String({
  minLength: 1,
  maxLength: 100,
  pattern: '^[A-Za-z0-9_.:-]+$',
  description: 'Queue name: letters, digits and `_ . : -`, at most 100 characters.',
  examples: ['default'],
});

export const TypeName = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: '^[^\\u0000-\\u001f]+$',
  description: 'Task type: names the handler (`email.send`); no control characters, at most 200 characters.',
  examples: ['email.send'],
});

export const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339 timestamp.' });

export const Cursor = Type.String({ minLength: 1, maxLength: 200, description: 'Opaque cursor from `nextCursor` of the previous page.' });

export const Limit = Type.Integer({ minimum: 1, maximum: 500, default: 50, description: 'Page size (1–500).' });

/** A cursor-paginated list. */
export function Page<T extends Parameters<typeof Type.Array>[0]>(item: T) {
  return Type.Object({
    items: Type.Array(item),
    nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `cursor` for the next page; null on the last page.' }),
  });
}

const HealthStatus = Type.Enum(['pass', 'warn', 'fail'], { description: 'pass and warn answer 200, fail 503.' });

/** One measurement of a component, as draft-inadarei-api-health-check-06 shapes it. */
export const HealthCheck = Type.Object({
  componentType: Type.Optional(Type.String({ description: '`datastore` or `system`.' })),
  status: HealthStatus,
  observedValue: Type.Optional(Type.Unknown({ description: 'Admin key only: the value measured.' })),
  observedUnit: Type.Optional(Type.String({ description: 'Admin key only: its unit (`ms`).' })),
  time: Type.Optional(Type.String({ format: 'date-time', description: 'Admin key only: when it was measured.' })),
  output: Type.Optional(Type.String({ description: 'Admin key only: why it is not pass.' })),
});

/** `application/health+json` (draft-inadarei-api-health-check-06). */
export const Health = Type.Object({
  status: HealthStatus,
  version: Type.Optional(Type.String({ description: 'Major version of the API.' })),
  releaseId: Type.Optional(Type.String({ description: 'Admin key only: the server\'s release.' })),
  checks: Type.Optional(Type.Record(Type.String(), Type.Array(HealthCheck), {
    description: 'By `component:measurement`: postgres:responseTime, postgres:schema, redis:connection, server:draining. Without an admin key, each check\'s status only.',
  })),
});

/** 429 from a submission: admission control refused it (nothing of it was written). */
export const QueueFullProblem = Type.Object(
  {
    ...Problem.properties,
    code: Type.Enum(['queue_full']),
    refused: Type.Array(
      Type.Object({
        index: Type.Integer({ minimum: 0, description: 'Position of the task in the submission (0 for a single task).' }),
        queue: Type.String(),
        reason: Type.Enum(['max_depth', 'max_age']),
      }),
      { description: 'The tasks that did not fit. The submission is all or nothing: the others were not written either.' },
    ),
  },
  { description: 'A queue\'s admission control (maxDepth, maxAgeMs) refused the submission; nothing of it was written. Retry after `Retry-After` seconds, or submit only what fits.' },
);
