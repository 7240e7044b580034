import type { Handlers } from '../http/route.ts';
import type { Authenticator } from '../http/auth.ts';
import { HEALTH_CONTENT_TYPE, type HealthChecks } from '../ops/health.ts';

/**
 * Unauthenticated (DESIGN §4); an admin key, when given and valid, gets the details. A key
 * that is not one is not an error here: the answer is the short one.
 */
export function healthHandlers(health: HealthChecks, auth: Authenticator): Pick<Handlers, 'healthz' | 'readyz'> {
  return {
    async healthz(_req, reply) {
      reply.header('cache-control', 'no-store').type(HEALTH_CONTENT_TYPE);
      return health.liveness();
    },
    async readyz(req, reply) {
      const detailed = req.headers.authorization !== undefined && (await auth.authorize(req, 'admin').then(() => true, () => false));
      const answer = await health.readiness(detailed);
      reply.header('cache-control', 'no-store').type(HEALTH_CONTENT_TYPE);
      // Not ready: a load balancer sends the requests elsewhere, and may ask again in a second.
      if (answer.status === 'fail') reply.code(503).header('Retry-After', '1');
      return answer as never;
    },
  };
}
