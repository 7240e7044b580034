/**
 * `taskflow demo`: a newcomer's first look. Enqueues a mix of sample tasks (some scheduled,
 * some failing once and retried, one that can never succeed and lands in the dead-letter
 * queue) and runs a sample worker, printing each task as it finishes.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { createLogger } from './logging.ts';
import type { TaskHandler } from '@taskflow/sdk';
import { loadConfig } from './config.ts';
import { startService, type Service } from './service.ts';

export interface DemoOptions {
  url?: string;
  apiKey?: string;
  tasks: number;
  /** Where progress goes. @defaultValue stdout */
  print?: (line: string) => void;
}

/** The SDK comes in with the demo (see `runDemo`); the sample handlers need its error class. */
const demoHandlers = (UnrecoverableError: typeof import('@taskflow/sdk').UnrecoverableError): Record<string, TaskHandler> => ({
  async 'demo.thumbnail'(payload: { image: string }, ctx) {
    await sleep(50 + Math.random() * 250, undefined, { signal: ctx.signal });
    return { thumbnail: `${payload.image}.thumb.png` };
  },
  async 'demo.email'(payload: { to: string }, ctx) {
    if (ctx.attempt === 1 && Math.random() < 0.4) throw new Error(`SMTP timeout sending to ${payload.to}`);
    ctx.log(`sent to ${payload.to}`);
    return { delivered: true };
  },
  async 'demo.broken'() {
    throw new UnrecoverableError('this task can never succeed: it goes to the dead-letter queue');
  },
});

export async function runDemo(opts: DemoOptions): Promise<{ succeeded: number; dead: number }> {
  // Loaded here, not at the top: the service itself never needs the SDK, whose HTTP client
  // (undici, 109 modules) the service would otherwise load at start (~5 MiB of RSS).
  const { TaskflowClient, UnrecoverableError, Worker } = await import('@taskflow/sdk');
  const handlers = demoHandlers(UnrecoverableError);
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  let service: Service | undefined;
  let url = opts.url;
  let apiKey = opts.apiKey;
  if (!url) {
    apiKey = `tf_demo_${randomBytes(16).toString('hex')}`;
    const config = loadConfig({}, { dataDir: 'memory://', port: 0, bootstrapApiKey: apiKey, logLevel: 'warn' });
    print('starting an in-memory Taskflow service...');
    service = await startService(config, { logger: createLogger('warn') });
    url = service.url;
  }
  if (!apiKey) throw new Error('an API key is needed with --url (--api-key or TASKFLOW_API_KEY)');
  const client = new TaskflowClient({ url, apiKey });
  const queue = `demo-${randomBytes(3).toString('hex')}`;
  const n = Math.max(3, opts.tasks);
  const tasks = Array.from({ length: n - 1 }, (_, i) =>
    i % 3 === 0
      ? { type: 'demo.email', queue, payload: { to: `user${i}@example.com` }, backoff: { type: 'fixed' as const, delayMs: 300 } }
      : { type: 'demo.thumbnail', queue, payload: { image: `photo-${i}` }, priority: i % 5, ...(i % 7 === 0 ? { delayMs: 1000 } : {}) },
  );
  tasks.push({ type: 'demo.broken', queue, payload: { image: 'never' } } as (typeof tasks)[number]);
  await client.enqueueMany(tasks);
  print(`enqueued ${n} tasks in queue "${queue}" (some scheduled 1 s ahead; emails fail once at random and retry)`);

  const worker = new Worker({ client, queues: [queue], concurrency: 4, handlers, handleSignals: false, waitMs: 1000, logger: pino({ level: 'silent' }) });
  const started = Date.now();
  worker.on('taskDone', (task, report) => {
    const ms = String(Date.now() - started).padStart(5);
    const mark = report.status === 'succeeded' ? 'ok  ' : 'FAIL';
    print(`${ms} ms  ${mark} #${task.id} ${task.type.padEnd(15)} attempt ${task.attempt}${report.error ? `  (${report.error.message})` : ''}`);
  });
  await worker.start();
  let counts: Record<string, number> = {};
  for (;;) {
    counts = (await client.getQueue(queue)).counts;
    if ((counts.succeeded ?? 0) + (counts.dead ?? 0) >= n) break;
    await sleep(200);
  }
  await worker.stop();
  print(`done: ${counts.succeeded ?? 0} succeeded, ${counts.dead ?? 0} in the dead-letter queue (GET ${url}/api/v1/dlq?queue=${queue})`);
  await service?.stop();
  return { succeeded: counts.succeeded ?? 0, dead: counts.dead ?? 0 };
}
