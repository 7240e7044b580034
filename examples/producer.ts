/**
 * A producer: submits three `email.send` tasks, then waits until each is finished and prints
 * how it ended (examples/worker.ts or examples/handlers.mjs runs them; the third address is
 * refused, so that task ends in the dead-letter queue).
 *
 *   TASKFLOW_API_KEY=tf_... node producer.ts
 *
 * Environment: TASKFLOW_URL (default http://127.0.0.1:7700), TASKFLOW_API_KEY (a key with
 * scope producer or admin), TASKFLOW_QUEUE (default "default").
 */
import { TaskflowClient, type Task } from '@taskflow/sdk';

const apiKey = process.env.TASKFLOW_API_KEY;
if (!apiKey) throw new Error('set TASKFLOW_API_KEY to a key with scope producer');
const tf = new TaskflowClient({ url: process.env.TASKFLOW_URL ?? 'http://127.0.0.1:7700', apiKey });
const queue = process.env.TASKFLOW_QUEUE ?? 'default';

// The calls of one event-loop turn share batch requests; each resolves once its task is committed.
const recipients = ['ada@example.com', 'grace@example.com', 'not-an-address'];
const submitted = await Promise.all(
  recipients.map((to) => tf.submit({ type: 'email.send', queue, payload: { to }, maxAttempts: 3 })),
);
console.log(`submitted tasks ${submitted.map((s) => s.task.id).join(', ')} to queue ${queue}`);

/** Polls the task until it succeeded or is dead (a producer rarely waits; this one shows the outcome). */
async function finished(id: string, timeoutMs = 60_000): Promise<Task> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const task = await tf.getTask(id);
    if (task.state === 'succeeded' || task.state === 'dead') return task;
    if (Date.now() > end) throw new Error(`task ${id} is still ${task.state} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

for (const { task } of submitted) {
  const done = await finished(task.id);
  const outcome = done.state === 'succeeded' ? JSON.stringify(done.result) : done.lastError?.message;
  console.log(`task ${done.id} ${done.state}: ${outcome}`);
}
await tf.close();
