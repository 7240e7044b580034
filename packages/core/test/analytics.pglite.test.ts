import { describeAnalyticsConformance } from './conformance/analytics.suite.ts';

describeAnalyticsConformance('pglite');
