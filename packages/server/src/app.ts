/**
 * The HTTP service: Fastify, routes from the contract's table, validation by ajv from the
 * same schemas, RFC 9457 problems for every error, API-key auth, OpenAPI and its docs page.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger as PinoLogger } from 'pino';
import { routes, Problem, type RouteDef, type RouteName } from '@taskflow/contracts';
import { Alerts, Analytics, EnqueueBatcher, type ApiKeyStore, type Database, type Engine, type WakeHub } from '@taskflow/core';
import type { Config } from './config.ts';
import type { Handlers, RouteOptions } from './http/route.ts';
import { sendProblem, toProblem } from './http/problems.ts';
import { frameworkOptions, registerFrameworkProblems } from './http/frameworkProblems.ts';
import { Authenticator } from './http/auth.ts';
import { UnavailableLog } from './http/unavailableLog.ts';
import { taskHandlers } from './routes/tasks.ts';
import { dlqHandlers } from './routes/dlq.ts';
import { queueHandlers } from './routes/queues.ts';
import { scheduleHandlers } from './routes/schedules.ts';
import { workflowHandlers } from './routes/workflows.ts';
import { workerHandlers } from './routes/workers.ts';
import { apiKeyHandlers } from './routes/apiKeys.ts';
import { healthHandlers } from './routes/health.ts';
import type { Tracer } from '@opentelemetry/api';
import { ServerSpans, traceFields } from './tracing/spans.ts';
import { analyticsHandlers } from './routes/analytics.ts';
import { alertHandlers } from './routes/alerts.ts';
import type { HealthChecks } from './ops/health.ts';
import type { TaskflowMetrics } from './ops/metrics.ts';
import { requestIdOf } from './ops/requestId.ts';
import { registerHttpHooks } from './ops/httpHooks.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export interface AppDeps {
  config: Config;
  db: Database;
  engine: Engine;
  apiKeys: ApiKeyStore;
  hub: WakeHub;
  logger: PinoLogger;
  /** How long a verified API key is trusted without a database check, ms. @defaultValue 10000 */
  authCacheMs?: number;
  /** Aborted when the service shuts down: long-polling claims return at once. */
  shutdown: AbortSignal;
  /** Records the submit, claim and settle spans (tracing/spans.ts); undefined: no tracing. */
  tracer?: Tracer;
  health: HealthChecks;
  /** Served at /metrics; absent when metrics are off (TASKFLOW_METRICS=off). */
  metrics?: TaskflowMetrics;
}

/**
 * Two validators from one schema source: bodies are checked strictly (no type coercion, no
 * silently dropped fields), query strings and path parameters are coerced from text.
 */
function validators() {
  const common = { allErrors: true, removeAdditional: false, strict: false } as const;
  const body = addFormats(new Ajv({ ...common, coerceTypes: false, useDefaults: false }));
  const query = addFormats(new Ajv({ ...common, coerceTypes: 'array', useDefaults: true }));
  return { body, query };
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const tracing = deps.tracer !== undefined;
  const app = createFastify(deps.config, deps.logger, tracing, () => deps.health.sawUnavailable());
  // A request without a body is an empty object where every field is optional (claim, heartbeat,
  // deregister), or where the route takes no fields (every POST or DELETE the table gives no
  // body): those refuse any field, like every other route refuses unknown ones.
  const optionalBody = new Set<RouteName>(['claim', 'heartbeat', 'deregisterWorker', ...bodylessRoutes()]);
  registerHttpHooks(app, deps.metrics, tracing);
  if (deps.metrics) registerMetricsRoute(app, deps.metrics);
  await registerOpenApi(app, optionalBody);
  const auth = new Authenticator(deps.apiKeys, { logger: deps.logger, cacheMs: deps.authCacheMs });
  registerRoutes(app, { config: deps.config, handlers: handlersOf(deps, auth), auth, optionalBody });
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

/** Fastify with the validators and the problem responses, before any route. */
function createFastify(config: Config, logger: PinoLogger, tracing: boolean, onUnavailable: () => void): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: config.maxBodyBytes,
    // Per-request log lines cost more than the request on the hot path; errors are logged.
    logController: new LogController({ disableRequestLogging: true }),
    // An inbound X-Request-Id is kept when well-formed (and echoed: httpHooks.ts), else a UUID.
    genReqId: requestIdOf,
    // On close, idle keep-alive connections go at once; requests in flight finish (waiting
    // claims return empty as soon as the service's shutdown signal aborts them).
    forceCloseConnections: 'idle',
    // Fastify's and Node's own answers (router errors, parser errors, 503 while closing) as problems.
    ...frameworkOptions(config.maxBodyBytes),
  });
  registerFrameworkProblems(app, config.maxBodyBytes);
  const ajv = validators();
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? ajv.body : ajv.query).compile(schema));

  // JSON only: a text/plain body must be a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  const unavailable = new UnavailableLog(logger);
  app.setErrorHandler((err, request, reply) => {
    const body = toProblem(err, request.routeOptions.bodyLimit ?? config.maxBodyBytes);
    const route = `${request.method} ${request.routeOptions.url ?? request.url.slice(0, 200)}`;
    if (body.code === 'database_unavailable') {
      unavailable.note(err, route);
      onUnavailable();
    }
    else if (body.status >= 500) request.log.error({ err, route, ...(tracing ? traceFields(request) : undefined) }, 'request failed');
    return sendProblem(request, reply, body);
  });
  return app;
}

/** The OpenAPI document, generated from the routes' schemas, and its docs page. */
async function registerOpenApi(app: FastifyInstance, optionalBody: Set<RouteName>): Promise<void> {
  await app.register(swagger, {
    transformObject: (doc) => markOptionalBodies((doc as { openapiObject: OpenApiDoc }).openapiObject, optionalBody),
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Taskflow API',
        version: '1',
        description: 'Distributed task queue service. Errors are RFC 9457 problem details. See docs/protocol.md for the worker protocol.',
      },
      components: {
        securitySchemes: {
          apiKey: {
            type: 'http', scheme: 'bearer',
            description: 'An API key: `Authorization: Bearer tf_...`. Each operation lists the scopes that pass (any one of them).',
          },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/api/v1/docs' });
}

/** A handler for every route of the contract (the `Handlers` type makes one missing an error). */
function handlersOf(deps: AppDeps, auth: Authenticator): Handlers {
  const { config, engine } = deps;
  const spans = deps.tracer ? new ServerSpans(deps.tracer) : undefined;
  const alerts = new Alerts(engine);
  return {
    ...taskHandlers({ engine, batcher: new EnqueueBatcher(engine), maxPayloadBytes: config.maxPayloadBytes, spans }),
    ...dlqHandlers(engine),
    ...queueHandlers(engine),
    ...scheduleHandlers({ engine, maxPayloadBytes: config.maxPayloadBytes }),
    ...workflowHandlers({ engine, maxPayloadBytes: config.maxPayloadBytes }),
    ...workerHandlers({
      engine, hub: deps.hub, shutdown: deps.shutdown, pollIntervalMs: config.pollIntervalMs, workerTtlMs: config.workerTtlMs, maxPayloadBytes: config.maxPayloadBytes,
      spans,
    }),
    ...apiKeyHandlers(deps.apiKeys, auth),
    ...healthHandlers(deps.health, auth),
    ...analyticsHandlers(new Analytics(deps.db, engine.clock), alerts),
    ...alertHandlers(alerts, () => engine.clock.now() ?? new Date()),
  };
}

/** An empty object: the body of a route that takes none, when a client sends one anyway. */
const NoFields = { type: 'object', additionalProperties: false, properties: {}, description: 'No fields: send no body, or `{}`.' } as const;

/** The routes other than GET whose table entry has no body: they take none. */
function bodylessRoutes(): RouteName[] {
  return (Object.entries(routes) as [RouteName, RouteDef][]).filter(([, def]) => def.method !== 'GET' && def.body === undefined).map(([name]) => name);
}

/**
 * GET /metrics: the Prometheus exposition, unauthenticated (DESIGN §4), outside the API's
 * contract (it is not JSON). docs/operations.md lists the metrics.
 */
function registerMetricsRoute(app: FastifyInstance, metrics: TaskflowMetrics): void {
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const body = await metrics.exposition();
    return reply.header('cache-control', 'no-store').type(metrics.contentType).send(body);
  });
}

interface RouteSetup {
  config: Config;
  handlers: Handlers;
  auth: Authenticator;
  /** The routes whose missing body is an empty object. */
  optionalBody: Set<RouteName>;
}

/** Every route of the contract's table, with its schema, its auth scope and its handler. */
function registerRoutes(app: FastifyInstance, { config, handlers, auth, optionalBody }: RouteSetup): void {
  const options: Partial<Record<RouteName, RouteOptions>> = {
    createTask: { bodyLimit: Math.min(config.maxBodyBytes, config.maxPayloadBytes + 64 * 1024) },
  };
  for (const [name, def] of Object.entries(routes) as [RouteName, (typeof routes)[RouteName]][]) {
    const handler = handlers[name] as (req: any, reply: any) => Promise<unknown>;
    const scope = def.scope;
    const readable = 'read' in def && def.read === true;
    app.route({
      method: def.method,
      url: def.path,
      bodyLimit: options[name]?.bodyLimit,
      schema: {
        operationId: name,
        tags: [def.tag],
        summary: def.summary,
        description: 'description' in def ? def.description : undefined,
        ...('params' in def ? { params: def.params } : {}),
        ...('querystring' in def ? { querystring: def.querystring } : {}),
        ...('body' in def ? { body: def.body } : optionalBody.has(name) ? { body: NoFields } : {}),
        ...('headers' in def ? { headers: def.headers } : {}),
        response: { ...def.response, ...('problems' in def ? def.problems : {}), '4xx': Problem, '5xx': Problem },
        // The scopes that pass, as OpenAPI 3.1's role names (any one of them; `admin` always).
        security: scope ? [scope, ...(readable ? ['read'] : []), ...(scope === 'admin' ? [] : ['admin'])].map((s) => ({ apiKey: [s] })) : [],
      },
      preValidation: optionalBody.has(name)
        ? async (request) => {
            request.body ??= {};
          }
        : undefined,
      // Before the body is read: an unauthenticated client cannot make the server parse it.
      onRequest: scope
        ? async (request) => {
            (request as { apiKey?: unknown }).apiKey = await auth.authorize(request, scope, readable);
          }
        : undefined,
      handler,
    });
  }
}

interface OpenApiDoc {
  paths?: Record<string, Record<string, { operationId?: string; requestBody?: { required?: boolean } }>>;
}

/** The routes that take an empty body say so (the swagger plugin marks every body required). */
function markOptionalBodies(doc: OpenApiDoc, names: Set<RouteName>): OpenApiDoc {
  for (const methods of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(methods)) {
      if (op.requestBody && op.operationId && names.has(op.operationId as RouteName)) op.requestBody.required = false;
    }
  }
  return doc;
}
