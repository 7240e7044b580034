/**
 * "Tracing on" for the benchmarks: an OpenTelemetry SDK registered with no exporter (every
 * span is made, sampled and recorded, then dropped), as an application that registered one
 * would run, but without the cost of an exporter. Used by observability.ts in the harness (the
 * producer), the worker process and the server process.
 */
import { context, trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';

/** Registers the SDK as the process's global one (the SDK's producer and worker spans). */
export function registerTracing(): void {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider());
}

/** Removes the global SDK again: back to the API's no-ops. */
export function unregisterTracing(): void {
  trace.disable();
  context.disable();
}

/** A tracer of an SDK with no exporter, for the server's spans (StartOptions.tracer). */
export function benchTracer(): Tracer {
  return new BasicTracerProvider().getTracer('bench-server');
}
