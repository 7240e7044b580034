/**
 * API-key authentication. Keys arrive as `Authorization: Bearer <key>`; a verified key is
 * cached for a few seconds so the hot path (claims, results) does not query for it on every
 * request. A revoked key therefore stops working within `cacheMs`.
 */
import type { FastifyRequest } from 'fastify';
import type { ApiKey, ApiKeyStore, Logger, Scope } from '@taskflow/core';
import { HttpProblem } from './problems.ts';

export interface AuthOptions {
  /** How long a verified key is trusted without asking the database, ms. @defaultValue 10000 */
  cacheMs?: number;
  logger: Logger;
}

const TOUCH_EVERY_MS = 60_000;
const MAX_CACHED = 10_000;

export class Authenticator {
  private readonly store: ApiKeyStore;
  private readonly cacheMs: number;
  private readonly logger: Logger;
  private readonly cache = new Map<string, { key: ApiKey; until: number }>();
  private readonly touched = new Map<string, number>();

  constructor(store: ApiKeyStore, opts: AuthOptions) {
    this.store = store;
    this.cacheMs = opts.cacheMs ?? 10_000;
    this.logger = opts.logger;
  }

  /**
   * Checks the request's key and its scope (`admin` passes everywhere, `read` where the route
   * table allows it: `readable`); throws 401/403 problems.
   */
  async authorize(request: FastifyRequest, scope: Scope, readable = false): Promise<ApiKey> {
    const header = request.headers.authorization;
    if (!header) throw unauthorized('no API key: send it as "Authorization: Bearer <key>"');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw unauthorized('the Authorization header must be "Bearer <key>"');
    const key = await this.verify(match[1]!);
    if (!key) throw unauthorized('the API key is not valid (unknown or revoked)');
    if (!key.scopes.includes('admin') && !key.scopes.includes(scope) && !(readable && key.scopes.includes('read'))) {
      const needs = readable ? `"${scope}" or "read"` : `"${scope}"`;
      throw new HttpProblem(403, 'forbidden', 'Forbidden', `this endpoint needs an API key with scope ${needs} (the key has: ${key.scopes.join(', ')})`);
    }
    return key;
  }

  private async verify(secret: string): Promise<ApiKey | null> {
    // Keyed by the secret itself (already in this process's memory with every request): a hit
    // costs a map lookup instead of a SHA-256.
    const now = Date.now();
    const hit = this.cache.get(secret);
    if (hit && hit.until > now) return hit.key;
    const key = await this.store.verify(secret);
    if (!key) {
      this.cache.delete(secret);
      return null;
    }
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(secret, { key, until: now + this.cacheMs });
    if ((this.touched.get(key.id) ?? 0) + TOUCH_EVERY_MS < now) {
      this.touched.set(key.id, now);
      this.store.touch(key.id).catch((err) => this.logger.warn({ err }, 'could not record API key use'));
    }
    return key;
  }

  /** Forgets cached keys (after a revoke on this node). */
  forget(): void {
    this.cache.clear();
  }
}

function unauthorized(detail: string): HttpProblem {
  return new HttpProblem(401, 'unauthorized', 'Unauthorized', detail);
}
