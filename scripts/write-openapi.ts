/**
 * Writes docs/openapi.json: the OpenAPI document exactly as the service serves it. Run after
 * changing the contract (`npm run openapi`); test/openapi.test.ts fails when they differ.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { loadConfig, startService } from '@taskflow/server';

export const OPENAPI_FILE = fileURLToPath(new URL('../docs/openapi.json', import.meta.url));

export async function servedOpenApi(): Promise<unknown> {
  const service = await startService(
    loadConfig({}, { dataDir: 'memory://', port: 0, bootstrapApiKey: 'tf_openapi_generation_only', logLevel: 'silent' }),
    { logger: pino({ level: 'silent' }), maintenance: false },
  );
  try {
    return await (await fetch(`${service.url}/api/v1/openapi.json`)).json();
  } finally {
    await service.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(OPENAPI_FILE, `${JSON.stringify(await servedOpenApi(), null, 2)}\n`);
  console.log(`wrote ${OPENAPI_FILE}`);
}
