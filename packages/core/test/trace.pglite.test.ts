import { describeTraceConformance } from './conformance/trace.suite.ts';

describeTraceConformance('pglite');
