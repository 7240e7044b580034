/**
 * Time is the database's: statements use `now()` unless a clock overrides it. Production uses
 * `databaseClock` (no override); tests inject a `ManualClock` to stand exactly on a boundary
 * (a lease that expires in one millisecond, or expired one millisecond ago).
 */
export interface Clock {
  /** The time statements should use, or null for the database's `now()`. */
  now(): Date | null;
}

export const databaseClock: Clock = { now: () => null };

/** A clock tests set and advance by hand. */
export class ManualClock implements Clock {
  private current: Date;
  constructor(start: Date = new Date()) {
    this.current = new Date(start);
  }
  now(): Date {
    return new Date(this.current);
  }
  set(at: Date): void {
    this.current = new Date(at);
  }
  advance(ms: number): Date {
    this.current = new Date(this.current.getTime() + ms);
    return this.now();
  }
}
