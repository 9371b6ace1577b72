import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseToml } from 'smol-toml';
import { parseAllDocuments, parse } from 'yaml';
import {
  CRI_CUSTOMIZATION_PATH,
  criCustomizationToml,
  defaultMirrorEndpoint,
  installPatch,
  keepLayersPatch,
  peiliTalosPatches,
  registriesPatch,
  talosFeatures,
} from './talos-patch.js';

const docs = (text: string): unknown[] => parseAllDocuments(text).map((d) => d.toJS() as unknown);

describe('Talos patch', () => {
  it('keeps unpacked layers under the containerd 2 key, and nothing else', () => {
    // smol-toml returns null-prototype tables; a JSON round trip makes them plain for deepEqual.
    const toml: unknown = JSON.parse(JSON.stringify(parseToml(criCustomizationToml())));
    assert.deepEqual(toml, {
      plugins: { 'io.containerd.cri.v1.images': { discard_unpacked_layers: false } },
    });
    // The containerd 1.x key is silently ignored by containerd 2: it must not be what we rely on.
    assert.equal(criCustomizationToml().includes('io.containerd.grpc.v1.cri'), false);
  });

  const features: [string, { registryDocument: boolean; criDocument: boolean }][] = [
    ['v1.8.0', { registryDocument: false, criDocument: false }],
    ['v1.11.6', { registryDocument: false, criDocument: false }],
    ['v1.12', { registryDocument: true, criDocument: false }],
    ['1.13.2', { registryDocument: true, criDocument: false }],
    ['v1.14.0', { registryDocument: true, criDocument: true }],
    ['v2.0.0', { registryDocument: true, criDocument: true }],
  ];
  for (const [version, expected] of features) {
    it(`knows which documents Talos ${version} takes`, () =>
      assert.deepEqual(talosFeatures(version), expected));
  }
  it('refuses something that is not a version', () => {
    assert.throws(() => talosFeatures('latest'), { message: "not a Talos version: 'latest'" });
  });

  it('writes machine.registries.mirrors before 1.12, one entry per registry', () => {
    assert.deepEqual(parse(registriesPatch('v1.11.6', ['docker.io', 'ghcr.io'], 'http://127.0.0.1:29999')), {
      machine: {
        registries: {
          mirrors: {
            'docker.io': { endpoints: ['http://127.0.0.1:29999'] },
            'ghcr.io': { endpoints: ['http://127.0.0.1:29999'] },
          },
        },
      },
    });
    assert.deepEqual(parse(registriesPatch('v1.11', [], 'http://127.0.0.1:1')), {
      machine: { registries: { mirrors: { '*': { endpoints: ['http://127.0.0.1:1'] } } } },
    });
  });

  it('writes RegistryMirrorConfig documents from 1.12', () => {
    assert.deepEqual(docs(registriesPatch('v1.12.11', ['docker.io', 'ghcr.io'], 'http://127.0.0.1:29999')), [
      {
        apiVersion: 'v1alpha1',
        kind: 'RegistryMirrorConfig',
        name: 'docker.io',
        endpoints: [{ url: 'http://127.0.0.1:29999' }],
      },
      {
        apiVersion: 'v1alpha1',
        kind: 'RegistryMirrorConfig',
        name: 'ghcr.io',
        endpoints: [{ url: 'http://127.0.0.1:29999' }],
      },
    ]);
    assert.deepEqual(docs(registriesPatch('v1.12.0', [], 'http://127.0.0.1:29999')), [
      {
        apiVersion: 'v1alpha1',
        kind: 'RegistryMirrorConfig',
        name: '*',
        endpoints: [{ url: 'http://127.0.0.1:29999' }],
      },
    ]);
  });

  it('keeps layers with the machine file before 1.14 (reboot) and CRICustomizationConfig from 1.14 (none)', () => {
    assert.deepEqual(parse(keepLayersPatch('v1.12.11')), {
      machine: { files: [{ op: 'create', path: CRI_CUSTOMIZATION_PATH, content: criCustomizationToml() }] },
    });
    assert.equal(CRI_CUSTOMIZATION_PATH, '/etc/cri/conf.d/20-customization.part');
    assert.deepEqual(parse(keepLayersPatch('v1.14.0')), {
      apiVersion: 'v1alpha1',
      kind: 'CRICustomizationConfig',
      name: 'peili-keep-layers',
      content: criCustomizationToml(),
    });
    assert.equal(peiliTalosPatches('v1.11.6', [], 'http://x').keepLayersNeedsReboot, true);
    assert.equal(peiliTalosPatches('v1.14.1', [], 'http://x').keepLayersNeedsReboot, false);
  });

  it('points every node at its own loopback, so one patch fits all nodes', () => {
    assert.equal(defaultMirrorEndpoint(29999), 'http://127.0.0.1:29999');
  });

  it('carries the install image and disk from the stack config', () => {
    assert.deepEqual(parse(installPatch('ghcr.io/siderolabs/installer:v1.11.6', '/dev/nvme0n1')), {
      machine: { install: { image: 'ghcr.io/siderolabs/installer:v1.11.6', disk: '/dev/nvme0n1' } },
    });
  });
});
