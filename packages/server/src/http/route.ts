/**
 * Typed handlers for the contract's route table. `Handlers` must name a handler for every
 * route in the contract, so an endpoint cannot be declared without being served.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RouteDef, RouteName, Routes, Static, TSchema } from '@taskflow/contracts';
import type { ApiKey } from '@taskflow/core';

type Part<S> = S extends TSchema ? Static<S> : unknown;

export type RouteRequest<R extends RouteDef> = FastifyRequest<{
  Body: Part<R['body']>;
  Querystring: Part<R['querystring']>;
  Params: Part<R['params']>;
}> & { apiKey?: ApiKey };

/** Returns the body to send with the route's first success status, or sends the reply itself. */
export type Handler<R extends RouteDef> = (request: RouteRequest<R>, reply: FastifyReply) => Promise<unknown>;

export type Handlers = { [K in RouteName]: Handler<Routes[K]> };

/** Per-route options the contract does not carry. */
export interface RouteOptions {
  /** Request body limit in bytes. */
  bodyLimit?: number;
}
