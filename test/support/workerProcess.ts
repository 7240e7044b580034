/**
 * An SDK worker process for the multi-process tests. Configured by environment; prints one
 * JSON line per event on stdout (synchronous on Linux pipes, so a SIGKILL loses nothing
 * already printed):
 *   {"e":"registered","worker":id}  {"e":"start","id","attempt","t"}  {"e":"done","id","attempt","t"}
 *   {"e":"stale","ids":[...]}  {"e":"stopped"}
 *   {"e":"state","t","running","prefetched","prefetch"} every TF_STATE_MS ms, when set
 * Handler `sleep`: waits payload.ms (default 0) then returns {by: worker id}.
 */
import { Worker } from '@taskflow/sdk';

const env = process.env;
const out = (obj: object) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const worker = new Worker({
  url: env.TF_URL!,
  apiKey: env.TF_KEY!,
  queues: (env.TF_QUEUES ?? 'default').split(','),
  concurrency: Number(env.TF_CONCURRENCY ?? 10),
  waitMs: Number(env.TF_WAIT_MS ?? 30_000),
  shutdownGraceMs: Number(env.TF_GRACE_MS ?? 10_000),
  name: env.TF_NAME,
  handleSignals: true,
  logger: { info() {}, warn: (o, m) => process.stderr.write(`warn ${m} ${JSON.stringify(o)}\n`), error: (o, m) => process.stderr.write(`error ${m} ${JSON.stringify(o)}\n`) },
  handlers: {
    async sleep(payload: { ms?: number }, ctx) {
      out({ e: 'start', id: ctx.id, attempt: ctx.attempt, t: Date.now() });
      if (payload?.ms) await new Promise((resolve) => setTimeout(resolve, payload.ms));
      out({ e: 'done', id: ctx.id, attempt: ctx.attempt, t: Date.now() });
      return { by: worker.workerId };
    },
  },
});
worker.on('registered', (id) => out({ e: 'registered', worker: id }));
worker.on('stale', (ids) => out({ e: 'stale', ids }));
worker.on('stopped', () => {
  out({ e: 'stopped' });
  process.exit(0);
});
if (env.TF_STATE_MS) {
  setInterval(() => out({ e: 'state', t: Date.now(), running: worker.running, prefetched: worker.prefetched, prefetch: worker.prefetch }), Number(env.TF_STATE_MS)).unref();
}
await worker.start();
