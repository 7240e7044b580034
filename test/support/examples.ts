/**
 * Runs the examples of examples/ as their comments say, against a live service, and checks what
 * they print: test/examples.test.ts on the repository's sources, test/packaging.test.ts in a
 * project of their own on the packed packages.
 */
import { expect } from 'vitest';
import type { Proc } from './processes.ts';

/**
 * What examples/producer.ts (and a JavaScript build of it) prints once its three tasks are
 * finished, as examples/worker.ts or examples/handlers.mjs run them: the bad address is dead.
 */
const OUTCOMES = [
  /^task \d+ succeeded: .*"ada@example\.com"/,
  /^task \d+ succeeded: .*"grace@example\.com"/,
  /^task \d+ dead: bad address: not-an-address$/,
];

/**
 * Starts a worker and waits for the line saying it serves; runs the producer to its end and
 * checks its report; stops the worker with SIGTERM, as a process manager does, and checks that
 * it finishes cleanly (exit code 0).
 */
export async function runWorkerAndProducer(startWorker: () => Proc, ready: RegExp, startProducer: () => Proc): Promise<void> {
  const worker = startWorker();
  await worker.waitForLine(ready);
  const producer = startProducer();
  const lines: string[] = [];
  producer.onLine((line) => lines.push(line));
  const { code } = await producer.exited;
  expect(code, `the producer failed: ${producer.stderr()}`).toBe(0);
  for (const outcome of OUTCOMES) expect(lines).toContainEqual(expect.stringMatching(outcome));
  worker.child.kill('SIGTERM');
  expect((await worker.exited).code, `the worker did not stop cleanly: ${worker.stderr()}`).toBe(0);
}
