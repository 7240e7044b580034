import type { Logger } from './logger.ts';

export interface LoopOptions {
  /** Names the duty in logs. */
  name: string;
  /** Longest pause between runs, ms. */
  intervalMs: number;
  /**
   * One pass of the duty. Returns how long to wait before the next pass (capped at
   * `intervalMs`; 0 = again at once, e.g. after a full batch), or nothing for `intervalMs`.
   */
  run: () => Promise<number | void>;
  logger: Logger;
}

/**
 * A background duty with a start/stop lifecycle. It survives its own errors (logs them and
 * backs off up to 30 s while they repeat), can be hurried with `soon`, and `stop` waits for
 * a pass in progress. Timers are unref'd: a duty never keeps a process alive by itself.
 */
export class Loop {
  private readonly opts: LoopOptions;
  private timer: NodeJS.Timeout | undefined;
  private dueAt = Number.POSITIVE_INFINITY;
  private current: Promise<void> | undefined;
  private hurry: number | undefined;
  private failures = 0;
  private active = false;

  constructor(opts: LoopOptions) {
    this.opts = opts;
  }

  start(): void {
    if (this.active) return;
    this.active = true;
    this.schedule(0);
  }

  /** Asks for a pass within `ms` (no effect if one is due sooner anyway). */
  soon(ms: number): void {
    if (!this.active) return;
    if (this.current) {
      this.hurry = Math.min(this.hurry ?? Number.POSITIVE_INFINITY, Date.now() + ms);
      return;
    }
    if (Date.now() + ms < this.dueAt) this.schedule(ms);
  }

  async stop(): Promise<void> {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.current;
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    const delay = Math.max(0, ms);
    this.dueAt = Date.now() + delay;
    this.timer = setTimeout(() => void this.tick(), delay);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (!this.active || this.current) return;
    this.dueAt = Number.POSITIVE_INFINITY;
    let next = this.opts.intervalMs;
    this.current = (async () => {
      try {
        const wanted = await this.opts.run();
        if (typeof wanted === 'number') next = Math.min(wanted, this.opts.intervalMs);
        this.failures = 0;
      } catch (err) {
        this.failures++;
        next = Math.min(this.opts.intervalMs * 2 ** this.failures, 30_000);
        this.opts.logger.error({ err, duty: this.opts.name, failures: this.failures }, `${this.opts.name} failed; retrying in ${next} ms`);
      }
    })();
    await this.current;
    this.current = undefined;
    if (!this.active) return;
    if (this.hurry !== undefined) next = Math.min(next, this.hurry - Date.now());
    this.hurry = undefined;
    this.schedule(next);
  }
}
