/** Statements on `api_keys`. Keys are stored as SHA-256 hashes; the secret is shown once. */
import type { Statement } from '../db/types.ts';

export const API_KEY_COLUMNS = `id, name, prefix, scopes, created_at, last_used_at, revoked_at`;

/** apiKeyInsert: $1 id, $2 name, $3 prefix, $4 hash, $5 scopes. Nothing if the hash exists. */
export const apiKeyInsert: Statement = {
  name: 'tf_api_key_insert',
  text: `INSERT INTO api_keys (id, name, prefix, key_hash, scopes) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (key_hash) DO NOTHING RETURNING ${API_KEY_COLUMNS}`,
};

/** apiKeyByHash: a live (not revoked) key by hash. $1 hash */
export const apiKeyByHash: Statement = {
  name: 'tf_api_key_by_hash',
  text: `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`,
};

/** apiKeyTouch: records use (called at most once a minute per key). $1 id */
export const apiKeyTouch: Statement = {
  name: 'tf_api_key_touch',
  text: `UPDATE api_keys SET last_used_at = now() WHERE id = $1`,
};

/** apiKeyList: every key, newest first. */
export const apiKeyList: Statement = {
  name: 'tf_api_key_list',
  text: `SELECT ${API_KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id`,
};

/** apiKeyRevoke: $1 id. Returns the key if it was live. */
export const apiKeyRevoke: Statement = {
  name: 'tf_api_key_revoke',
  text: `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING ${API_KEY_COLUMNS}`,
};

/** apiKeyCountLive: how many keys are live (first start prints a key when there are none). */
export const apiKeyCountLive: Statement = {
  name: 'tf_api_key_count_live',
  text: `SELECT count(*)::integer AS n FROM api_keys WHERE revoked_at IS NULL`,
};

/** apiKeyLockFirst: serialises first-start key creation across nodes (transaction-scoped). $1 schema */
export const apiKeyLockFirst: Statement = {
  name: 'tf_api_key_lock_first',
  text: `SELECT pg_advisory_xact_lock(hashtextextended('taskflow:first-api-key:' || $1, 0))`,
};
