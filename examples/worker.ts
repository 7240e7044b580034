/**
 * A worker: runs `email.send` tasks (as examples/producer.ts submits them) until SIGTERM or
 * Ctrl-C, then finishes the tasks in flight, reports them and deregisters.
 *
 *   TASKFLOW_API_KEY=tf_... node worker.ts
 *
 * Environment: TASKFLOW_URL (default http://127.0.0.1:7700), TASKFLOW_API_KEY (a key with
 * scope worker or admin), TASKFLOW_QUEUE (default "default").
 */
import { UnrecoverableError, Worker } from '@taskflow/sdk';

const apiKey = process.env.TASKFLOW_API_KEY;
if (!apiKey) throw new Error('set TASKFLOW_API_KEY to a key with scope worker');

const worker = new Worker({
  url: process.env.TASKFLOW_URL ?? 'http://127.0.0.1:7700',
  apiKey,
  queues: [process.env.TASKFLOW_QUEUE ?? 'default'],
  concurrency: 20,
  handlers: {
    async 'email.send'(payload: { to: string }, ctx) {
      // No retry can fix a bad address: straight to the dead-letter queue.
      if (!payload.to.includes('@')) throw new UnrecoverableError(`bad address: ${payload.to}`);
      ctx.log(`sending to ${payload.to}`);
      return { sent: true, to: payload.to }; // the result, stored with the task
    },
  },
});
worker.on('stopped', () => console.log('worker stopped'));
await worker.start(); // SIGTERM/SIGINT: finish in-flight tasks, report, deregister
console.log(`worker ${worker.workerId} is running; Ctrl-C stops it`);
