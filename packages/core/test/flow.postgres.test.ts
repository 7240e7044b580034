import { describeFlowConformance } from './conformance/flow.suite.ts';

describeFlowConformance('postgres');
