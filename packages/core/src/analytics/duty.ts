/**
 * The rollup duty: a Loop that runs rollup passes. Every node may run it; one pass at a time
 * runs across nodes (the advisory lock in rollup.ts), the others skip theirs. A pass that is
 * behind (the first passes, which backfill an hour at a time) runs again at once.
 */
import { Loop } from '../loop.ts';
import type { Logger } from '../logger.ts';
import type { Analytics } from './analytics.ts';
import type { RollupOptions } from './rollup.ts';

export interface RollupDutyOptions extends Partial<RollupOptions> {
  /** Time between passes, ms: how stale the newest minute of the analytics may be. @defaultValue 15000 */
  intervalMs?: number;
}

export class AnalyticsRollupDuty {
  private readonly loop: Loop;

  constructor(analytics: Analytics, logger: Logger, options: RollupDutyOptions = {}) {
    const { intervalMs = 15_000, ...rollup } = options;
    this.loop = new Loop({
      name: 'analytics-rollup',
      intervalMs,
      logger,
      run: async () => {
        const pass = await analytics.rollup(rollup);
        return pass.behind ? 0 : undefined;
      },
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }
}
