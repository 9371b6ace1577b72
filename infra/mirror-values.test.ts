import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { buildMirrorValues, CHART_DEFAULTS, nodeRegistryEndpoint } from './mirror-values.js';
import { REPO_ROOT } from './stack-files.js';

describe('mirror values', () => {
  it('match the chart defaults of every contract key (no drift from values.yaml)', () => {
    const chart = parse(readFileSync(join(REPO_ROOT, 'mirror/chart/values.yaml'), 'utf8')) as Record<
      string,
      Record<string, unknown>
    >;
    for (const [key, value] of Object.entries(CHART_DEFAULTS)) {
      if (key === 'peili' || key === 'grafanaDashboard') {
        // The chart has extra keys there (e.g. upstreamProbeTimeout); compare the contract's.
        for (const [sub, v] of Object.entries(value as Record<string, unknown>))
          assert.deepEqual(chart[key]?.[sub], v, `${key}.${sub}`);
      } else {
        assert.deepEqual(chart[key], value, key);
      }
    }
  });

  it('set the Talos registry config path and the stack settings, and nothing else', () => {
    const values = buildMirrorValues({
      releaseName: 'peili',
      mirroredRegistries: ['docker.io'],
      resolveTags: 'never',
      resolveTagsFilter: [':latest$'],
      hostPort: 30000,
      serviceMonitor: true,
      serviceMonitorLabels: { release: 'prom' },
      grafanaDashboard: 'operator',
      imageDigest: `sha256:${'a'.repeat(64)}`,
    });
    assert.deepEqual(values, {
      ...CHART_DEFAULTS,
      image: { ...CHART_DEFAULTS.image, digest: `sha256:${'a'.repeat(64)}` },
      fullnameOverride: 'peili',
      peili: {
        ...CHART_DEFAULTS.peili,
        containerdRegistryConfigPath: '/etc/cri/conf.d/hosts',
        mirroredRegistries: ['docker.io'],
        resolveTags: 'never',
        resolveTagsFilter: [':latest$'],
      },
      service: { ...CHART_DEFAULTS.service, registry: { port: 5000, hostPort: 30000 } },
      serviceMonitor: { ...CHART_DEFAULTS.serviceMonitor, enabled: true, labels: { release: 'prom' } },
      grafanaDashboard: { ...CHART_DEFAULTS.grafanaDashboard, enabled: true, mode: 'operator' },
    });
  });

  it('leave the dashboard off by default', () => {
    const values = buildMirrorValues({ releaseName: 'x' });
    assert.deepEqual(values.grafanaDashboard, {
      enabled: false,
      mode: 'configmap',
      labels: { grafana_dashboard: '1' },
      folder: 'Peili',
    });
    assert.equal(values.serviceMonitor.enabled, false);
  });

  it('format the node endpoint containerd uses, IPv6 in brackets', () => {
    assert.equal(nodeRegistryEndpoint('10.0.0.5', 29999), 'http://10.0.0.5:29999');
    assert.equal(nodeRegistryEndpoint('fd00::5', 29999), 'http://[fd00::5]:29999');
    assert.equal(nodeRegistryEndpoint('node-1.lan', 80), 'http://node-1.lan:80');
  });
});
