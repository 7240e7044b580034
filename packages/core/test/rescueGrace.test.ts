/**
 * The rescuer's grace after an outage of the database (rescueGrace.ts), on a clock the test
 * moves: no grace before any outage; after one, none judged until the database has answered
 * for the whole grace, counted from its first answer; another outage starts it over; errors
 * that are not the database's absence change nothing. The rescuer's use of it against a real
 * PostgreSQL stopped and started: test/outageRescue.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { DatabaseUnavailableError } from '@taskflow/core';
import { RescueGrace } from '../src/rescueGrace.ts';

const unavailable = () => new DatabaseUnavailableError('the database cannot be reached (ECONNREFUSED)', { sqlState: 'ECONNREFUSED' });

describe('RescueGrace', () => {
  it('holds the rescuer from the outage until the database has answered for the grace', () => {
    let t = 1_000;
    const grace = new RescueGrace(1500, () => t);
    expect(grace.remainingMs()).toBe(0);
    expect(grace.down).toBe(false);

    expect(grace.failed(unavailable())).toBe(true);
    expect(grace.down).toBe(true);
    t += 60_000; // however long the outage lasts
    expect(grace.remainingMs()).toBe(1500);

    grace.answered();
    expect(grace.down).toBe(false);
    t += 1000;
    expect(grace.remainingMs()).toBe(500);
    grace.answered(); // later answers do not move the start
    t += 499;
    expect(grace.remainingMs()).toBe(1);
    t += 1;
    expect(grace.remainingMs()).toBe(0);
  });

  it('starts over when the database goes away again during the grace', () => {
    let t = 0;
    const grace = new RescueGrace(1500, () => t);
    grace.failed(unavailable());
    grace.answered();
    t += 1400;
    grace.failed(unavailable());
    t += 1000;
    expect(grace.remainingMs()).toBe(1500);
    grace.answered();
    t += 1499;
    expect(grace.remainingMs()).toBe(1);
  });

  it('ignores errors that are not the database\'s absence, and does nothing with a grace of 0', () => {
    const grace = new RescueGrace(1500, () => 0);
    expect(grace.failed(new Error('a bug'))).toBe(false);
    expect(grace.remainingMs()).toBe(0);
    const none = new RescueGrace(0, () => 0);
    expect(none.failed(unavailable())).toBe(false);
    expect(none.remainingMs()).toBe(0);
  });
});
