import { describeIdempotencyConformance } from './conformance/idempotency.suite.ts';

describeIdempotencyConformance('postgres');
