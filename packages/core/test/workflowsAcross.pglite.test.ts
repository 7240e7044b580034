import { describeWorkflowsAcrossConformance } from './conformance/workflowsAcross.suite.ts';

describeWorkflowsAcrossConformance('pglite');
