import { describeLifetimeConformance } from './conformance/lifetime.suite.ts';

describeLifetimeConformance('postgres');
