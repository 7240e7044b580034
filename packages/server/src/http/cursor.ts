/** Opaque page cursors: base64url JSON. A cursor that does not decode is a 400 naming it. */
import { badRequest } from './problems.ts';

export function encodeCursor(value: Record<string, string>): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<K extends string>(cursor: string | undefined, keys: readonly K[]): Record<K, string> | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (value && typeof value === 'object' && keys.every((k) => typeof value[k] === 'string')) return value as Record<K, string>;
  } catch {
    // fall through to the problem below
  }
  throw badRequest('/query/cursor', 'is not a cursor this server issued (pass nextCursor from the previous page)');
}
