import { describeEngineConformance } from './conformance/engine.suite.ts';

describeEngineConformance('postgres');
