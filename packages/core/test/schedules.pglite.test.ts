import { describeScheduleConformance } from './conformance/schedules.suite.ts';

describeScheduleConformance('pglite');
