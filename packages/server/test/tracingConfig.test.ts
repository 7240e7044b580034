/** Which OTEL_* variables turn the server's tracing on, and what they may say (pure logic). */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, tracingOf, unknownVariables } from '../src/config.ts';

describe('tracing configuration from the standard OTEL_* variables', () => {
  it('is off without them: no exporter, and no SDK loaded', () => {
    expect(tracingOf({})).toBeUndefined();
    expect(loadConfig({}).tracing).toBeUndefined();
  });

  it('is on with an OTLP endpoint, or an exporter named', () => {
    expect(tracingOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toEqual({ exporters: ['otlp'], serviceName: 'taskflow-server' });
    expect(tracingOf({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces', OTEL_SERVICE_NAME: 'tf-eu' }))
      .toEqual({ exporters: ['otlp'], serviceName: 'tf-eu' });
    expect(tracingOf({ OTEL_TRACES_EXPORTER: 'console' })).toEqual({ exporters: ['console'], serviceName: 'taskflow-server' });
    expect(tracingOf({ OTEL_TRACES_EXPORTER: ' otlp , console,otlp' })?.exporters).toEqual(['otlp', 'console']);
  });

  it('is off with OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true, whatever else is set', () => {
    expect(tracingOf({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBeUndefined();
    expect(tracingOf({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' })).toBeUndefined();
    expect(tracingOf({ OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp' })?.exporters).toEqual(['otlp']);
  });

  it('refuses an exporter or an OTLP protocol it does not have, naming the variable', () => {
    expect(() => tracingOf({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(ConfigError);
    expect(() => tracingOf({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(/OTEL_TRACES_EXPORTER/);
    expect(() => tracingOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL/);
    // The traces-specific protocol wins over the general one.
    expect(tracingOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }))
      .toBeDefined();
  });

  it('leaves the OTEL_* variables out of the unknown-variable warnings', () => {
    expect(unknownVariables({ OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_HEADERS: 'a=b' })).toEqual([]);
  });
});
