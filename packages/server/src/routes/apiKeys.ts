import type { ApiKeyStore } from '@taskflow/core';
import type { Handlers } from '../http/route.ts';
import type { Authenticator } from '../http/auth.ts';
import { apiKeyJson } from '../http/serialize.ts';
import { assertStorable } from '../http/storable.ts';

export function apiKeyHandlers(store: ApiKeyStore, auth: Authenticator): Pick<Handlers, 'createApiKey' | 'listApiKeys' | 'revokeApiKey'> {
  return {
    async createApiKey(req, reply) {
      assertStorable(req.body, '/body');
      const created = (await store.create(req.body.name, req.body.scopes))!;
      reply.code(201);
      return { key: apiKeyJson(created.key), secret: created.secret };
    },
    async listApiKeys() {
      return { items: (await store.list()).map(apiKeyJson) };
    },
    async revokeApiKey(req) {
      const key = await store.revoke(req.params.id);
      auth.forget();
      return apiKeyJson(key);
    },
  };
}
