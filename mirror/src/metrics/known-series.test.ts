import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { initKnownSeries } from './known-series.js';
import { createMetrics } from './metrics.js';

test('known series are exported at 0 before anything happened, and counts are kept', async () => {
  const registry = new Registry();
  const metrics = createMetrics(registry, { defaultMetrics: false });
  metrics.servedBytes.inc({ source: 'peer' }, 7);
  initKnownSeries(metrics);
  const lines = (await registry.metrics())
    .split('\n')
    .filter((line) => /^peili_(served|ingested)_bytes_total\{/.test(line))
    .sort();
  assert.deepEqual(lines, [
    'peili_ingested_bytes_total{via="peer"} 0',
    'peili_ingested_bytes_total{via="upstream"} 0',
    'peili_served_bytes_total{source="local"} 0',
    'peili_served_bytes_total{source="peer"} 7',
  ]);
});
