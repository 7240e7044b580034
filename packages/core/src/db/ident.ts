/** Quotes an SQL identifier (schema, channel); values are never quoted this way, they are bound. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
