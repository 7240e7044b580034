import type { ApiKeyStore, Logger } from '@taskflow/core';

export interface BootstrapResult {
  /** A key created now because the database had none: show it once. */
  createdAdminKey?: string;
}

/**
 * Makes sure someone can log in. TASKFLOW_BOOTSTRAP_API_KEY, when set, is registered as an
 * admin key (idempotently: scripts and CI set a known key). Otherwise, on the first start
 * (no live key at all), an admin key is created and returned to be printed once; it is not
 * stored anywhere in clear.
 */
export async function bootstrapKeys(store: ApiKeyStore, bootstrapKey: string | undefined, logger: Logger): Promise<BootstrapResult> {
  if (bootstrapKey) {
    const created = await store.create('bootstrap (TASKFLOW_BOOTSTRAP_API_KEY)', ['admin'], bootstrapKey);
    if (created) logger.info({ prefix: created.key.prefix }, 'registered the bootstrap admin API key');
    return {};
  }
  const created = await store.createIfNone('first admin key', ['admin']);
  return created ? { createdAdminKey: created.secret } : {};
}
