import { describeAnalyticsConformance } from './conformance/analytics.suite.ts';

describeAnalyticsConformance('postgres');
