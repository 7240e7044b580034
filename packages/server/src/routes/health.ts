import type { Database, Logger } from '@taskflow/core';
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
        logger.warn({ err }, 'readiness check: database unreachable');
        reply.code(503);
        return { status: 'unavailable', checks: { database: (err as Error).message } };
      }
    },
  };
}
