/**
 * Per-request hooks: the request id echoed as `X-Request-Id`, the request's duration in
 * http_server_request_duration_seconds (by route template, never the raw URL), and a
 * `request completed` line at debug level, with the trace ids when tracing is on
 * (tracing/spans.ts, traceFields). Probes and scrapes (/healthz, /readyz, /metrics) are not
 * logged.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { TaskflowMetrics } from './metrics.ts';
import { traceFields } from '../tracing/spans.ts';

const UNLOGGED = new Set(['/healthz', '/readyz', '/metrics']);

export function registerHttpHooks(app: FastifyInstance, metrics: TaskflowMetrics | undefined, tracing: boolean): void {
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    metrics?.httpRequest(request.method, route, status, reply.elapsedTime / 1000);
    if ((request.log as unknown as Logger).isLevelEnabled('debug') && !UNLOGGED.has(route)) {
      request.log.debug({
        method: request.method, route, statusCode: status, ms: Math.round(reply.elapsedTime * 10) / 10, ...idsOf(request),
        ...(tracing ? traceFields(request) : undefined),
      }, 'request completed');
    }
    done();
  });
}

/** The task, worker or queue a request is about, from its path parameters. */
function idsOf(request: FastifyRequest): Record<string, string> {
  const p = request.params as { id?: string; taskId?: string; name?: string } | undefined;
  if (!p) return {};
  const route = request.routeOptions.url ?? '';
  if (route.startsWith('/api/v1/workers/')) return p.taskId === undefined ? { worker_id: p.id! } : { worker_id: p.id!, task_id: p.taskId };
  if (p.id !== undefined && (route.startsWith('/api/v1/tasks/') || route.startsWith('/api/v1/dlq/'))) return { task_id: p.id };
  if (p.name !== undefined && route.startsWith('/api/v1/queues/')) return { queue: p.name };
  return {};
}
