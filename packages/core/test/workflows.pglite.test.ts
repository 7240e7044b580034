import { describeWorkflowConformance } from './conformance/workflows.suite.ts';

describeWorkflowConformance('pglite');
