/**
 * One Taskflow node in its own process, for the benchmarks. Argument: a JSON object of
 * config overrides (databaseUrl or dataDir, schema, bootstrapApiKey, ...; and `benchTracing`). Prints
 * `{"taskflowBench":"ready","url":...}` on stdout once serving. Over IPC it answers
 * `query` (SQL on the service's own database handle: PostgreSQL or the in-process PGlite,
 * used only to verify results between measurements) and `exit` (graceful stop, then exit,
 * so that --cpu-prof can write its profile).
 */
import { loadConfig, startService } from '@taskflow/server';

const { benchTracing, ...overrides } = JSON.parse(process.argv[2] ?? '{}');
const config = loadConfig({}, { port: 0, logLevel: 'warn', poolSize: 10, ...overrides });
// `benchTracing: true` (observability.ts): the server's spans recorded by an SDK with no exporter.
const tracer = benchTracing ? (await import('./tracing-sdk.ts')).benchTracer() : undefined;
const svc = await startService(config, tracer ? { tracer } : {});
process.stdout.write(`${JSON.stringify({ taskflowBench: 'ready', url: svc.url, pid: process.pid, driver: svc.db.driver })}\n`);

let stopping: Promise<void> | undefined;
async function exit(): Promise<never> {
  stopping ??= svc.stop();
  await stopping.catch((err) => console.error('stop failed', err));
  process.exit(0);
}

process.on('message', async (m: any) => {
  if (m?.cmd === 'exit') {
    process.send?.({ id: m.id, ok: true });
    await exit();
  }
  if (m?.cmd === 'query') {
    try {
      const { rows } = await svc.db.query(m.sql, m.params ?? []);
      process.send?.({ id: m.id, rows });
    } catch (err) {
      process.send?.({ id: m.id, error: String(err) });
    }
  }
});
process.on('SIGTERM', () => void exit());
process.on('disconnect', () => void exit());
