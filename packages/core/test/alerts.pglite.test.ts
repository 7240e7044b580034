import { describeAlertConformance } from './conformance/alerts.suite.ts';

describeAlertConformance('pglite');
