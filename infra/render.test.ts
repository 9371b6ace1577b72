import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { renderStack, writeFiles } from './render.js';
import { joinPatches, peiliTalosPatches } from './talos-patch.js';

const INFRA = peiliTalosPatches(
  'v1.11.6',
  ['docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io'],
  'http://127.0.0.1:29999',
);
const INFRA_PATCH = joinPatches([INFRA.registries, INFRA.keepLayers]);

describe('npm run render', () => {
  let infra: Map<string, string>;
  let apps: Map<string, string>;
  let dir: string;
  before(async () => {
    infra = await renderStack('infra');
    apps = await renderStack('apps');
    dir = mkdtempSync(join(tmpdir(), 'peili-render-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one YAML per object and a kustomization listing exactly those', () => {
    assert.deepEqual([...infra.keys()].sort(), [
      '.peili-render',
      'configmap-peili-cluster-settings.yaml',
      'helmrelease-peili-peili.yaml',
      'kustomization.yaml',
      'namespace-peili.yaml',
      'ocirepository-peili-peili.yaml',
      'outputs.json',
      'prometheusrule-peili-peili.yaml',
      'talos/nodes.yaml',
      'talos/patch.yaml',
    ]);
    const kustomization = parse(infra.get('kustomization.yaml') ?? '') as {
      apiVersion: string;
      kind: string;
      resources: string[];
    };
    assert.equal(kustomization.apiVersion, 'kustomize.config.k8s.io/v1beta1');
    assert.equal(kustomization.kind, 'Kustomization');
    const objectFiles = [...infra.keys()].filter(
      (f) => !f.includes('/') && f.endsWith('.yaml') && f !== 'kustomization.yaml',
    );
    assert.deepEqual([...kustomization.resources].sort(), objectFiles.sort());
    for (const f of objectFiles) {
      const obj = parse(infra.get(f) ?? '') as {
        apiVersion?: string;
        kind?: string;
        metadata?: { name?: string };
      };
      assert.ok(obj.apiVersion && obj.kind && obj.metadata?.name, `${f} is a Kubernetes object`);
    }
  });

  it('writes the Talos patch and what is applied to each node', () => {
    assert.equal(infra.get('talos/patch.yaml'), INFRA_PATCH);
    const nodes = parse(infra.get('talos/nodes.yaml') ?? '') as { node: string; applyMode: string }[];
    assert.deepEqual(
      nodes.map((n) => [n.node, n.applyMode]),
      ['10.10.0.11', '10.10.0.12', '10.10.0.13', '10.10.0.21'].flatMap((n) => [
        [n, 'no_reboot'],
        [n, 'staged'],
      ]),
    );
  });

  it('writes the Git manifests of a Git-managed cluster as their own kustomization', () => {
    const git = [...apps.keys()].filter((f) => f.startsWith('git/')).sort();
    assert.deepEqual(git, [
      'git/helmrelease-peili-peili.yaml',
      'git/kustomization.yaml',
      'git/ocirepository-peili-peili.yaml',
    ]);
    const kustomization = parse(apps.get('git/kustomization.yaml') ?? '') as { resources: string[] };
    assert.deepEqual(kustomization.resources, [
      'ocirepository-peili-peili.yaml',
      'helmrelease-peili-peili.yaml',
    ]);
    const release = parse(apps.get('git/helmrelease-peili-peili.yaml') ?? '') as {
      metadata: Record<string, unknown>;
      spec: Record<string, unknown>;
    };
    assert.equal(release.metadata.annotations, undefined);
    assert.equal(release.spec.dependsOn, undefined);
  });

  it('redacts secret outputs and does not pass mock readings off as cluster state', () => {
    const outputs = JSON.parse(apps.get('outputs.json') ?? '{}') as Record<string, unknown>;
    assert.equal(outputs.talosconfig, '[secret]');
    assert.equal(outputs.hostPort, 29999);
    assert.equal(outputs.health, '[known after pulumi up]');
    assert.equal(outputs.talosApplyModes, '[known after pulumi up]');
  });

  it('replaces an earlier render but never a foreign folder', () => {
    const out = join(dir, 'out');
    writeFiles(out, infra);
    writeFiles(out, apps);
    assert.deepEqual(
      readdirSync(out).sort(),
      [...new Set([...apps.keys()].map((k) => k.split('/')[0] as string))].sort(),
    );
    assert.equal(readFileSync(join(out, 'talos/patch.yaml'), 'utf8'), apps.get('talos/patch.yaml'));
    const foreign = join(dir, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'keep.txt'), 'mine');
    assert.throws(() => writeFiles(foreign, infra), {
      message: `${foreign} is not empty and was not written by render; choose another --out`,
    });
    assert.equal(readFileSync(join(foreign, 'keep.txt'), 'utf8'), 'mine');
  });
});
