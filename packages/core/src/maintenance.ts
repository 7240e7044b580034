import type { Engine } from './engine/engine.ts';
import { Loop } from './loop.ts';
import type { Logger } from './logger.ts';
import { RescueGrace } from './rescueGrace.ts';

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
  /**
   * After the rescuer met the database unavailable, how long the database must answer it again,
   * without interruption, before it takes a passed heartbeat deadline or lease for a dead
   * worker: the outage silenced every worker, and the living ones heartbeat meanwhile
   * (rescueGrace.ts). The server passes the worker TTL. 0: no grace. @defaultValue 0
   */
  rescueOutageGraceMs: number;
  /**
   * Embedded (PGlite) only, which runs no autovacuum: the tasks table is vacuumed once the
   * engine's claims and settlements have replaced this many row versions since the last
   * vacuum (two per task that runs once). 0 turns it off. On PostgreSQL, autovacuum does this
   * (migration 0003 sets how soon). @defaultValue 20000
   */
  vacuumAfter: number;
  /** How often the embedded vacuum duty looks at that count, ms. @defaultValue 10000 */
  vacuumIntervalMs: number;
  /**
   * Longest sleep of the scheduler between looks for due schedules, ms: how soon a schedule
   * created or resumed on another node is seen by this one. It wakes at the soonest fire it
   * knows of, and at once when a schedule changes on this node. @defaultValue 1000
   */
  scheduleIntervalMs: number;
  /**
   * How often the queue gauges' snapshot (metrics) is refreshed, ms; one node per period does
   * it (Engine.refreshStats). 0 turns the duty off. @defaultValue 0
   */
  statsIntervalMs: number;
  /**
   * How often waiting tasks past their deadline (`expiresAt`) are looked for and cancelled as
   * `expired`, ms. The claim never starts them meanwhile. @defaultValue 1000
   */
  expireIntervalMs: number;
}

const LOST_WORKERS_PER_PASS = 100;

export const DEFAULT_MAINTENANCE_OPTIONS: MaintenanceOptions = {
  rescueIntervalMs: 1000,
  promoteIntervalMs: 1000,
  batchSize: 1000,
  rescueStartDelayMs: 0,
  rescueOutageGraceMs: 0,
  vacuumAfter: 20_000,
  vacuumIntervalMs: 10_000,
  scheduleIntervalMs: 1000,
  statsIntervalMs: 0,
  expireIntervalMs: 1000,
};

/** Schedules one pass of the scheduler fires at most; a full pass runs again at once. */
const SCHEDULES_PER_PASS = 100;

/**
 * How long the scheduler waits when a schedule is due but it fired none: another node holds
 * it (SKIP LOCKED) and is firing it right now, ms.
 */
const DUE_ELSEWHERE_WAIT_MS = 50;

/**
 * The engine's background duties. Every node runs them; each statement locks its rows with
 * SKIP LOCKED, so nodes share the work instead of repeating it.
 * - rescuer: expired leases become failed attempts; workers past their heartbeat deadline
 *   are marked lost and their tasks requeued at once.
 * - promoter: scheduled and retrying tasks become queued when due. It sleeps until the next
 *   due time it knows of, and is hurried when the engine schedules something sooner.
 * - scheduler: fires due schedules, each fire exactly once across nodes (engine/firing.ts).
 *   It sleeps until the soonest fire it knows of, and is hurried when a schedule changes.
 * - expirer: waiting tasks past their deadline become `cancelled` (reason `expired`).
 * - vacuum (PGlite only): VACUUMs the tasks table after `vacuumAfter` replaced row versions.
 *   Without it an embedded service never vacuums: every claim steps over the ready-index
 *   entries of all the tasks ever claimed from its queue.
 * - stats (when `statsIntervalMs` is set): refreshes the queue gauges' snapshot the metrics
 *   export, one node per period.
 */
export class Maintenance {
  private readonly rescuer: Loop;
  private readonly promoter: Loop;
  private readonly scheduler: Loop;
  private readonly expirer: Loop;
  private readonly vacuum: Loop | undefined;
  private readonly stats: Loop | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly engine: Engine;
  private readonly rescueStartDelayMs: number;
  private delayTimer: NodeJS.Timeout | undefined;

  constructor(engine: Engine, logger: Logger, options: Partial<MaintenanceOptions> = {}) {
    const opts = { ...DEFAULT_MAINTENANCE_OPTIONS, ...options };
    this.engine = engine;
    this.rescueStartDelayMs = opts.rescueStartDelayMs;
    const grace = new RescueGrace(opts.rescueOutageGraceMs);
    /** Milliseconds the rescuer still holds off after an outage; while the database has not answered since, probes it. */
    const graceLeft = async (): Promise<number> => {
      if (grace.down) {
        await engine.checkDatabase();
        grace.answered();
        logger.info({ graceMs: opts.rescueOutageGraceMs }, 'rescuer: the database answers again; no worker is taken for lost before the grace has passed');
      }
      return grace.remainingMs();
    };
    this.rescuer = new Loop({
      name: 'rescuer',
      intervalMs: opts.rescueIntervalMs,
      logger,
      run: async () => {
        try {
          const wait = await graceLeft();
          if (wait > 0) return wait;
          const rescued = await engine.rescueExpired(opts.batchSize);
          const reaped = await engine.reapLostWorkers(LOST_WORKERS_PER_PASS);
          await engine.recountBlocked(opts.batchSize);
          if (rescued > 0 || reaped.workers > 0) {
            logger.info({ rescued, lostWorkers: reaped.workers, requeued: reaped.tasks }, 'rescued tasks of lost workers and expired leases');
          }
          return rescued === opts.batchSize || reaped.workers === LOST_WORKERS_PER_PASS ? 0 : undefined;
        } catch (err) {
          const before = grace.down;
          if (grace.failed(err) && !before) {
            logger.warn({ graceMs: opts.rescueOutageGraceMs }, 'rescuer: the database is unavailable; once it answers again, workers get the grace to heartbeat before any is taken for lost');
          }
          throw err;
        }
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
    this.scheduler = new Loop({
      name: 'scheduler',
      intervalMs: opts.scheduleIntervalMs,
      logger,
      run: async () => {
        const pass = await engine.fireDueSchedules(SCHEDULES_PER_PASS);
        if (pass.schedules === SCHEDULES_PER_PASS) return 0;
        if (pass.failed > 0) return undefined; // logged; not again before the interval
        const next = await engine.nextScheduleDueInMs();
        if (next === null) return undefined;
        return next > 0 ? Math.ceil(next) : pass.schedules > 0 ? 0 : DUE_ELSEWHERE_WAIT_MS;
      },
    });
    if (opts.statsIntervalMs > 0) {
      // Asked a little more often than the period, so that some node refreshes within it.
      const period = opts.statsIntervalMs;
      this.stats = new Loop({ name: 'stats', intervalMs: Math.max(1, Math.floor(period / 2)), logger, run: async () => {
        await engine.refreshStats(period);
      } });
    }
    this.expirer = new Loop({
      name: 'expirer',
      intervalMs: opts.expireIntervalMs,
      logger,
      run: async () => {
        const expired = await engine.expireDue(opts.batchSize);
        if (expired > 0) logger.info({ expired }, 'cancelled tasks past their deadline');
        return expired === opts.batchSize ? 0 : undefined;
      },
    });
    if (engine.db.driver === 'pglite' && opts.vacuumAfter > 0) {
      let replaced = 0;
      this.vacuum = new Loop({
        name: 'vacuum',
        intervalMs: opts.vacuumIntervalMs,
        logger,
        run: async () => {
          replaced += engine.takeChurn();
          if (replaced < opts.vacuumAfter) return;
          const t0 = performance.now();
          await engine.vacuumTasks();
          logger.info({ replaced, ms: Math.round(performance.now() - t0) }, 'vacuumed the tasks table');
          replaced = 0;
        },
      });
    }
  }

  start(): void {
    this.unsubscribe = this.engine.on({
      scheduled: (inMs) => this.promoter.soon(inMs),
      scheduleChanged: (inMs) => this.scheduler.soon(inMs),
    });
    this.promoter.start();
    this.scheduler.start();
    this.expirer.start();
    this.vacuum?.start();
    this.stats?.start();
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
    await Promise.all([
      this.rescuer.stop(), this.promoter.stop(), this.scheduler.stop(), this.expirer.stop(), this.vacuum?.stop(), this.stats?.stop(),
    ]);
  }
}
