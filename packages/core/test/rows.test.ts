/** Times on the claim path come from PostgreSQL as float8 seconds since the epoch (pure logic). */
import { describe, expect, it } from 'vitest';
import { isoOfEpoch } from '../src/engine/rows.ts';

/** What PostgreSQL's date_part('epoch', t) answers for a time of `us` microseconds since the epoch. */
const datePartEpoch = (us: bigint) => Number(us) / 1_000_000;

/** to_char(t, '…SS.MS"Z"') of the same time: the milliseconds truncated, exactly. */
const toCharMs = (us: bigint) => new Date(Number(us / 1000n)).toISOString();

describe('isoOfEpoch', () => {
  it('gives the millisecond to_char gives, at the edges of a millisecond and in between', () => {
    const base = 1_764_457_531_272_000n; // 2025-11-29T23:05:31.272Z
    for (const offset of [0n, 1n, 499n, 500n, 501n, 998n, 999n, 1000n, 1001n, 999_999n]) {
      expect(isoOfEpoch(datePartEpoch(base + offset))).toBe(toCharMs(base + offset));
    }
  });

  it('holds for 200,000 pseudo-random microseconds across the years a task may carry', () => {
    let x = 88172645463325252n; // xorshift64
    const mask = (1n << 64n) - 1n;
    for (let i = 0; i < 200_000; i++) {
      x ^= (x << 13n) & mask;
      x ^= x >> 7n;
      x ^= (x << 17n) & mask;
      const us = 946_684_800_000_000n + (x % 3_155_760_000_000_000n); // 2000-01-01 + up to 100 years
      const got = isoOfEpoch(datePartEpoch(us));
      if (got !== toCharMs(us)) expect({ us: String(us), got }).toEqual({ us: String(us), got: toCharMs(us) });
    }
  });
});
