/** @taskflow/server: the Taskflow service (HTTP API, auth, background duties) and its CLI. */
export { startService, type Service, type StartOptions } from './service.ts';
export { buildApp, type AppDeps } from './app.ts';
export { loadConfig, ConfigError, type Config } from './config.ts';
export { runDemo, type DemoOptions } from './demo.ts';
export { createLogger, withReadableErrors } from './logging.ts';
