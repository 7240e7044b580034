/**
 * The answers Fastify and Node's HTTP server give on their own, before or without a route,
 * made RFC 9457 problems like every other error: an over-long path parameter (414) or an
 * undecodable path (400) from the router, a request Node's parser refuses (`clientError`: a
 * malformed request line, a bad Content-Length, headers too large), an HTTP/1.1 request without
 * Host, a known path with another method (405 with `Allow`, where Fastify answers 404), too many
 * query parameters, and requests that arrive while the node stops (503 with `Retry-After`).
 */
import type { FastifyHttpOptions, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import {
  HttpProblem, MAX_PARAM_LENGTH, methodNotAllowed, missingHost, parserProblem, rawProblemResponse, sendProblem, shuttingDown,
  toProblem, tooManyParameters,
} from './problems.ts';

/** More query parameters than any route takes (the longest list filter is 8 states). */
export const MAX_QUERY_PARAMETERS = 100;

/** Fastify's options for the answers it would otherwise give in its own shape. */
export function frameworkOptions(maxBodyBytes: number): Partial<FastifyHttpOptions<Server>> {
  return {
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // The router's own errors (undecodable path, over-long parameter) come here, not to its fixed JSON.
    frameworkErrors: (err, request, reply) => {
      void sendProblem(request, reply, toProblem(err, maxBodyBytes));
    },
    clientErrorHandler(err: Error, socket: Socket) {
      const body = parserProblem(err as NodeJS.ErrnoException);
      if (body && socket.writable) socket.end(rawProblemResponse(body));
      socket.destroy();
    },
    // Answered below as a problem (with Retry-After) instead of Fastify's fixed JSON.
    return503OnClosing: false,
    // Node answers a missing Host with an empty 400 before Fastify sees the request; answered below.
    http: { requireHostHeader: false },
  };
}

/**
 * Hooks and the not-found handler. Call before any route is added: the routes are collected as
 * they are registered, to tell a path no route has (404) from a method a path lacks (405).
 */
export function registerFrameworkProblems(app: FastifyInstance, maxBodyBytes: number): void {
  const routes: { pattern: RegExp; methods: Set<string> }[] = [];
  app.addHook('onRoute', (route) => {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) => m.toUpperCase());
    const pattern = routePattern(route.url ?? route.path);
    const same = routes.find((r) => r.pattern.source === pattern.source);
    if (same) for (const m of methods) same.methods.add(m);
    else routes.push({ pattern, methods: new Set(methods) });
  });

  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  const answer = (request: FastifyRequest, reply: FastifyReply, p: HttpProblem) => sendProblem(request, reply, toProblem(p, maxBodyBytes));
  app.addHook('onRequest', async (request, reply) => {
    if (closing) return answer(request, reply.header('Retry-After', '1').header('Connection', 'close'), shuttingDown());
    const raw = request.raw;
    if (raw.httpVersionMajor === 1 && raw.httpVersionMinor >= 1 && !raw.headers.host) return answer(request, reply, missingHost());
    const url = raw.url ?? '';
    const q = url.indexOf('?');
    if (q !== -1) {
      const count = countParameters(url.slice(q + 1));
      if (count > MAX_QUERY_PARAMETERS) return answer(request, reply, tooManyParameters(count, MAX_QUERY_PARAMETERS));
    }
    return undefined;
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = new Set<string>();
    for (const r of routes) if (r.pattern.test(path)) for (const m of r.methods) allowed.add(m);
    if (allowed.size > 0) {
      const list = [...allowed].sort();
      return answer(request, reply.header('Allow', list.join(', ')), methodNotAllowed(request.method, path, list));
    }
    return answer(request, reply, new HttpProblem(404, 'route_not_found', 'Not found', `no route ${request.method} ${path}`));
  });
}

/** A router path (`/api/v1/tasks/:id`, `/docs/*`) as a regular expression over request paths. */
function routePattern(url: string): RegExp {
  const source = url
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}

/** Parameters in a query string: the non-empty `&`-separated parts. */
function countParameters(query: string): number {
  let n = 0;
  let start = 0;
  for (let i = 0; i <= query.length; i++) {
    if (i === query.length || query.charCodeAt(i) === 38 /* & */) {
      if (i > start) n++;
      start = i + 1;
    }
  }
  return n;
}
