/**
 * What every part of the engine shares, in one place: the database, the options, the clock,
 * the logger, the queues known to exist, the churn count and the event listeners. One per
 * Engine; the concern modules (enqueue.ts, claim.ts, settle.ts, ...) take it as their first
 * argument.
 */
import type { Database } from '../db/types.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import { insertDefaults } from './insertColumns.ts';
import type { EngineOptions } from './options.ts';
import type { Row } from './rows.ts';
import type { EngineTelemetry } from './telemetry.ts';
import { FlowSettingsCache } from './flowSettings.ts';

/** Signals the engine raises after a change is committed. */
export interface EngineEvents {
  /** Tasks became claimable in these queues. */
  ready?(queues: string[]): void;
  /** A task becomes due in `inMs` milliseconds (scheduled or retrying). */
  scheduled?(inMs: number): void;
  /** A schedule was created or changed; it fires next in `inMs` milliseconds (the firing duty is hurried). */
  scheduleChanged?(inMs: number): void;
}

/** Most queue names an engine remembers as existing (see EngineContext.knownQueues). */
const KNOWN_QUEUES_MAX = 10_000;

export class EngineContext {
  readonly db: Database;
  readonly options: EngineOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The insert statements' parameters after the rows and the clock: the defaults a lean row leaves out. */
  readonly insertDefaults: readonly unknown[];
  /**
   * Queues this engine has seen committed (queues are never deleted), so that inserts into them
   * skip the queue upsert. Bounded: past KNOWN_QUEUES_MAX names it starts again.
   */
  readonly knownQueues = new Set<string>();
  /** Task row versions replaced by claims and settlements since `takeChurn` (see Maintenance's vacuum). */
  churn = 0;
  /** Told about submissions, claims and ended attempts; undefined: nothing is built for it. */
  readonly telemetry: EngineTelemetry | undefined;
  /** Queue settings as the claim and the enqueue read them (flowSettings.ts). */
  readonly flow: FlowSettingsCache;
  /** Per limited queue, the pending wake-up of its claimers (flowClaim.ts) and when it fires. */
  private readonly wakeTimers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly listeners = new Set<EngineEvents>();

  constructor(db: Database, options: EngineOptions, clock: Clock, logger: Logger, telemetry?: EngineTelemetry) {
    this.db = db;
    this.telemetry = telemetry;
    this.options = options;
    this.clock = clock;
    this.logger = logger;
    this.insertDefaults = insertDefaults(options);
    this.flow = new FlowSettingsCache(db);
  }

  /** The time statements use: null for the database's `now()`. */
  now(): Date | null {
    return this.clock.now();
  }

  rememberQueue(queue: string): void {
    if (this.knownQueues.has(queue)) return;
    if (this.knownQueues.size >= KNOWN_QUEUES_MAX) this.knownQueues.clear();
    this.knownQueues.add(queue);
  }

  /** Returns the churn since the last call and starts counting again. */
  takeChurn(): number {
    const n = this.churn;
    this.churn = 0;
    return n;
  }

  /**
   * Tells listeners in `inMs` that `queue` may have claimable tasks (a slot frees or a rate
   * bucket refills then). Keeps the sooner of this and a wake-up already pending.
   */
  wakeLater(queue: string, inMs: number): void {
    const at = performance.now() + inMs;
    const pending = this.wakeTimers.get(queue);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.wakeTimers.delete(queue);
      this.announce([{ queue, state: 'queued' }]);
    }, inMs);
    timer.unref();
    this.wakeTimers.set(queue, { at, timer });
  }

  /** Subscribes to engine events; returns the unsubscribe function. */
  on(events: EngineEvents): () => void {
    this.listeners.add(events);
    return () => this.listeners.delete(events);
  }

  /** Tells listeners a schedule fires next in `inMs` milliseconds. */
  announceSchedule(inMs: number): void {
    for (const l of this.listeners) {
      try {
        l.scheduleChanged?.(inMs);
      } catch (err) {
        this.logger.error({ err }, 'engine event listener threw');
      }
    }
  }

  /** Tells listeners which queues gained ready tasks and when scheduled ones fall due. */
  announce(rows: readonly Row[]): void {
    const ready = new Set<string>();
    let soonest: number | undefined;
    const now = (this.now() ?? new Date()).getTime();
    for (const r of rows) {
      if (r.state === 'queued') ready.add(r.queue);
      else if ((r.state === 'scheduled' || r.state === 'retrying') && r.run_at) {
        const inMs = new Date(r.run_at).getTime() - now;
        soonest = soonest === undefined ? inMs : Math.min(soonest, inMs);
      }
    }
    for (const l of this.listeners) {
      try {
        if (ready.size > 0) l.ready?.([...ready]);
        if (soonest !== undefined) l.scheduled?.(Math.max(0, soonest));
      } catch (err) {
        this.logger.error({ err }, 'engine event listener threw');
      }
    }
  }
}
