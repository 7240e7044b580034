/**
 * /healthz and /readyz in the shape of draft-inadarei-api-health-check-06
 * (`application/health+json`). Liveness calls nothing; readiness checks the database (it
 * answers, its schema is this build's), Redis (a warning only: without it wake-ups are slower,
 * nothing is lost) and whether the node is draining after SIGTERM. Checks run in parallel,
 * each within CHECK_TIMEOUT_MS, and their answer is reused for CACHE_MS, so that probes from
 * many load balancers cost one statement a second at most.
 */
import type { Engine, Logger, WakeHub } from '@taskflow/core';

export type HealthStatus = 'pass' | 'warn' | 'fail';

export interface CheckResult {
  componentType: 'datastore' | 'system';
  status: HealthStatus;
  observedValue?: unknown;
  observedUnit?: string;
  time: string;
  output?: string;
}

export interface HealthAnswer {
  status: HealthStatus;
  version: string;
  releaseId?: string;
  checks?: Record<string, Partial<CheckResult>[]>;
}

const CHECK_TIMEOUT_MS = 500;
const CACHE_MS = 1000;
export const HEALTH_CONTENT_TYPE = 'application/health+json';

export class HealthChecks {
  private readonly engine: Engine;
  private readonly hub: WakeHub;
  private readonly releaseId: string;
  private readonly redisConfigured: boolean;
  private readonly logger: Logger;
  /** The status each check had last time, to log changes only. */
  private readonly last = new Map<string, HealthStatus>();
  private draining = false;
  private cached: { at: number; checks: Record<string, CheckResult> } | undefined;
  private running: Promise<Record<string, CheckResult>> | undefined;
  /** Told the database's status after each check (taskflow_dependency_up). */
  onDependency: ((dependency: 'postgres' | 'redis', up: boolean) => void) | undefined;

  constructor(opts: { engine: Engine; hub: WakeHub; releaseId: string; redisConfigured: boolean; logger: Logger }) {
    this.logger = opts.logger;
    this.engine = opts.engine;
    this.hub = opts.hub;
    this.releaseId = opts.releaseId;
    this.redisConfigured = opts.redisConfigured;
  }

  /** From now on, /readyz fails: the node is shutting down (SIGTERM). */
  drain(): void {
    this.draining = true;
  }

  /**
   * A request found the database unavailable: the next /readyz asks the database again rather
   * than answer from a check cached while it still answered.
   */
  sawUnavailable(): void {
    this.cached = undefined;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  liveness(): HealthAnswer {
    return { status: 'pass', version: '1' };
  }

  /** The readiness answer; `detailed` (admin key) adds values, times, outputs and the release. */
  async readiness(detailed: boolean): Promise<HealthAnswer> {
    const checks = await this.checks();
    const statuses = Object.values(checks).map((c) => c.status);
    const status: HealthStatus = statuses.includes('fail') ? 'fail' : statuses.includes('warn') ? 'warn' : 'pass';
    const shown = Object.fromEntries(Object.entries(checks).map(([k, c]) => [k, [detailed ? c : { componentType: c.componentType, status: c.status }]]));
    return { status, version: '1', ...(detailed ? { releaseId: this.releaseId } : {}), checks: shown };
  }

  private async checks(): Promise<Record<string, CheckResult>> {
    const now = Date.now();
    let checks: Record<string, CheckResult>;
    if (this.cached && now - this.cached.at < CACHE_MS) {
      checks = this.cached.checks;
    } else {
      this.running ??= this.run().finally(() => {
        this.running = undefined;
      });
      checks = await this.running;
      this.cached = { at: Date.now(), checks };
    }
    // Draining is this node's own state, never cached.
    return { ...checks, 'server:draining': { componentType: 'system', status: this.draining ? 'fail' : 'pass', observedValue: this.draining, time: new Date().toISOString() } };
  }

  private async run(): Promise<Record<string, CheckResult>> {
    const time = new Date().toISOString();
    const out: Record<string, CheckResult> = {};
    try {
      const db = await withTimeout(this.engine.checkDatabase(), CHECK_TIMEOUT_MS, 'the database did not answer');
      out['postgres:responseTime'] = { componentType: 'datastore', status: 'pass', observedValue: round(db.seconds * 1000), observedUnit: 'ms', time };
      out['postgres:schema'] = db.version === db.expected
        ? { componentType: 'datastore', status: 'pass', observedValue: db.version, time }
        : { componentType: 'datastore', status: 'fail', observedValue: db.version, time, output: `schema version ${db.version}, this build expects ${db.expected}: run taskflow migrate` };
      this.onDependency?.('postgres', true);
    } catch (err) {
      const output = (err as Error).message;
      out['postgres:responseTime'] = { componentType: 'datastore', status: 'fail', time, output };
      out['postgres:schema'] = { componentType: 'datastore', status: 'fail', time, output: 'unknown: the database did not answer' };
      this.onDependency?.('postgres', false);
    }
    if (this.redisConfigured) {
      const up = this.hub.transportConnected() !== false;
      out['redis:connection'] = up
        ? { componentType: 'datastore', status: 'pass', observedValue: true, time }
        : { componentType: 'datastore', status: 'warn', observedValue: false, time, output: 'Redis is unreachable: wake-ups fall back to polling' };
      this.onDependency?.('redis', up);
    }
    this.logChanges(out);
    return out;
  }

  /** One line per change of a check's status (the first pass logs only what is not pass). */
  private logChanges(checks: Record<string, CheckResult>): void {
    for (const [check, c] of Object.entries(checks)) {
      const before = this.last.get(check) ?? 'pass';
      this.last.set(check, c.status);
      if (c.status === before) continue;
      if (c.status === 'pass') this.logger.info({ check }, 'readiness check passes again');
      else this.logger.warn({ check, status: c.status, output: c.output }, 'readiness check failed');
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
