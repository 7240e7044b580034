/**
 * The engine's defaults are defined once, in core's DEFAULT_ENGINE_OPTIONS (the rescuer's in
 * DEFAULT_MAINTENANCE_OPTIONS). The server's configuration takes them from there; the HTTP
 * contract, which cannot import core, states two of them in its descriptions for the API's
 * readers, and this test holds those numbers to core's.
 */
import { describe, expect, it } from 'vitest';
import * as C from '@taskflow/contracts';
import { DEFAULT_ENGINE_OPTIONS, DEFAULT_MAINTENANCE_OPTIONS } from '@taskflow/core';
import { loadConfig } from '../src/config.ts';

/** The number a description gives as the default ("Default 5.", "(default 30000)"). */
function statedDefault(schema: object): number | undefined {
  const m = /\bdefault (\d+)\b/i.exec((schema as { description?: string }).description ?? '');
  return m ? Number(m[1]) : undefined;
}

describe('defaults', () => {
  it('the server configures the engine with core\'s defaults when the environment sets none', () => {
    const config = loadConfig({});
    expect({
      defaultTimeoutMs: config.defaultTimeoutMs,
      defaultMaxAttempts: config.defaultMaxAttempts,
      poisonAfter: config.poisonAfter,
      workerTtlMs: config.workerTtlMs,
      rescueIntervalMs: config.rescueIntervalMs,
    }).toEqual({
      defaultTimeoutMs: DEFAULT_ENGINE_OPTIONS.defaultTimeoutMs,
      defaultMaxAttempts: DEFAULT_ENGINE_OPTIONS.defaultMaxAttempts,
      poisonAfter: DEFAULT_ENGINE_OPTIONS.poisonAfter,
      workerTtlMs: DEFAULT_ENGINE_OPTIONS.workerTtlMs,
      rescueIntervalMs: DEFAULT_MAINTENANCE_OPTIONS.rescueIntervalMs,
    });
  });

  it('the contract states the engine\'s default lease and attempts', () => {
    const input = C.TaskInput.properties;
    expect(statedDefault(input.timeoutMs)).toBe(DEFAULT_ENGINE_OPTIONS.defaultTimeoutMs);
    expect(statedDefault(input.maxAttempts)).toBe(DEFAULT_ENGINE_OPTIONS.defaultMaxAttempts);
  });
});
