import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../scratch.js';
import { cacheRoot, parsePins, PINS_PATH } from './counterparts.js';
import { nodeObject, TALOS_LIKE_NODES } from './cluster.js';

describe('scripts/pins.env', () => {
  const text = readFileSync(PINS_PATH, 'utf8');

  it('pins every counterpart the build script and the cluster test use', () => {
    const pins = parsePins(text);
    for (const key of [
      'PULUMI_VERSION',
      'PULUMI_KUBERNETES_MODULE_VERSION',
      'PULUMI_KUBERNETES_VERSION',
      'ETCD_VERSION',
      'KUBERNETES_VERSION',
      'KWOK_VERSION',
      'FLUX_SOURCE_CONTROLLER_VERSION',
      'FLUX_HELM_CONTROLLER_VERSION',
    ])
      assert.match(pins[key] ?? '', /^\d+\.\d+\.\d+/, key);
  });

  it('tells Renovate where each module version comes from', () => {
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (!/^[A-Z0-9_]+_MODULE_VERSION=|^[A-Z0-9_]+_VERSION=/.test(line)) return;
      if (line.startsWith('PULUMI_KUBERNETES_VERSION=')) return; // follows the module line above it
      assert.match(lines[i - 1] ?? '', /^# renovate: datasource=go depName=\S+$/, `line ${i + 1}: ${line}`);
    });
  });

  it('matches the npm SDK versions the program is built with', () => {
    const pins = parsePins(text);
    const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version: string }>;
    };
    // As the infra/ workspace resolves them: its own node_modules first, then the hoisted ones.
    const resolved = (name: string): string | undefined =>
      (lock.packages[`infra/node_modules/${name}`] ?? lock.packages[`node_modules/${name}`])?.version;
    assert.equal(resolved('@pulumi/pulumi'), pins.PULUMI_VERSION);
    assert.equal(resolved('@pulumi/kubernetes'), pins.PULUMI_KUBERNETES_VERSION);
  });

  it('rejects a line that is not NAME=value', () => {
    assert.throws(() => parsePins('# ok\nFOO_VERSION 1.2.3\n'), /:2: expected NAME=value/);
  });
});

describe('cache and nodes', () => {
  it('uses PEILI_CACHE_DIR, else ~/.cache/peili', () => {
    assert.equal(cacheRoot({ PEILI_CACHE_DIR: '/c' }), '/c');
    assert.equal(cacheRoot({ HOME: '/h' }), '/h/.cache/peili');
  });

  it('labels and taints the simulated nodes like Talos does, for kwok to manage', () => {
    const [cp, worker] = TALOS_LIKE_NODES.map((n, i) => nodeObject(n, i)) as [
      {
        metadata: { labels: Record<string, string>; annotations: Record<string, string> };
        spec: { taints?: unknown[] };
      },
      { metadata: { labels: Record<string, string> }; spec: { taints?: unknown[] } },
    ];
    assert.equal(cp.metadata.labels['node-role.kubernetes.io/control-plane'], '');
    assert.deepEqual(cp.spec.taints, [
      { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' },
    ]);
    assert.equal(cp.metadata.annotations['kwok.x-k8s.io/node'], 'fake');
    assert.equal(worker.metadata.labels['node-role.kubernetes.io/control-plane'], undefined);
    assert.equal(worker.spec.taints, undefined);
  });
});
