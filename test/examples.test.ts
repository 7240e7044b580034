/**
 * The examples in examples/ (the README shows them) run as their comments say against a live
 * service, on the repository's sources: examples/worker.ts and examples/producer.ts under Node,
 * examples/handlers.mjs under `taskflow worker`. test/packaging.test.ts runs them again in a
 * project of their own, on the packed packages, on Node 22 and 24.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startTestService, type TestService } from '@taskflow/server/test-support';
import { CLI, REPO, SOURCE_CONDITION, killAll, run } from './support/processes.ts';
import { runWorkerAndProducer } from './support/examples.ts';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('postgres');
});

afterAll(async () => {
  await killAll();
  await svc?.admin.close();
  await svc?.stop();
});

/** The environment the examples read; each run on a queue of its own. */
const env = (queue: string) => ({ TASKFLOW_URL: svc.url, TASKFLOW_API_KEY: svc.adminKey, TASKFLOW_QUEUE: queue, LOG_LEVEL: 'info' });
const producer = (queue: string) => () => run(process.execPath, [SOURCE_CONDITION, 'examples/producer.ts'], env(queue), REPO);

describe('examples/', () => {
  it('worker.ts runs the tasks producer.ts submits, and stops cleanly on SIGTERM', async () => {
    await runWorkerAndProducer(
      () => run(process.execPath, [SOURCE_CONDITION, 'examples/worker.ts'], env('examples-sdk'), REPO),
      /^worker \S+ is running/,
      producer('examples-sdk'),
    );
  });

  it('handlers.mjs under `taskflow worker` runs them the same way', async () => {
    await runWorkerAndProducer(
      () => run(process.execPath, [CLI, 'worker', 'examples/handlers.mjs'], env('examples-cli'), REPO),
      /"msg":"worker started"/,
      producer('examples-cli'),
    );
  });
});
