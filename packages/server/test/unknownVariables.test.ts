import { describe, expect, it } from 'vitest';
import { KNOWN_VARIABLES, nearestVariable, unknownVariables } from '../src/config.ts';

describe('unknown TASKFLOW_* variables', () => {
  it('are listed with the nearest known name, when one is close', () => {
    const env = {
      TASKFLOW_POOL_SIZE: '3', // words of DATABASE_POOL_SIZE
      TASKFLOW_PORT: '1', // PORT, with the prefix
      TASKFLOW_DATADIR: 'x', // one letter off TASKFLOW_DATA_DIR
      TASKFLOW_SHEMA: 'a',
      TASKFLOW_MAX_PAYLOAD: '10', // words of TASKFLOW_MAX_PAYLOAD_BYTES
      TASKFLOW_FROBNICATE: 'yes', // nothing near
      TASKFLOW_SCHEMA: 'fine', // known
      TASKFLOW_TEST_DATABASE_URL: 'postgres://', // the test suite's own
      HOME: '/root', // not ours
    };
    expect(unknownVariables(env)).toEqual([
      { name: 'TASKFLOW_DATADIR', suggestion: 'TASKFLOW_DATA_DIR' },
      { name: 'TASKFLOW_FROBNICATE', suggestion: undefined },
      { name: 'TASKFLOW_MAX_PAYLOAD', suggestion: 'TASKFLOW_MAX_PAYLOAD_BYTES' },
      { name: 'TASKFLOW_POOL_SIZE', suggestion: 'DATABASE_POOL_SIZE' },
      { name: 'TASKFLOW_PORT', suggestion: 'PORT' },
      { name: 'TASKFLOW_SHEMA', suggestion: 'TASKFLOW_SCHEMA' },
    ]);
  });

  it('suggest nothing for a name far from every known one', () => {
    expect(nearestVariable('TASKFLOW_X')).toBeUndefined();
    expect(nearestVariable('TASKFLOW_ENABLE_TURBO')).toBeUndefined();
  });

  it('every TASKFLOW_* variable that loadConfig reads is known', async () => {
    const { readFileSync } = await import('node:fs');
    const source = readFileSync(new URL('../src/config.ts', import.meta.url), 'utf8');
    const read = new Set([...source.matchAll(/\(env, '([A-Z_]+)'/g)].map((m) => m[1]!));
    expect(read.size).toBeGreaterThan(10);
    for (const name of read) expect(KNOWN_VARIABLES).toContain(name);
  });
});
