import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePromQL } from './promql.js';

describe('parsePromQL', () => {
  const good: readonly [string, string[]][] = [
    ['up', ['up']],
    ['sum(rate(a_total{x="1", y=~"$v"}[$__rate_interval]))', ['a_total']],
    ['sum by (le, handler) (rate(h_bucket[5m]))', ['h_bucket']],
    ['sum(rate(h_bucket[5m])) without (pod)', ['h_bucket']],
    ['histogram_quantile(0.99, sum by (le) (rate(h_bucket{r="found"}[1m])))', ['h_bucket']],
    ['sum(rate(a[5m])) / on (pod) group_left (node) max(b)', ['a', 'b']],
    ['a > bool 0 and b unless c', ['a', 'b', 'c']],
    ['-a offset 5m + 1.5e3', ['a']],
    ['max_over_time(a[1h:5m])', ['a']],
    ['{__name__="a", job="x"}', ['a']],
  ];
  for (const [expr, metrics] of good) {
    it(`parses ${expr}`, () => {
      assert.deepEqual(
        parsePromQL(expr).map((s) => s.metric),
        metrics,
      );
    });
  }

  it('returns the matchers of each selector', () => {
    assert.deepEqual(parsePromQL('a{x="1", y!~"b|c"} + b'), [
      {
        metric: 'a',
        matchers: [
          { label: 'x', op: '=', value: '1' },
          { label: 'y', op: '!~', value: 'b|c' },
        ],
      },
      { metric: 'b', matchers: [] },
    ]);
  });

  const bad: readonly [string, string][] = [
    ['sum(rate(a[5m])', 'expected ")" at the end in "sum(rate(a[5m])"'],
    ['a{x=1}', 'expected a quoted label value at 4 ("1") in "a{x=1}"'],
    ['rate(a[five])', 'expected a duration or a Grafana variable at 7 ("five") in "rate(a[five])"'],
    ['rat(a[5m])', 'unknown function rat at 0 ("rat") in "rat(a[5m])"'],
    ['a b', 'unexpected token at 2 ("b") in "a b"'],
    ['sum by (le (a)', 'expected "," or ")" at 11 ("(") in "sum by (le (a)"'],
    ['', 'empty expression at the end in ""'],
    ['a # b', 'unexpected character "#" at 2'],
  ];
  for (const [expr, message] of bad) {
    it(`rejects ${JSON.stringify(expr)}`, () => {
      assert.throws(() => parsePromQL(expr), { name: 'PromQLError', message });
    });
  }
});
