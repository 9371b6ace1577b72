import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoff } from './backoff.js';

describe('backoff', () => {
  const cases: [failures: number, want: number][] = [
    [0, 100],
    [1, 100],
    [2, 200],
    [3, 400],
    [6, 3_200],
    [7, 5_000],
    [1_000, 5_000],
  ];
  for (const [failures, want] of cases) {
    it(`is ${want} ms after ${failures} failure(s) (base 100, max 5000)`, () => {
      assert.equal(backoff(failures, 100, 5_000), want);
    });
  }
});
