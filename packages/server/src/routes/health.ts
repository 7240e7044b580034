import { DatabaseUnavailableError, type Database, type Logger } from '@taskflow/core';
import type { Handlers } from '../http/route.ts';

export function healthHandlers(db: Database, logger: Logger): Pick<Handlers, 'healthz' | 'readyz'> {
  return {
    async healthz() {
      return { status: 'ok' };
    },
    async readyz(_req, reply) {
      try {
        await db.query({ name: 'tf_ready', text: 'SELECT 1' });
        return { status: 'ready', checks: { database: 'ok' } };
      } catch (err) {
        // Not ready while the database cannot answer: a load balancer sends the requests elsewhere.
        logger.warn({ err }, 'readiness check: database unreachable');
        const retryAfter = err instanceof DatabaseUnavailableError ? err.retryAfterSeconds : 1;
        reply.code(503).header('Retry-After', String(retryAfter));
        return { status: 'unavailable', checks: { database: (err as Error).message } };
      }
    },
  };
}
