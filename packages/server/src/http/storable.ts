/**
 * What PostgreSQL cannot store, refused at the edge with the exact field: strings or keys
 * with U+0000 or an unpaired surrogate (text and jsonb refuse them; node-postgres would
 * silently replace a surrogate in text), and JSON nested deeper than MAX_JSON_DEPTH
 * (JSON.stringify and the database's parser recurse and would run out of stack).
 */
import { badRequest, tooLarge } from './problems.ts';

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

/**
 * A JSON value's escapes of U+0000 or of a lone surrogate, in the text JSON.stringify makes
 * (paired surrogates stay raw, and a literal backslash is doubled: the look-behind skips an
 * escaped backslash followed by "u0000").
 */
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/;

/**
 * The JSON text of a value from a request (a payload, a result), checked: at most `maxBytes`
 * (413), at most MAX_JSON_DEPTH deep, nothing PostgreSQL cannot store (400 naming the exact
 * field). The hot path: one JSON.stringify (whose text then goes to the database as is) and
 * one regular-expression scan; the value is walked only to name the field of a problem.
 */
export function storableJson(value: unknown, field: string, maxBytes: number): string {
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    if (err instanceof RangeError) throw badRequest(field, `is nested more than ${MAX_JSON_DEPTH} levels deep`);
    throw err;
  }
  if (json.length >= MAX_JSON_DEPTH && depthOf(json) > MAX_JSON_DEPTH) {
    throw badRequest(field, `is nested more than ${MAX_JSON_DEPTH} levels deep`);
  }
  if (UNSTORABLE_ESCAPE.test(json)) assertStorable(value, field); // throws, naming the field
  const size = json.length < maxBytes / 3 ? json.length : Buffer.byteLength(json);
  if (size > maxBytes) throw tooLarge(field, `is ${size} bytes of JSON, over the limit of ${maxBytes} bytes`);
  return json;
}

/** Checks one string field of a request (names, keys, tags, messages). */
export function assertStorableText(value: string | undefined | null, field: string): void {
  if (value != null && !storableText(value)) {
    throw badRequest(field, 'must not contain U+0000 or unpaired surrogates (PostgreSQL cannot store them)');
  }
}

/** The deepest nesting of arrays and objects in a JSON text. */
function depthOf(json: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) max = Math.max(max, ++depth);
    else if (c === 93 || c === 125) depth--;
  }
  return max;
}
