/**
 * The service's configuration: read once, here, from the environment (and CLI flags, which
 * win), validated, and passed down. Nothing else in Taskflow reads process.env.
 * docs/operations.md lists every option; keep the two in step. The engine's options default
 * to core's DEFAULT_ENGINE_OPTIONS, the rescuer's interval to its DEFAULT_MAINTENANCE_OPTIONS.
 */
import { DEFAULT_ENGINE_OPTIONS, DEFAULT_MAINTENANCE_OPTIONS } from '@taskflow/core';

export interface Config {
  /** PostgreSQL connection string; unset = embedded PGlite in `dataDir`. Env DATABASE_URL. */
  databaseUrl: string | undefined;
  /** PGlite data directory. @defaultValue `./.taskflow`. Env TASKFLOW_DATA_DIR. */
  dataDir: string;
  /** Schema holding Taskflow's tables. @defaultValue `taskflow`. Env TASKFLOW_SCHEMA. */
  schema: string;
  /** PostgreSQL pool size per node. @defaultValue 10. Env DATABASE_POOL_SIZE. */
  poolSize: number;
  /**
   * Longest wait for a PostgreSQL connection (a new one, or a free one of a busy pool), ms;
   * past it the request answers 503 `database_unavailable`. @defaultValue 5000. Env
   * TASKFLOW_DATABASE_CONNECTION_TIMEOUT_MS.
   */
  connectionTimeoutMs: number;
  /** @defaultValue `127.0.0.1`. Env HOST. */
  host: string;
  /** @defaultValue 7700. Env PORT. */
  port: number;
  /** Redis for cross-node wake-ups; unset = LISTEN/NOTIFY. Env REDIS_URL. */
  redisUrl: string | undefined;
  /** An admin API key to ensure at start (scripts, CI). Env TASKFLOW_BOOTSTRAP_API_KEY. */
  bootstrapApiKey: string | undefined;
  /** Largest payload (or result) of one task, bytes. @defaultValue 1 MiB. Env TASKFLOW_MAX_PAYLOAD_BYTES. */
  maxPayloadBytes: number;
  /** Largest request body, bytes. @defaultValue 16 MiB. Env TASKFLOW_MAX_BODY_BYTES. */
  maxBodyBytes: number;
  /** A worker silent this long is lost; its tasks are requeued. @defaultValue DEFAULT_ENGINE_OPTIONS.workerTtlMs. Env TASKFLOW_WORKER_TTL_MS. */
  workerTtlMs: number;
  /** Lease of a task that names no timeout, ms. @defaultValue DEFAULT_ENGINE_OPTIONS.defaultTimeoutMs. Env TASKFLOW_DEFAULT_TIMEOUT_MS. */
  defaultTimeoutMs: number;
  /** Attempts of a task that names none. @defaultValue DEFAULT_ENGINE_OPTIONS.defaultMaxAttempts. Env TASKFLOW_DEFAULT_MAX_ATTEMPTS. */
  defaultMaxAttempts: number;
  /** Lease losses before a task is quarantined as poison. @defaultValue DEFAULT_ENGINE_OPTIONS.poisonAfter. Env TASKFLOW_POISON_AFTER. */
  poisonAfter: number;
  /** A long-polling claim re-checks the database this often, whatever the wake-ups do. @defaultValue 1000. Env TASKFLOW_POLL_INTERVAL_MS. */
  pollIntervalMs: number;
  /** How often expired leases and lost workers are looked for. @defaultValue DEFAULT_MAINTENANCE_OPTIONS.rescueIntervalMs. Env TASKFLOW_RESCUE_INTERVAL_MS. */
  rescueIntervalMs: number;
  /**
   * How long after start the rescuer waits before its first pass: after an outage of the whole
   * service, workers get this long to heartbeat again before their silence is taken for death.
   * @defaultValue workerTtlMs. Env TASKFLOW_RESCUE_START_DELAY_MS.
   */
  rescueStartDelayMs: number;
  /**
   * After the rescuer met the database unavailable: how long the database must answer again
   * before a worker's passed heartbeat deadline or lease is taken for its death (the outage
   * silenced every worker; the living ones heartbeat meanwhile). 0: none.
   * @defaultValue workerTtlMs. Env TASKFLOW_RESCUE_OUTAGE_GRACE_MS.
   */
  rescueOutageGraceMs: number;
  /** pino level. @defaultValue `info`. Env LOG_LEVEL. */
  logLevel: string;
  /**
   * OpenTelemetry tracing, from the standard OTEL_* variables (tracingOf); undefined: no
   * tracing, and no OpenTelemetry SDK loaded.
   */
  tracing: TracingConfig | undefined;
  /** Prometheus metrics (`/metrics`, and what feeds them). @defaultValue true. Env TASKFLOW_METRICS (`on`/`off`). */
  metrics: boolean;
  /** Also serve `/metrics` alone on this port (same host); unset = the API port only. Env TASKFLOW_METRICS_PORT. */
  metricsPort: number | undefined;
  /** How often the queue gauges' snapshot is refreshed (by one node of all), ms. @defaultValue 15000. Env TASKFLOW_STATS_INTERVAL_MS. */
  statsIntervalMs: number;
  /**
   * How often every node evaluates the alert rules, ms; 0 turns evaluation off on this node.
   * @defaultValue 15000. Env TASKFLOW_ALERTS_INTERVAL_MS.
   */
  alertsIntervalMs: number;
  /**
   * SMTP server of the alert email channel: `smtp://user:pass@host:587` or `smtps://...:465`;
   * unset = email channels fail (their notifications go to the dead-letter queue). Sent
   * through a pooled Nodemailer transport. Env TASKFLOW_SMTP_URL.
   */
  smtpUrl: string | undefined;
  /** The From address of alert emails; required with TASKFLOW_SMTP_URL. Env TASKFLOW_ALERTS_EMAIL_FROM. */
  alertsEmailFrom: string | undefined;
}

/** Where the server's spans go (docs/operations.md, "Tracing"). */
export interface TracingConfig {
  /** `otlp` (OTLP over HTTP, protobuf) and/or `console`. */
  exporters: ('otlp' | 'console')[];
  /** The resource's `service.name`. @defaultValue `taskflow-server`. Env OTEL_SERVICE_NAME. */
  serviceName: string;
}

export class ConfigError extends Error {}

type Source = Record<string, string | undefined>;

function str(src: Source, name: string, fallback: string): string {
  const v = src[name];
  return v === undefined || v === '' ? fallback : v;
}

function optional(src: Source, name: string): string | undefined {
  const v = src[name];
  return v === undefined || v === '' ? undefined : v;
}

function int(src: Source, name: string, fallback: number, min: number, max: number): number {
  const raw = src[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: expected an integer from ${min} to ${max}`);
  }
  return n;
}

function onOff(src: Source, name: string, fallback: boolean): boolean {
  const raw = src[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'on' || raw === 'off') return raw === 'on';
  throw new ConfigError(`${name}=${JSON.stringify(raw)} is not valid: expected on or off`);
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function checkLogLevel(level: string): string {
  if (!LEVELS.includes(level)) throw new ConfigError(`LOG_LEVEL=${JSON.stringify(level)} is not valid: expected one of ${LEVELS.join(', ')}`);
  return level;
}

/** LOG_LEVEL alone, validated (`taskflow worker` reads no other part of the service's configuration). */
export function logLevelOf(env: Source = process.env): string {
  return checkLogLevel(str(env, 'LOG_LEVEL', 'info'));
}

/**
 * The OpenTelemetry variables the server reads (the exporter and the SDK read the rest of the
 * standard ones themselves: endpoint, headers, timeout, sampler, resource attributes). Not
 * TASKFLOW_* variables: the unknown-variable check leaves them alone.
 */
export const OTEL_VARIABLES = [
  'OTEL_SDK_DISABLED', 'OTEL_TRACES_EXPORTER', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_SERVICE_NAME',
] as const;

/**
 * Every variable Taskflow reads: the service's (loadConfig, above) and those of the `worker` and
 * `demo` commands. Any other TASKFLOW_* variable is a typo or a setting that does not exist.
 */
export const KNOWN_VARIABLES = [
  'DATABASE_URL', 'TASKFLOW_DATA_DIR', 'TASKFLOW_SCHEMA', 'DATABASE_POOL_SIZE', 'TASKFLOW_DATABASE_CONNECTION_TIMEOUT_MS', 'HOST', 'PORT', 'REDIS_URL',
  'TASKFLOW_BOOTSTRAP_API_KEY', 'TASKFLOW_MAX_PAYLOAD_BYTES', 'TASKFLOW_MAX_BODY_BYTES', 'TASKFLOW_WORKER_TTL_MS',
  'TASKFLOW_DEFAULT_TIMEOUT_MS', 'TASKFLOW_DEFAULT_MAX_ATTEMPTS', 'TASKFLOW_POISON_AFTER', 'TASKFLOW_POLL_INTERVAL_MS',
  'TASKFLOW_RESCUE_INTERVAL_MS', 'TASKFLOW_RESCUE_START_DELAY_MS', 'TASKFLOW_RESCUE_OUTAGE_GRACE_MS', 'LOG_LEVEL',
  'TASKFLOW_METRICS', 'TASKFLOW_METRICS_PORT', 'TASKFLOW_STATS_INTERVAL_MS',
  'TASKFLOW_ALERTS_INTERVAL_MS', 'TASKFLOW_SMTP_URL', 'TASKFLOW_ALERTS_EMAIL_FROM',
  'TASKFLOW_URL', 'TASKFLOW_API_KEY', ...OTEL_VARIABLES,
] as const;

export interface UnknownVariable {
  name: string;
  /** The known variable it most likely meant, if one is close. */
  suggestion: string | undefined;
}

/**
 * The TASKFLOW_* variables of `env` that Taskflow does not read, each with the nearest known
 * name. The test suite's own (TASKFLOW_TEST_*) are not Taskflow's settings and are left alone.
 */
export function unknownVariables(env: Source = process.env): UnknownVariable[] {
  const known = new Set<string>(KNOWN_VARIABLES);
  return Object.keys(env)
    .filter((name) => name.startsWith('TASKFLOW_') && !name.startsWith('TASKFLOW_TEST_') && !known.has(name))
    .sort()
    .map((name) => ({ name, suggestion: nearestVariable(name) }));
}

/**
 * The known variable closest to `name`, compared without the TASKFLOW_ prefix (so that
 * TASKFLOW_PORT finds PORT): the fewest edits, or the one whose words contain all of the
 * name's in order (TASKFLOW_POOL_SIZE finds DATABASE_POOL_SIZE). Undefined when none is close:
 * at most a third of the name's letters changed.
 */
export function nearestVariable(name: string): string | undefined {
  const bare = (n: string) => n.replace(/^TASKFLOW_/, '');
  const wanted = bare(name);
  let best: { name: string; cost: number } | undefined;
  for (const k of KNOWN_VARIABLES) {
    const cost = containsWords(bare(k), wanted) ? 1 : editDistance(wanted, bare(k));
    if (!best || cost < best.cost) best = { name: k, cost };
  }
  return best && best.cost <= Math.max(1, Math.floor(wanted.length / 3)) ? best.name : undefined;
}

function containsWords(haystack: string, needle: string): boolean {
  return `_${haystack}_`.includes(`_${needle}_`);
}

/** Levenshtein distance: insertions, deletions and substitutions, one each. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}


/**
 * Tracing is on when OTEL_TRACES_EXPORTER names an exporter (`otlp`, `console`, comma-separated),
 * or, unset, when an OTLP endpoint is given (OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); off with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
 * OTLP goes over HTTP with protobuf (`http/protobuf`, the specification's default); other
 * protocols are refused.
 */
export function tracingOf(env: Source): TracingConfig | undefined {
  if (str(env, 'OTEL_SDK_DISABLED', 'false').trim().toLowerCase() === 'true') return undefined;
  const named = optional(env, 'OTEL_TRACES_EXPORTER');
  const endpoint = optional(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? optional(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const list = named === undefined ? (endpoint ? ['otlp'] : []) : named.split(',').map((e) => e.trim().toLowerCase()).filter((e) => e !== '');
  if (list.length === 0 || list.includes('none')) return undefined;
  const bad = list.find((e) => e !== 'otlp' && e !== 'console');
  if (bad !== undefined) throw new ConfigError(`OTEL_TRACES_EXPORTER=${JSON.stringify(named)} is not valid: expected otlp, console or none (comma-separated)`);
  if (list.includes('otlp')) {
    for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'] as const) {
      const protocol = optional(env, name);
      if (protocol !== undefined && protocol !== 'http/protobuf') {
        throw new ConfigError(`${name}=${JSON.stringify(protocol)} is not supported: Taskflow exports OTLP as http/protobuf`);
      }
      if (protocol !== undefined) break;
    }
  }
  return { exporters: [...new Set(list)] as TracingConfig['exporters'], serviceName: str(env, 'OTEL_SERVICE_NAME', 'taskflow-server') };
}

/** Reads and validates the configuration. Throws ConfigError naming the variable at fault. */
export function loadConfig(env: Source = process.env, overrides: Partial<Config> = {}): Config {
  const config: Config = {
    databaseUrl: optional(env, 'DATABASE_URL'),
    dataDir: str(env, 'TASKFLOW_DATA_DIR', './.taskflow'),
    schema: str(env, 'TASKFLOW_SCHEMA', 'taskflow'),
    poolSize: int(env, 'DATABASE_POOL_SIZE', 10, 1, 1000),
    connectionTimeoutMs: int(env, 'TASKFLOW_DATABASE_CONNECTION_TIMEOUT_MS', 5000, 100, 600_000),
    host: str(env, 'HOST', '127.0.0.1'),
    port: int(env, 'PORT', 7700, 0, 65535),
    redisUrl: optional(env, 'REDIS_URL'),
    bootstrapApiKey: optional(env, 'TASKFLOW_BOOTSTRAP_API_KEY'),
    maxPayloadBytes: int(env, 'TASKFLOW_MAX_PAYLOAD_BYTES', 1024 * 1024, 1, 1024 * 1024 * 1024),
    maxBodyBytes: int(env, 'TASKFLOW_MAX_BODY_BYTES', 16 * 1024 * 1024, 1024, 2 * 1024 * 1024 * 1024 - 1),
    workerTtlMs: int(env, 'TASKFLOW_WORKER_TTL_MS', DEFAULT_ENGINE_OPTIONS.workerTtlMs, 100, 86_400_000),
    defaultTimeoutMs: int(env, 'TASKFLOW_DEFAULT_TIMEOUT_MS', DEFAULT_ENGINE_OPTIONS.defaultTimeoutMs, 100, 604_800_000),
    defaultMaxAttempts: int(env, 'TASKFLOW_DEFAULT_MAX_ATTEMPTS', DEFAULT_ENGINE_OPTIONS.defaultMaxAttempts, 1, 1000),
    poisonAfter: int(env, 'TASKFLOW_POISON_AFTER', DEFAULT_ENGINE_OPTIONS.poisonAfter, 1, 1000),
    pollIntervalMs: int(env, 'TASKFLOW_POLL_INTERVAL_MS', 1000, 10, 60_000),
    rescueIntervalMs: int(env, 'TASKFLOW_RESCUE_INTERVAL_MS', DEFAULT_MAINTENANCE_OPTIONS.rescueIntervalMs, 10, 60_000),
    rescueStartDelayMs: int(env, 'TASKFLOW_RESCUE_START_DELAY_MS', -1, 0, 86_400_000),
    rescueOutageGraceMs: int(env, 'TASKFLOW_RESCUE_OUTAGE_GRACE_MS', -1, 0, 86_400_000),
    logLevel: str(env, 'LOG_LEVEL', 'info'),
    tracing: tracingOf(env),
    metrics: onOff(env, 'TASKFLOW_METRICS', true),
    metricsPort: optional(env, 'TASKFLOW_METRICS_PORT') === undefined ? undefined : int(env, 'TASKFLOW_METRICS_PORT', 0, 0, 65535),
    statsIntervalMs: int(env, 'TASKFLOW_STATS_INTERVAL_MS', 15_000, 100, 3_600_000),
    alertsIntervalMs: int(env, 'TASKFLOW_ALERTS_INTERVAL_MS', 15_000, 0, 3_600_000),
    smtpUrl: optional(env, 'TASKFLOW_SMTP_URL'),
    alertsEmailFrom: optional(env, 'TASKFLOW_ALERTS_EMAIL_FROM'),
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  };
  if (config.rescueStartDelayMs < 0) config.rescueStartDelayMs = config.workerTtlMs;
  if (config.rescueOutageGraceMs < 0) config.rescueOutageGraceMs = config.workerTtlMs;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(config.schema)) {
    throw new ConfigError(`TASKFLOW_SCHEMA=${JSON.stringify(config.schema)} is not valid: expected lower-case letters, digits and _ (at most 63)`);
  }
  checkLogLevel(config.logLevel);
  if (config.bootstrapApiKey !== undefined && config.bootstrapApiKey.length < 20) {
    throw new ConfigError('TASKFLOW_BOOTSTRAP_API_KEY is too short: use at least 20 random characters');
  }
  if (config.databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(config.databaseUrl)) {
    throw new ConfigError('DATABASE_URL is not valid: expected postgres://user@host:port/database');
  }
  checkAlertEmail(config);
  return config;
}

/** The alert email settings: a URL Nodemailer can use, and a From address with it. */
function checkAlertEmail(config: Config): void {
  if (config.smtpUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(config.smtpUrl);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') || url.hostname === '') {
      throw new ConfigError('TASKFLOW_SMTP_URL is not valid: expected smtp://[user:password@]host[:port] or smtps://...');
    }
    if (config.alertsEmailFrom === undefined) throw new ConfigError('TASKFLOW_ALERTS_EMAIL_FROM is required with TASKFLOW_SMTP_URL: the From address of alert emails');
  }
  if (config.alertsEmailFrom !== undefined && !/^([^<>]*<)?[^\s@<>]+@[^\s@<>]+>?$/.test(config.alertsEmailFrom.trim())) {
    throw new ConfigError(`TASKFLOW_ALERTS_EMAIL_FROM=${JSON.stringify(config.alertsEmailFrom)} is not valid: expected an address (alerts@example.com or "Taskflow <alerts@example.com>")`);
  }
}
