/**
 * The contract's one source: the OpenAPI document the service serves must be the committed
 * docs/openapi.json (regenerate with `npm run openapi`), and must describe every route of the
 * contract's table with its schemas.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { routes } from '@taskflow/contracts';
import { OPENAPI_FILE, servedOpenApi } from '../scripts/write-openapi.ts';

describe('OpenAPI document', () => {
  it('matches docs/openapi.json and covers every route of the contract', async () => {
    const served = (await servedOpenApi()) as { openapi: string; paths: Record<string, Record<string, { operationId: string }>> };
    const committed = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'));
    expect(served, 'docs/openapi.json is stale: run `npm run openapi` and commit it').toEqual(committed);
    expect(served.openapi).toBe('3.1.0');
    const operations = Object.values(served.paths).flatMap((methods) => Object.values(methods).map((m) => m.operationId));
    expect(operations.sort()).toEqual(Object.keys(routes).sort());
  }, 60_000);
});
