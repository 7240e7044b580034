import { Type, type Static } from 'typebox';
import { QueueName, Timestamp } from './common.ts';

export const Queue = Type.Object(
  {
    name: Type.String(),
    paused: Type.Boolean(),
    pausedAt: Type.Union([Timestamp, Type.Null()]),
    createdAt: Timestamp,
    counts: Type.Record(Type.String(), Type.Integer(), { description: 'Tasks per state (states with none are absent).' }),
    oldestReadyAt: Type.Union([Timestamp, Type.Null()]),
    oldestReadyAgeMs: Type.Integer({ description: 'How long the oldest ready task has waited, ms (0 when none).' }),
  },
  {},
);
export type Queue = Static<typeof Queue>;

export const QueueList = Type.Object({ items: Type.Array(Queue) });
export const QueueParams = Type.Object({ name: QueueName });
