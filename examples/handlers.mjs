// @ts-check
/**
 * Handlers for the `taskflow worker` command, which runs them on an SDK Worker:
 *
 *   npx taskflow worker ./handlers.mjs --api-key tf_...    (or TASKFLOW_API_KEY; --url, TASKFLOW_URL)
 *
 * What the module must export:
 * - `handlers` (or the default export): an object from task type to a function
 *   `(payload, ctx) => result`, sync or async. The payload is the task's JSON payload (a Buffer
 *   for byte payloads); `ctx` has the task's id, attempt, an AbortSignal and `log(message)`. What
 *   it returns (JSON) is stored as the task's result. Throwing fails the attempt: it is retried
 *   with backoff, except for an `UnrecoverableError` (straight to the dead-letter queue) and a
 *   `RetryAfterError` (retried after the delay it carries).
 * What it may export:
 * - `queues`: the queues to serve (default ["default"]; `--queues a,b` overrides);
 * - `concurrency`: tasks at once (default 10; `--concurrency` overrides).
 *
 * A TypeScript module works the same way (`npx taskflow worker ./handlers.ts`): Node runs it by
 * erasing its types. Import the error classes from @taskflow/sdk, the copy `taskflow` itself
 * uses (npm installs one for both when the versions agree).
 */
import { UnrecoverableError } from '@taskflow/sdk';

export const queues = [process.env.TASKFLOW_QUEUE ?? 'default'];

export const concurrency = 20;

/** @type {Record<string, import('@taskflow/sdk').TaskHandler>} */
export const handlers = {
  /** @param {{ to: string }} payload */
  async 'email.send'(payload, ctx) {
    if (!payload.to.includes('@')) throw new UnrecoverableError(`bad address: ${payload.to}`);
    ctx.log(`sending to ${payload.to}`);
    return { sent: true, to: payload.to };
  },
};
