import { describeFlowConformance } from './conformance/flow.suite.ts';

describeFlowConformance('pglite');
