// The Grafana dashboard only queries what the daemon exports: every PromQL expression parses,
// every `peili_*` series it names is registered by createMetrics (histograms through their
// _bucket/_sum/_count series), every label it matches on belongs to that metric, and the only
// other metrics are kube-state-metrics' DaemonSet status. The questions the dashboard promises
// to answer each have a panel backed by the right metric.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createMetrics } from '../src/metrics/metrics.js';
import {
  allPanels,
  dashboardQueries,
  dashboardSelectors,
  loadDashboard,
  peiliSeriesUsed,
} from './dashboard-queries.js';
import { REPO_ROOT } from './helm.js';
import { parsePromQL } from './promql.js';

const dashboard = loadDashboard();
const panels = allPanels(dashboard);
const queries = dashboardQueries(dashboard);

/** Labels Prometheus adds to every scraped series (the ServiceMonitor adds `node`). */
const TARGET_LABELS = new Set([
  'namespace',
  'pod',
  'node',
  'job',
  'instance',
  'service',
  'container',
  'endpoint',
]);

/** kube-state-metrics series the dashboard may use, with their labels. */
const KUBE_STATE_METRICS = new Map([
  ['kube_daemonset_status_number_ready', ['namespace', 'daemonset']],
  ['kube_daemonset_status_desired_number_scheduled', ['namespace', 'daemonset']],
]);

/** Every series name the daemon exposes, with the label names each may carry. */
async function exportedSeries(): Promise<Map<string, Set<string>>> {
  const registry = new Registry();
  createMetrics(registry);
  const series = new Map<string, Set<string>>();
  for (const metric of await registry.getMetricsAsJSON()) {
    const labels = new Set<string>(
      (registry.getSingleMetric(metric.name) as unknown as { labelNames?: string[] }).labelNames ?? [],
    );
    for (const value of metric.values) for (const label of Object.keys(value.labels)) labels.add(label);
    // prom-client types `type` as an enum but reports the exposition-format name at runtime.
    const type = String(metric.type);
    if (type === 'histogram') {
      series.set(`${metric.name}_bucket`, new Set([...labels, 'le']));
      series.set(`${metric.name}_sum`, labels);
      series.set(`${metric.name}_count`, labels);
    } else if (type === 'summary') {
      series.set(metric.name, new Set([...labels, 'quantile']));
      series.set(`${metric.name}_sum`, labels);
      series.set(`${metric.name}_count`, labels);
    } else {
      series.set(metric.name, labels);
    }
  }
  return series;
}

describe('dashboard peili.json', () => {
  it('is a dashboard with a stable uid and queries on the datasource variable', () => {
    assert.equal(dashboard.uid, 'peili-mirror');
    assert.equal(dashboard.title, 'Peili');
    assert.ok(queries.length >= 20, `only ${queries.length} queries`);
    assert.deepEqual(
      dashboard.templating.list.map((v) => `${v.name}:${v.type}`),
      ['datasource:datasource', 'namespace:query', 'node:query', 'daemonset:query'],
    );
    for (const p of panels) {
      if (p.type === 'row') continue;
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, p.title);
      assert.ok(p.description, `${p.title} has no description`);
    }
  });

  it('has unique panel ids and a layout inside the 24-column grid', () => {
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const p of panels) assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, p.title);
  });

  it('every expression parses as PromQL', () => {
    for (const q of queries) assert.doesNotThrow(() => parsePromQL(q.expr), `${q.panel}: ${q.expr}`);
  });

  it('every metric and label it uses is exported by the daemon (or is kube-state-metrics)', async () => {
    const series = await exportedSeries();
    const problems: string[] = [];
    for (const { where, selector: s } of dashboardSelectors(dashboard)) {
      const labels =
        series.get(s.metric) ??
        (KUBE_STATE_METRICS.has(s.metric) ? new Set(KUBE_STATE_METRICS.get(s.metric)) : undefined);
      if (!labels) {
        problems.push(`${where}: ${s.metric} is not exported`);
        continue;
      }
      for (const m of s.matchers) {
        if (!labels.has(m.label) && !TARGET_LABELS.has(m.label))
          problems.push(`${where}: ${s.metric} has no label ${m.label}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('lists the peili_* series it uses (the scrape test checks them on a live daemon)', () => {
    const used = peiliSeriesUsed(dashboard);
    assert.deepEqual(used, [
      'peili_advertised_keys',
      'peili_http_request_duration_seconds_bucket',
      'peili_http_requests_inflight',
      'peili_http_requests_total',
      'peili_indexed_keys',
      'peili_ingested_bytes_total',
      'peili_lookup_duration_seconds_bucket',
      'peili_lookup_duration_seconds_count',
      'peili_lookup_duration_seconds_sum',
      'peili_lookups_total',
      'peili_members',
      'peili_mirror_requests_total',
      'peili_node_check',
      'peili_peer_errors_total',
      'peili_peer_fetched_bytes_total',
      'peili_peer_served_bytes_total',
      'peili_process_resident_memory_bytes',
      'peili_ready',
      'peili_runtime_info',
      'peili_served_bytes_total',
    ]);
  });

  it('exported-series check catches a misspelt metric and a bare histogram name', async () => {
    const series = await exportedSeries();
    assert.equal(series.has('peili_lookup_duration_seconds'), false);
    assert.equal(series.has('peili_lookup_duration_seconds_bucket'), true);
    assert.equal(series.has('peili_mirror_request_total'), false);
    assert.equal(series.has('peili_process_resident_memory_bytes'), true);
  });

  // The questions a platform team asks, each answered by a panel using the right series.
  const questions: readonly [string, RegExp][] = [
    ['Cache hit ratio', /peili_mirror_requests_total\{[^}]*outcome="hit"/],
    [
      'Cache hit ratio per registry',
      /sum by \(registry\) \(rate\(peili_mirror_requests_total\{[^}]*outcome="hit"/,
    ],
    [
      'Bytes from peers vs fetched upstream',
      /peili_peer_fetched_bytes_total[\s\S]*peili_ingested_bytes_total\{[^}]*via="upstream"/,
    ],
    [
      'Time to first peer',
      /histogram_quantile\(0\.5, [^\n]*peili_lookup_duration_seconds_bucket[\s\S]*histogram_quantile\(0\.99, [^\n]*peili_lookup_duration_seconds_bucket/,
    ],
    [
      'Request latency by route',
      /histogram_quantile\(0\.99, sum by \(le, handler\) \(rate\(peili_http_request_duration_seconds_bucket/,
    ],
    ['Error ratio by route', /sum by \(handler\) \(rate\(peili_http_requests_total\{[^}]*code=~"5\.\."/],
    ['Advertised keys per node', /by \(node, pod, kind\) \(peili_advertised_keys/],
    ['Members per node', /by \(node, pod\) \(peili_members/],
    [
      'Node check',
      /peili_node_check\{[^}]*check="mirror"[\s\S]*peili_node_check\{[^}]*check="layers"[\s\S]*peili_runtime_info/,
    ],
    [
      'Pods ready / desired',
      /kube_daemonset_status_number_ready[\s\S]*kube_daemonset_status_desired_number_scheduled/,
    ],
  ];
  for (const [title, pattern] of questions) {
    it(`answers "${title}"`, () => {
      const panel = panels.find((p) => p.title === title);
      assert.ok(panel, `no panel "${title}"`);
      assert.match((panel.targets ?? []).map((t) => t.expr).join('\n'), pattern);
    });
  }
});

describe('docs/dashboard.md', () => {
  it('documents every panel and every series the dashboard uses, and kube-state-metrics', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs/dashboard.md'), 'utf8');
    for (const p of panels)
      if (p.type !== 'row') assert.ok(doc.includes(`| ${p.title} |`), `panel ${p.title} is not documented`);
    for (const series of peiliSeriesUsed(dashboard)) {
      const base = series.replace(/_(bucket|sum|count)$/, '');
      assert.ok(doc.includes(base), `${series} is not documented`);
    }
    assert.match(doc, /kube-state-metrics/);
    assert.match(doc, /kube_daemonset_status_number_ready/);
  });
});
