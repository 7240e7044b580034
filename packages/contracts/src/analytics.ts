import { Type, type Static } from 'typebox';
import { FiringAlert } from './alerts.ts';
import { QueueName, Timestamp, TypeName, WorkerId } from './common.ts';

const Window = (fallback: string, limits: string) => Type.String({
  pattern: '^[1-9][0-9]{0,5}[mhd]$',
  default: fallback,
  description: `Length of the window: minutes, hours or days (\`90m\`, \`24h\`, \`7d\`). ${limits} @defaultValue ${fallback}`,
  examples: [fallback],
});
const Until = Type.String({
  format: 'date-time',
  description: 'The window ends with the bucket (or minute, or hour) that holds this time. @defaultValue now',
});
const Rate = (description: string) => Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()], { description });
const Ms = (what: string) => Type.Union([Type.Number({ minimum: 0 }), Type.Null()], { description: `${what}, ms (null without attempts).` });

export const ThroughputQuery = Type.Object(
  {
    window: Type.Optional(Window('24h', 'At most 1440 buckets; with buckets under 1h at most 2d, with 1h or 6h at most 90d, with 1d at most 400d.')),
    bucket: Type.Optional(Type.Enum(['1m', '5m', '15m', '1h', '6h', '1d'], { default: '1h', description: 'Bucket size. @defaultValue 1h' })),
    until: Type.Optional(Until),
    queue: Type.Optional(QueueName),
    type: Type.Optional(TypeName),
  },
  { additionalProperties: false },
);
export type ThroughputQuery = Static<typeof ThroughputQuery>;

const SUMMARY_WINDOW = Window('1h', 'At most 90d; over 6h, whole hours (read from hourly rollups); over 2d, whole days (daily rollups).');

export const SummaryQuery = Type.Object(
  {
    window: Type.Optional(SUMMARY_WINDOW),
    until: Type.Optional(Until),
    queue: Type.Optional(QueueName),
    type: Type.Optional(TypeName),
  },
  { additionalProperties: false },
);
export type SummaryQuery = Static<typeof SummaryQuery>;

export const WorkerAnalyticsQuery = Type.Object(
  { window: Type.Optional(SUMMARY_WINDOW), until: Type.Optional(Until) },
  { additionalProperties: false },
);
export type WorkerAnalyticsQuery = Static<typeof WorkerAnalyticsQuery>;

const WindowBounds = {
  from: Timestamp,
  to: Type.String({ format: 'date-time', description: 'End of the window (exclusive).' }),
};

export const Throughput = Type.Object({
  ...WindowBounds,
  bucket: Type.String(),
  points: Type.Array(Type.Object({
    at: Type.String({ format: 'date-time', description: 'Start of the bucket.' }),
    submitted: Type.Integer({ description: 'Tasks created.' }),
    succeeded: Type.Integer({ description: 'Tasks that succeeded.' }),
    failed: Type.Integer({ description: 'Attempts that failed (the handler failed, or its lease expired, or its worker was lost).' }),
    dead: Type.Integer({ description: 'Tasks that entered the dead-letter queue.' }),
  }), { description: 'Every bucket of the window, oldest first (zeros where nothing happened).' }),
});
export type Throughput = Static<typeof Throughput>;

const PercentileFields = {
  count: Type.Integer({ description: 'Attempts with a duration: succeeded, and failed as the worker reported (not expired leases).' }),
  p50Ms: Ms('Median attempt duration'),
  p95Ms: Ms('95th percentile'),
  p99Ms: Ms('99th percentile'),
};

export const Durations = Type.Object({
  ...WindowBounds,
  items: Type.Array(Type.Object({ queue: Type.String(), type: Type.String(), ...PercentileFields })),
  overall: Type.Object(PercentileFields),
}, { description: 'Percentiles come from histograms with 8 buckets per doubling: each within 4.5% of the exact (nearest-rank) value.' });
export type Durations = Static<typeof Durations>;

export const Failures = Type.Object({
  ...WindowBounds,
  items: Type.Array(Type.Object({
    queue: Type.String(),
    type: Type.String(),
    submitted: Type.Integer(),
    succeeded: Type.Integer(),
    failed: Type.Integer({ description: 'Attempts that failed (handler failure, expired lease, lost worker).' }),
    dead: Type.Integer(),
    cancelled: Type.Integer(),
    failureRate: Rate('failed / (succeeded + failed); null when no attempt ended.'),
  })),
});
export type Failures = Static<typeof Failures>;

export const WorkerAnalytics = Type.Object({
  ...WindowBounds,
  items: Type.Array(Type.Object({
    workerId: WorkerId,
    name: Type.Union([Type.String(), Type.Null()], { description: 'Null when the worker row was deleted.' }),
    state: Type.Union([Type.String(), Type.Null()]),
    lastSeenAt: Type.Union([Timestamp, Type.Null()]),
    tasks: Type.Integer({ description: 'Attempts it ended in the window (succeeded + failed).' }),
    succeeded: Type.Integer(),
    failed: Type.Integer(),
    successRate: Rate('succeeded / tasks; null without tasks.'),
    ...PercentileFields,
  }), { description: 'Workers that ended attempts in the window and every active worker, most tasks first (at most 500).' }),
});
export type WorkerAnalytics = Static<typeof WorkerAnalytics>;

export const AnalyticsHealth = Type.Object({
  at: Timestamp,
  queues: Type.Array(Type.Object({
    name: Type.String(),
    paused: Type.Boolean(),
    ready: Type.Integer({ description: 'Tasks ready to be claimed.' }),
    running: Type.Integer(),
    oldestReadyAgeMs: Type.Integer({ description: 'How long the oldest ready task has waited, ms (0 when none).' }),
  })),
  workers: Type.Object({
    online: Type.Integer({ description: 'Active workers.' }),
    slots: Type.Integer({ description: 'Their concurrency, summed.' }),
  }),
  alerts: Type.Object({
    firing: Type.Array(FiringAlert, { description: 'The built-in alert rules firing now (GET /api/v1/alerts/firing).' }),
  }),
  rollup: Type.Object({
    finalThrough: Type.Union([Timestamp, Type.Null()], { description: 'Minutes before this are final in the analytics; later ones are recomputed every pass.' }),
    updatedAt: Type.Union([Timestamp, Type.Null()], { description: 'The last pass of the rollup duty.' }),
  }),
});
export type AnalyticsHealth = Static<typeof AnalyticsHealth>;
