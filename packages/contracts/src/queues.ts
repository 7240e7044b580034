import { Type, type Static } from 'typebox';
import { QueueName, Timestamp } from './common.ts';
import { Backoff } from './tasks.ts';

export const RateLimit = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 2147483647, description: 'Starts per interval.' }),
    intervalMs: Type.Integer({ minimum: 1, maximum: 86_400_000, description: 'The interval, ms.' }),
    burst: Type.Integer({ minimum: 1, maximum: 2147483647, description: 'Most starts at once, after an idle spell (the bucket\'s size).' }),
  },
  { additionalProperties: false, description: 'A rate limit on starts (GCRA / token bucket): `limit` per `intervalMs`, evenly spaced, up to `burst` at once.' },
);

const Limit = (description: string, maximum = 2147483647) => Type.Union([Type.Integer({ minimum: 1, maximum }), Type.Null()], { description });

const SETTINGS = {
  maxRunning: Limit('Running attempts at most over the whole queue (a slot is held by an unexpired lease); null: no cap.'),
  maxRunningPerKey: Limit('Running attempts at most per `concurrencyKey`; null: none.'),
  rateLimit: Type.Union([RateLimit, Type.Null()], { description: 'Starts over the whole queue; null: none.' }),
  rateLimitPerKey: Type.Union([RateLimit, Type.Null()], { description: 'Starts per `rateKey`; null: none.' }),
  maxDepth: Limit('A submit that would leave more waiting tasks (blocked, scheduled, queued, retrying) is refused with 429; null: none.'),
  maxAgeMs: Limit('A submit is refused with 429 while the oldest ready task has waited longer than this, ms; null: none.', Number.MAX_SAFE_INTEGER),
  defaultMaxAttempts: Limit('`maxAttempts` of a task submitted without one; null: the server\'s default.', 1000),
  defaultBackoff: Type.Union([Backoff, Type.Null()], { description: '`backoff` of a task submitted without one; null: the server\'s default.' }),
  fair: Type.Boolean({ description: 'Claims take the keys (`concurrencyKey`, else `rateKey`) round by round. Always so when a concurrency or rate limit is set.' }),
};

export const QueueSettings = Type.Object(SETTINGS, { description: 'Flow control: limits, admission, default retry policy (docs/flow-control.md).' });
export type QueueSettings = Static<typeof QueueSettings>;

export const QueueSettingsPatch = Type.Partial(Type.Object(SETTINGS, { additionalProperties: false }), {
  additionalProperties: false,
  minProperties: 1,
  description: 'A field absent keeps its value; null clears it.',
});
export type QueueSettingsPatch = Static<typeof QueueSettingsPatch>;

export const Queue = Type.Object(
  {
    name: Type.String(),
    paused: Type.Boolean(),
    pausedAt: Type.Union([Timestamp, Type.Null()]),
    createdAt: Timestamp,
    counts: Type.Record(Type.String(), Type.Integer(), { description: 'Tasks per state (states with none are absent).' }),
    oldestReadyAt: Type.Union([Timestamp, Type.Null()]),
    oldestReadyAgeMs: Type.Integer({ description: 'How long the oldest ready task has waited, ms (0 when none).' }),
    settings: QueueSettings,
  },
  {},
);
export type Queue = Static<typeof Queue>;

export const QueueList = Type.Object({ items: Type.Array(Queue) });
export const QueueParams = Type.Object({ name: QueueName });
