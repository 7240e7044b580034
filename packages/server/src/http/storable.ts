/**
 * What PostgreSQL cannot store, refused at the edge with the exact field: strings or keys
 * with U+0000 or an unpaired surrogate (text and jsonb refuse them; node-postgres would
 * silently replace a surrogate in text), and JSON nested deeper than MAX_JSON_DEPTH
 * (JSON.stringify and the database's parser recurse and would run out of stack).
 */
import { badRequest } from './problems.ts';

/** Deepest nesting of JSON accepted in a request (payloads, results, metadata). */
export const MAX_JSON_DEPTH = 1000;

/**
 * Throws a 400 naming the field for what PostgreSQL cannot store, before it is sent: a string
 * or key with U+0000 or a lone surrogate (text and jsonb refuse them), or JSON nested deeper
 * than MAX_JSON_DEPTH (JSON.stringify and the database's parser recurse, and would run out of
 * stack). Iterative, so the check itself cannot.
 */
export function assertStorable(value: unknown, at: string): void {
  const pending: [unknown, string, number, string | undefined][] = [[value, at, 0, undefined]];
  while (pending.length > 0) {
    const [v, field, depth, top] = pending.pop()!;
    if (typeof v === 'string') {
      if (!storableText(v)) throw badRequest(field, 'must not contain U+0000 or unpaired surrogates (PostgreSQL cannot store them)');
    } else if (v !== null && typeof v === 'object') {
      if (depth >= MAX_JSON_DEPTH) throw badRequest(top ?? at, `is nested more than ${MAX_JSON_DEPTH} levels deep`);
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i]!;
        if (!storableText(key)) throw badRequest(field, 'has a key with U+0000 or unpaired surrogates (PostgreSQL cannot store them)');
        const path = `${field}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
        pending.push([child, path, depth + 1, top ?? path]);
      }
    }
  }
}

function storableText(s: string): boolean {
  return !s.includes('\u0000') && s.isWellFormed();
}
