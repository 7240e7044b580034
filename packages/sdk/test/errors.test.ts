/**
 * The errors a handler throws steer its task across copies of the SDK: `taskflow worker` runs a
 * handlers file that imports its own `@taskflow/sdk`, whose classes are not the worker's. A
 * second copy of the SDK's errors module (the same file under another URL, so a distinct module
 * instance with its own classes) must be recognised as the worker's own.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { RetryAfterError, UnrecoverableError } from '@taskflow/sdk';
import { runTaskOnce } from '@taskflow/sdk/testing';

const dir = mkdtempSync(join(tmpdir(), 'taskflow-sdk-copy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function otherCopy(): Promise<{ UnrecoverableError: typeof UnrecoverableError; RetryAfterError: typeof RetryAfterError }> {
  const copy = join(dir, 'errors.ts');
  copyFileSync(fileURLToPath(new URL('../src/errors.ts', import.meta.url)), copy);
  return import(/* @vite-ignore */ pathToFileURL(copy).href);
}

describe('handler errors from another copy of the SDK', () => {
  it('are distinct classes, yet instanceof holds both ways', async () => {
    const other = await otherCopy();
    expect(other.UnrecoverableError).not.toBe(UnrecoverableError);
    expect(new other.UnrecoverableError('x')).toBeInstanceOf(UnrecoverableError);
    expect(new UnrecoverableError('x')).toBeInstanceOf(other.UnrecoverableError);
    expect(new other.RetryAfterError(10)).toBeInstanceOf(RetryAfterError);
    expect(new other.UnrecoverableError('x')).not.toBeInstanceOf(RetryAfterError);
    expect(new Error('x')).not.toBeInstanceOf(UnrecoverableError);
    expect({ name: 'UnrecoverableError', message: 'x' }).not.toBeInstanceOf(UnrecoverableError);
  });

  it('steer the task as the worker\'s own do: no retry, or retry after the delay', async () => {
    const other = await otherCopy();
    expect(await runTaskOnce(async () => { throw new other.UnrecoverableError('bad input'); }, null))
      .toMatchObject({ status: 'failed', retryable: false, error: { message: 'bad input' } });
    expect(await runTaskOnce(async () => { throw new other.RetryAfterError(2500); }, null))
      .toMatchObject({ status: 'failed', retryable: true, retryAfterMs: 2500 });
  });

  it('keep subclasses strict: a subclass matches its own instances only', () => {
    class BadPayload extends UnrecoverableError {}
    expect(new BadPayload('x')).toBeInstanceOf(UnrecoverableError);
    expect(new BadPayload('x')).toBeInstanceOf(BadPayload);
    expect(new UnrecoverableError('x')).not.toBeInstanceOf(BadPayload);
  });
});
