import { describeTelemetryConformance } from './conformance/telemetry.suite.ts';

describeTelemetryConformance('postgres');
