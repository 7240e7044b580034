/** Task ids as the API takes them: bigint decimals, checked without a query (pure logic). */
import { describe, expect, it } from 'vitest';
import { isTaskId } from '../src/engine/ids.ts';

describe('isTaskId', () => {
  it('takes the decimals PostgreSQL reads into a positive bigint, up to its largest', () => {
    for (const id of ['1', '42', '999999999999999999', '1000000000000000000', '9223372036854775807', '9223372036854775799']) {
      expect(isTaskId(id), id).toBe(true);
    }
  });

  it('refuses zero, signs, leading zeros, other characters and decimals past bigint', () => {
    for (const id of ['', '0', '01', '-1', '+1', '1.0', '1e3', ' 1', '1 ', 'abc', '9223372036854775808', '9300000000000000000', '9999999999999999999', '10000000000000000000']) {
      expect(isTaskId(id), id).toBe(false);
    }
  });
});
