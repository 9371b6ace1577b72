import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { median, medianRange, percentile, speedup, summarize } from './stats.js';

describe('percentile', () => {
  const cases: { samples: number[]; p: number; expected: number }[] = [
    { samples: [5], p: 0, expected: 5 },
    { samples: [5], p: 99, expected: 5 },
    { samples: [3, 1, 2], p: 0, expected: 1 },
    { samples: [3, 1, 2], p: 100, expected: 3 },
    { samples: [1, 2, 3, 4], p: 50, expected: 2.5 },
    { samples: [1, 2, 3, 4], p: 25, expected: 1.75 },
    { samples: [10, 20, 30, 40, 50], p: 75, expected: 40 },
    { samples: [10, 20, 30, 40, 50], p: 90, expected: 46 },
    { samples: Array.from({ length: 101 }, (_, i) => 100 - i), p: 99, expected: 99 },
  ];
  for (const { samples, p, expected } of cases) {
    it(`p${p} of [${samples.length > 6 ? `${samples.length} values` : samples.join(',')}] is ${expected}`, () => {
      assert.equal(percentile(samples, p), expected);
    });
  }

  it('rejects bad input with exact messages', () => {
    assert.throws(() => percentile([], 50), { message: 'no samples' });
    assert.throws(() => percentile([1], 101), { message: 'percentile must be from 0 to 100, got 101' });
    assert.throws(() => percentile([1, Number.NaN], 50), { message: 'sample is not a finite number: NaN' });
  });

  it('does not reorder the caller’s array', () => {
    const samples = [3, 1, 2];
    percentile(samples, 50);
    assert.deepEqual(samples, [3, 1, 2]);
  });
});

describe('median and summarize', () => {
  it('median of odd and even counts', () => {
    assert.equal(median([7, 1, 3]), 3);
    assert.equal(median([7, 1, 3, 5]), 4);
  });

  it('summarize gives every field', () => {
    assert.deepEqual(summarize([4, 1, 3, 2, 5]), {
      n: 5,
      min: 1,
      p25: 2,
      median: 3,
      p75: 4,
      p99: 4.96,
      max: 5,
      mean: 3,
    });
  });

  it('speedup is the ratio of medians', () => {
    assert.equal(speedup([10, 12, 8], [2, 2.5, 1.5]), 5);
  });

  it('medianRange formats median (min–max) with scale', () => {
    assert.equal(medianRange(summarize([0.5, 0.25, 1]), 0, 1000), '500 (250–1000)');
    assert.equal(medianRange(summarize([1.26, 1.3]), 2), '1.28 (1.26–1.30)');
  });
});
