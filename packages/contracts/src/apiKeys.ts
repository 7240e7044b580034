import { Type, type Static } from 'typebox';
import { Timestamp } from './common.ts';

export const Scope = Type.Enum(['producer', 'worker', 'admin', 'read'], {
  description: 'producer: submit and manage tasks; worker: the worker protocol; admin: everything; '
    + 'read: read-only, the GETs of analytics, queues, tasks, workflows, schedules, workers, the DLQ, alert history and firing alerts.',
});
export type Scope = Static<typeof Scope>;

export const ApiKey = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    prefix: Type.String({ description: 'The first characters of the secret.' }),
    scopes: Type.Array(Scope),
    createdAt: Timestamp,
    lastUsedAt: Type.Union([Timestamp, Type.Null()]),
    revokedAt: Type.Union([Timestamp, Type.Null()]),
  },
  {},
);
export type ApiKey = Static<typeof ApiKey>;

export const ApiKeyInput = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    scopes: Type.Array(Scope, { minItems: 1, maxItems: 4, uniqueItems: true }),
  },
  { additionalProperties: false },
);
export type ApiKeyInput = Static<typeof ApiKeyInput>;

export const ApiKeyCreated = Type.Object({
  key: ApiKey,
  secret: Type.String({ description: 'The key itself. Shown once: store it now.' }),
});
export type ApiKeyCreated = Static<typeof ApiKeyCreated>;

export const ApiKeyList = Type.Object({ items: Type.Array(ApiKey) });
export const ApiKeyParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
