import { createHash, randomBytes } from 'node:crypto';
import type { Database } from './db/types.ts';
import * as K from './sql/apiKeys.ts';
import { isUuid } from './engine/ids.ts';
import { NotFoundError } from './errors.ts';

/** What a key may do. `admin` may do everything. */
export type Scope = 'producer' | 'worker' | 'admin' | 'read';

export interface ApiKey {
  id: string;
  name: string;
  /** The first characters of the secret, to recognise a key in lists and logs. */
  prefix: string;
  scopes: Scope[];
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

const PREFIX_LEN = 11; // "tf_" + 8 characters

/** A new secret: `tf_` and 192 random bits. */
function newSecret(): string {
  return `tf_${randomBytes(24).toString('base64url')}`;
}

/** SHA-256 of the secret: keys are 192 random bits, so a fast hash is enough at rest. */
export function hashApiKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function toKey(r: Record<string, any>): ApiKey {
  return {
    id: r.id,
    name: r.name,
    prefix: r.prefix,
    scopes: r.scopes,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at ?? null,
    revokedAt: r.revoked_at ?? null,
  };
}

/** API keys, stored hashed. The secret exists only in the return value of `create`. */
export class ApiKeyStore {
  private readonly db: Database;
  constructor(db: Database) {
    this.db = db;
  }

  /** Creates a key; pass `secret` to register a key chosen outside (bootstrap). */
  async create(name: string, scopes: Scope[], secret = newSecret()): Promise<{ key: ApiKey; secret: string } | null> {
    const { rows } = await this.db.query(K.apiKeyInsert, [
      crypto.randomUUID(), name, secret.slice(0, PREFIX_LEN), hashApiKey(secret), scopes,
    ]);
    return rows[0] ? { key: toKey(rows[0]), secret } : null;
  }

  /**
   * Creates a key only if there is no live key at all (the first start), under an advisory
   * lock, so that nodes starting together on an empty database create one between them.
   */
  async createIfNone(name: string, scopes: Scope[]): Promise<{ key: ApiKey; secret: string } | null> {
    return this.db.transaction(async (tx) => {
      await tx.query(K.apiKeyLockFirst, [this.db.schema]);
      if ((await tx.query(K.apiKeyCountLive)).rows[0]!.n > 0) return null;
      const secret = newSecret();
      const { rows } = await tx.query(K.apiKeyInsert, [crypto.randomUUID(), name, secret.slice(0, PREFIX_LEN), hashApiKey(secret), scopes]);
      return { key: toKey(rows[0]!), secret };
    });
  }

  /** The live key with this secret, or null. */
  async verify(secret: string): Promise<ApiKey | null> {
    const { rows } = await this.db.query(K.apiKeyByHash, [hashApiKey(secret)]);
    return rows[0] ? toKey(rows[0]) : null;
  }

  async touch(id: string): Promise<void> {
    await this.db.query(K.apiKeyTouch, [id]);
  }

  async list(): Promise<ApiKey[]> {
    return (await this.db.query(K.apiKeyList)).rows.map(toKey);
  }

  async revoke(id: string): Promise<ApiKey> {
    if (!isUuid(id)) throw new NotFoundError('api key', id);
    const { rows } = await this.db.query(K.apiKeyRevoke, [id]);
    if (!rows[0]) throw new NotFoundError('api key', id);
    return toKey(rows[0]);
  }
}
