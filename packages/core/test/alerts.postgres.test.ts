import { describeAlertConformance } from './conformance/alerts.suite.ts';

describeAlertConformance('postgres');
