import type { Engine } from './engine/engine.ts';
import { Loop } from './loop.ts';
import type { Logger } from './logger.ts';

export interface MaintenanceOptions {
  /** How often expired leases and lost workers are looked for, ms. @defaultValue 1000 */
  rescueIntervalMs: number;
  /** Longest sleep of the promoter between checks for due tasks, ms. @defaultValue 1000 */
  promoteIntervalMs: number;
  /** Rows per statement; a full batch runs again at once. @defaultValue 1000 */
  batchSize: number;
  /**
   * How long after start the rescuer waits before its first pass, ms. After an outage of the
   * whole service, workers get this long to heartbeat again before their silence is taken for
   * death (which would count towards quarantine). The server passes the worker TTL.
   * @defaultValue 0
   */
  rescueStartDelayMs: number;
}

const LOST_WORKERS_PER_PASS = 100;

export const DEFAULT_MAINTENANCE_OPTIONS: MaintenanceOptions = {
  rescueIntervalMs: 1000,
  promoteIntervalMs: 1000,
  batchSize: 1000,
  rescueStartDelayMs: 0,
};

/**
 * The engine's background duties. Every node runs them; each statement locks its rows with
 * SKIP LOCKED, so nodes share the work instead of repeating it.
 * - rescuer: expired leases become failed attempts; workers past their heartbeat deadline
 *   are marked lost and their tasks requeued at once.
 * - promoter: scheduled and retrying tasks become queued when due. It sleeps until the next
 *   due time it knows of, and is hurried when the engine schedules something sooner.
 */
export class Maintenance {
  private readonly rescuer: Loop;
  private readonly promoter: Loop;
  private unsubscribe: (() => void) | undefined;
  private readonly engine: Engine;
  private readonly rescueStartDelayMs: number;
  private delayTimer: NodeJS.Timeout | undefined;

  constructor(engine: Engine, logger: Logger, options: Partial<MaintenanceOptions> = {}) {
    const opts = { ...DEFAULT_MAINTENANCE_OPTIONS, ...options };
    this.engine = engine;
    this.rescueStartDelayMs = opts.rescueStartDelayMs;
    this.rescuer = new Loop({
      name: 'rescuer',
      intervalMs: opts.rescueIntervalMs,
      logger,
      run: async () => {
        const rescued = await engine.rescueExpired(opts.batchSize);
        const reaped = await engine.reapLostWorkers(LOST_WORKERS_PER_PASS);
        if (rescued > 0 || reaped.workers > 0) {
          logger.info({ rescued, lostWorkers: reaped.workers, requeued: reaped.tasks }, 'rescued tasks of lost workers and expired leases');
        }
        return rescued === opts.batchSize || reaped.workers === LOST_WORKERS_PER_PASS ? 0 : undefined;
      },
    });
    this.promoter = new Loop({
      name: 'promoter',
      intervalMs: opts.promoteIntervalMs,
      logger,
      run: async () => {
        if ((await engine.promoteDue(opts.batchSize)) === opts.batchSize) return 0;
        const next = await engine.nextDueInMs();
        return next === null ? undefined : Math.max(0, Math.ceil(next));
      },
    });
  }

  start(): void {
    this.unsubscribe = this.engine.on({ scheduled: (inMs) => this.promoter.soon(inMs) });
    this.promoter.start();
    if (this.rescueStartDelayMs > 0) {
      this.delayTimer = setTimeout(() => this.rescuer.start(), this.rescueStartDelayMs);
      this.delayTimer.unref();
    } else {
      this.rescuer.start();
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.delayTimer);
    this.unsubscribe?.();
    await Promise.all([this.rescuer.stop(), this.promoter.stop()]);
  }
}
