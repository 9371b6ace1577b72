import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toLabels } from './labels.js';

describe('toLabels', () => {
  const cases: { title: string; map: unknown; want: Record<string, string> }[] = [
    {
      title: 'a decoded map',
      map: { a: '1', 'containerd.io/x': 'y' },
      want: { a: '1', 'containerd.io/x': 'y' },
    },
    { title: 'an absent map', map: undefined, want: {} },
    { title: 'null', map: null, want: {} },
    { title: 'non-string values dropped', map: { a: 1, b: 'ok', c: null }, want: { b: 'ok' } },
    { title: 'not an object', map: 'a=b', want: {} },
  ];
  for (const { title, map, want } of cases) {
    it(title, () => assert.deepEqual(toLabels(map), want));
  }

  it('returns a copy', () => {
    const map = { a: '1' };
    const labels = toLabels(map);
    labels.a = '2';
    assert.equal(map.a, '1');
  });
});
