import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRange, type RangeDecision } from './range.js';

describe('parseRange', () => {
  const full: RangeDecision = { kind: 'full' };
  const unsatisfiable: RangeDecision = { kind: 'unsatisfiable' };
  const part = (start: number, end: number): RangeDecision => ({ kind: 'partial', start, end });
  const cases: Array<[header: string | undefined, size: number, want: RangeDecision]> = [
    [undefined, 100, full],
    ['bytes=0-9', 100, part(0, 9)],
    ['bytes=0-0', 100, part(0, 0)],
    ['bytes=10-', 100, part(10, 99)],
    ['bytes=99-', 100, part(99, 99)],
    ['bytes=0-', 100, part(0, 99)],
    ['bytes=50-1000', 100, part(50, 99)],
    ['bytes=0-99999999999999999999', 100, part(0, 99)],
    ['bytes=-10', 100, part(90, 99)],
    ['bytes=-100', 100, part(0, 99)],
    ['bytes=-1000', 100, part(0, 99)],
    ['bytes=-99999999999999999999', 100, part(0, 99)],
    ['BYTES=1-2', 100, part(1, 2)],
    ['bytes= 1-2 ', 100, part(1, 2)],
    ['bytes=100-', 100, unsatisfiable],
    ['bytes=100-200', 100, unsatisfiable],
    ['bytes=99999999999999999999-', 100, unsatisfiable],
    ['bytes=-0', 100, unsatisfiable],
    ['bytes=0-', 0, unsatisfiable],
    ['bytes=-5', 0, unsatisfiable],
    ['bytes=5-3', 100, full],
    ['bytes=0-1,5-6', 100, full],
    ['bytes=0-1, 5-6', 100, full],
    ['bytes=', 100, full],
    ['bytes=-', 100, full],
    ['bytes=a-b', 100, full],
    ['bytes=1', 100, full],
    ['bytes 0-1', 100, full],
    ['items=0-1', 100, full],
    ['bytes=+1-2', 100, full],
    ['bytes=1.5-2', 100, full],
    ['', 100, full],
  ];
  for (const [header, size, want] of cases) {
    it(`${JSON.stringify(header)} of ${size} → ${JSON.stringify(want)}`, () => {
      assert.deepEqual(parseRange(header, size), want);
    });
  }
});
