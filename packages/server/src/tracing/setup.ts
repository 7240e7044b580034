/**
 * The server's OpenTelemetry SDK, made only when tracing is configured (config.ts, `tracing`):
 * this module and the SDK's are imported on demand, so a server without tracing loads none
 * of them. Spans go through a batch processor to the exporters the standard variables name
 * (docs/operations.md, "Tracing"). The provider is not registered globally: the server's
 * spans come from the tracer passed down to its routes (tracing/spans.ts), and several
 * services in one process (tests, the bench) keep theirs apart.
 */
import type { Tracer } from '@opentelemetry/api';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ConsoleSpanExporter, NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { TracingConfig } from '../config.ts';

export interface TracingSetup {
  tracer: Tracer;
  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void>;
}

export async function startTracing(config: TracingConfig, version: string): Promise<TracingSetup> {
  const processors: SpanProcessor[] = [];
  for (const name of config.exporters) {
    if (name === 'otlp') {
      // The exporter reads OTEL_EXPORTER_OTLP_{,TRACES_}{ENDPOINT,HEADERS,TIMEOUT,COMPRESSION} itself.
      const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
      processors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
    } else {
      processors.push(new BatchSpanProcessor(new ConsoleSpanExporter()));
    }
  }
  // OTEL_RESOURCE_ATTRIBUTES (envDetector), under the service name and version.
  const resource = detectResources({ detectors: [envDetector] }).merge(
    resourceFromAttributes({ 'service.name': config.serviceName, 'service.version': version }),
  );
  // The sampler comes from OTEL_TRACES_SAMPLER (and _ARG), read by the SDK; default parentbased_always_on.
  const provider = new NodeTracerProvider({ resource, spanProcessors: processors });
  return { tracer: provider.getTracer('@taskflow/server', version), shutdown: () => provider.shutdown() };
}
